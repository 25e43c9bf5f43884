"""Counting the storage calls and round trips an operation makes (a test and bench seam).

`RoundTripCounter.install(broker)` wraps every connected server's StorageClient
in a proxy that records each call. Round trips are counted as the longest chain
of calls each issued after another completed: a call's round is one more than
the highest round of any call that had completed when it was issued. Calls
issued together (a gather over servers) share a round, so for the sequential
client code of one operation this is the number of network waits it makes.

`listing_rounds=2` models Tahoe's HTTP storage API, where a slot_readv that
names no shares costs two requests in sequence (list the shares, then read
them; with no reads, just the list); over Foolscap (the default) it is one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from twisted.internet import defer


class RoundTripCounter:
    def __init__(self, *, listing_rounds: int = 1) -> None:
        if listing_rounds not in (1, 2):
            raise ValueError("listing_rounds is 1 (Foolscap) or 2 (HTTP)")
        self.listing_rounds = listing_rounds
        self.calls: Counter[str] = Counter()
        self.rounds = 0  # highest round issued
        self._done = 0  # highest round completed
        self._installed: list[tuple[Any, Any]] = []

    def reset(self) -> None:
        self.calls.clear()
        self.rounds = 0
        self._done = 0

    @property
    def requests(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> tuple[int, int]:
        """(round trips, requests) since the last reset."""
        return self.rounds, self.requests

    def install(self, broker: Any) -> RoundTripCounter:
        for server in broker.servers.values():
            if server.storage is not None and not isinstance(server.storage, _CountingClient):
                self._installed.append((server, server.storage))
                server.storage = _CountingClient(server.storage, self)
        return self

    def uninstall(self) -> None:
        for server, storage in self._installed:
            server.storage = storage
        self._installed.clear()

    def _call(self, name: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.calls[name] += 1
        rnd = self._done + 1
        if name == "slot_readv" and len(args) > 2 and not args[1] and args[2]:
            rnd += self.listing_rounds - 1  # the share list comes first (HTTP)
        self.rounds = max(self.rounds, rnd)

        def done(result: Any) -> Any:
            self._done = max(self._done, rnd)
            return result

        d = defer.ensureDeferred(_await(fn(*args, **kwargs)))
        d.addBoth(done)
        return d


async def _await(value: Any) -> Any:
    if isinstance(value, defer.Deferred) or hasattr(value, "__await__"):
        return await value
    return value


class _CountingClient:
    def __init__(self, inner: Any, counter: RoundTripCounter) -> None:
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr
        counter = self._counter

        def call(*args: Any, **kwargs: Any) -> Any:
            return counter._call(name, attr, args, kwargs)

        return call
