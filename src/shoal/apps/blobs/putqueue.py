"""Group commit of small PUTs into packs (shoal.apps.blobs.packs).

While one upload of a namespace's small blobs is on its way to the grid,
further small PUTs of that namespace wait; when it is done they all go
together, as one pack (or alone, when only one waits). A PUT that finds
nothing in flight goes at once, so a lone client's PUT never waits for
anyone, and each PUT still returns only once its own blob is on the grid.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from twisted.internet import defer
from twisted.python.failure import Failure

from shoal.apps.blobs.index import BlobRow
from shoal.apps.blobs.packs import PACK_BYTES

Upload = Callable[[Sequence[tuple[str, bytes]]], Awaitable[list[BlobRow]]]


class PutQueue:
    def __init__(self, upload: Upload, on_idle: Callable[[], None] = lambda: None,
                 pack_bytes: int = PACK_BYTES) -> None:
        self._upload = upload
        self._on_idle = on_idle
        self.pack_bytes = pack_bytes
        self._queue: list[tuple[str, bytes, defer.Deferred[BlobRow]]] = []
        self._running = False
        self.uploads = 0  # uploads made (for tests and the benchmark)

    @property
    def idle(self) -> bool:
        return not self._running and not self._queue

    async def add(self, blob_id: str, data: bytes) -> BlobRow:
        """Upload `data` as blob `blob_id`, with whatever else waits; its row once on the grid."""
        waiter: defer.Deferred[BlobRow] = defer.Deferred()
        self._queue.append((blob_id, data, waiter))
        if not self._running:
            self._running = True
            defer.ensureDeferred(self._drain())
        return await waiter

    def _next_batch(self) -> list[tuple[str, bytes, defer.Deferred[BlobRow]]]:
        batch = [self._queue.pop(0)]
        size = len(batch[0][1])
        while self._queue and size + len(self._queue[0][1]) <= self.pack_bytes:
            item = self._queue.pop(0)
            batch.append(item)
            size += len(item[1])
        return batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._next_batch()
                self.uploads += 1
                try:
                    rows = await self._upload([(blob_id, data) for blob_id, data, _ in batch])
                except Exception:
                    failure = Failure()
                    for _, _, waiter in batch:
                        waiter.errback(failure)
                else:
                    for (_, _, waiter), row in zip(batch, rows, strict=True):
                        waiter.callback(row)
        finally:
            self._running = False
            if not self._queue:
                self._on_idle()
