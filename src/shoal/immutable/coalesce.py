"""Concurrent uploads of the same file in one client node become one upload.

Two uploads of the same plaintext under the same convergence secret and
encoding have the same storage index and push the same shares. Run at the
same moment they ask the same servers for the same shares, and a storage
server gives a share's writer to only one of them (Tahoe 1.20's rule: a
share being uploaded is neither held nor allocated), so the other sees
refusals everywhere (issue #9: one 201 and seven 507s). `InFlightUploads`
keys running uploads by (storage index, shape, happiness); a second upload
of the same key waits for the first and returns its result (or its error).
A waiter that is cancelled leaves alone the upload it waits for. When the
upload waited for fails for a reason of its own caller's (cancelled: its
caller went away; its source ended early or could not be read), the waiters
run it again, the first of them leading; any other failure (the grid is
full or unhappy) is every waiter's.
"""

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

T = TypeVar("T")


class _LeaderGone(Exception):
    """The upload being waited for failed for its own caller's reason: run it again."""


class InFlightUploads(Generic[T]):
    """The uploads running now, by key, and who waits for each."""

    def __init__(self, own_failures: tuple[type[BaseException], ...] = ()) -> None:
        """own_failures: errors that are the leading caller's alone (besides cancellation)."""
        self._own: tuple[type[BaseException], ...] = (defer.CancelledError, *own_failures)
        self._running: dict[Hashable, list[defer.Deferred[T]]] = {}

    def running(self) -> int:
        """How many distinct uploads run now."""
        return len(self._running)

    async def run(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """`await start()`, unless an upload of `key` runs already: then its outcome."""
        while key in self._running:
            waiters = self._running[key]

            def leave(d: defer.Deferred[T], waiters: list[defer.Deferred[T]] = waiters) -> None:
                if d in waiters:
                    waiters.remove(d)

            d: defer.Deferred[T] = defer.Deferred(leave)
            waiters.append(d)
            try:
                return await d
            except _LeaderGone:
                continue
        self._running[key] = []
        try:
            result = await start()
        except BaseException as e:
            self._settle(key, Failure(_LeaderGone()) if isinstance(e, self._own) else Failure())
            raise
        self._settle(key, result)
        return result

    def _settle(self, key: Hashable, outcome: "T | Failure") -> None:
        waiters = self._running.pop(key)
        for d in waiters:
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)
