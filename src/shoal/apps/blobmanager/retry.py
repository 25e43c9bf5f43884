"""Retry with growing pauses, as Soledad's client does (app-apis.md 1.5): transient
failures are retried; the pause starts at `first` seconds and grows by `step`
per attempt up to `maximum` (Soledad: 1 s, +10 s, 60 s, forever). Tests and
benchmarks pass smaller numbers and may cap the attempts."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
from twisted.internet import task

from shoal.apps.blobmanager.errors import MaximumRetriesError, RetriableTransferError

T = TypeVar("T")


@attrs.frozen
class RetryPolicy:
    first: float = 1.0
    step: float = 10.0
    maximum: float = 60.0
    max_attempts: int | None = None  # None: retry forever

    def pause(self, failures: int) -> float:
        """The pause after the `failures`-th consecutive failure (1-based)."""
        return min(self.first + self.step * (failures - 1), self.maximum)


async def with_retry(reactor: Any, policy: RetryPolicy, fn: Callable[[], Awaitable[T]],
                     on_retry: Callable[[int, Exception], None] | None = None) -> T:
    failures = 0
    while True:
        try:
            return await fn()
        except RetriableTransferError as e:
            failures += 1
            if policy.max_attempts is not None and failures >= policy.max_attempts:
                raise MaximumRetriesError(f"gave up after {failures} attempts: {e}") from e
            if on_retry is not None:
                on_retry(failures, e)
            await task.deferLater(reactor, policy.pause(failures), lambda: None)
