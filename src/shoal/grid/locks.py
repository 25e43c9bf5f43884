"""Per-key locks for reactor-thread code: a Twisted DeferredLock per key, made on first
use and dropped when nobody holds or waits for it. The mutable client serialises its
writes to one file with it; the blob service its edits of one blob or one directory."""

from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager

from twisted.internet import defer


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[Hashable, defer.DeferredLock] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = defer.DeferredLock()
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(key, None)

    @asynccontextmanager
    async def hold_all(self, keys: Iterable[Hashable]) -> AsyncIterator[None]:
        """Several keys, taken in sorted order (so two holders never deadlock)."""
        async with AsyncExitStack() as stack:
            for key in sorted(set(keys), key=repr):
                await stack.enter_async_context(self.hold(key))
            yield

    def __len__(self) -> int:
        return len(self._locks)
