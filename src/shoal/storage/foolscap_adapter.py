"""Foolscap adapter for the storage server: decode, call one core method, encode.

The remote objects implement Tahoe 1.20's RIStorageServer, RIBucketWriter and
RIBucketReader; Foolscap has already enforced the argument constraints.
Bucket writers are tied to the allocating connection: if the client's
canary disconnects before close(), the partial share is discarded.
Corruption advisories run in shoal.cpu's pool: the server checks the
share's hashes, off the reactor thread, before it answers.
"""

import collections
from typing import Any

from foolscap.api import Referenceable
from twisted.internet import defer
from zope.interface import implementer

from shoal import cpu
from shoal.protocol.storage import RIBucketReader, RIBucketWriter, RIStorageServer
from shoal.storage.server import BucketReader, BucketWriter, StorageServer


@implementer(RIBucketWriter)
class FoolscapBucketWriter(Referenceable):  # type: ignore[misc]
    def __init__(self, writer: BucketWriter, on_finished: Any) -> None:
        self._writer = writer
        self._on_finished = on_finished

    def remote_write(self, offset: int, data: bytes) -> None:
        self._writer.write(offset, data)

    def remote_close(self) -> None:
        try:
            self._writer.close()
        finally:
            self._on_finished(self._writer)

    def remote_abort(self) -> None:
        try:
            self._writer.abort()
        finally:
            self._on_finished(self._writer)


@implementer(RIBucketReader)
class FoolscapBucketReader(Referenceable):  # type: ignore[misc]
    def __init__(self, reader: BucketReader) -> None:
        self._reader = reader

    def remote_read(self, offset: int, length: int) -> bytes:
        return self._reader.read(offset, length)

    def remote_advise_corrupt_share(self, reason: bytes) -> "defer.Deferred[None]":
        # the server checks the share's hashes: off the reactor thread
        return cpu.run(self._reader.advise_corrupt_share, reason)  # type: ignore[no-any-return]


@implementer(RIStorageServer)
class FoolscapStorageServer(Referenceable):  # type: ignore[misc]
    name = "storage"

    def __init__(self, server: StorageServer) -> None:
        self._server = server
        self._markers: dict[BucketWriter, tuple[Any, Any]] = {}
        self.calls: collections.Counter[str] = collections.Counter()  # remote calls, for statistics

    def stats(self) -> dict[str, int]:
        """Calls of each RIStorageServer method (``storage_server.foolscap.*``)."""
        return {f"storage_server.foolscap.{name}": count for name, count in sorted(self.calls.items())}

    def _finished(self, writer: BucketWriter) -> None:
        marker = self._markers.pop(writer, None)
        if marker is not None:
            canary, handle = marker
            try:
                canary.dontNotifyOnDisconnect(handle)
            except Exception:  # the connection may already be gone
                pass

    def _lost(self, writer: BucketWriter) -> None:
        """The allocating client went away before close(): discard the share."""
        self._markers.pop(writer, None)
        writer.abort()

    def remote_get_version(self) -> dict[bytes, Any]:
        self.calls["get_version"] += 1
        return self._server.get_version()

    def remote_allocate_buckets(
        self,
        storage_index: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        sharenums: set[int],
        allocated_size: int,
        canary: Any,
    ) -> tuple[set[int], dict[int, FoolscapBucketWriter]]:
        self.calls["allocate_buckets"] += 1
        already, writers = self._server.allocate_buckets(
            storage_index, renew_secret, cancel_secret, set(sharenums), allocated_size
        )
        remote = {}
        for shnum, writer in writers.items():
            handle = canary.notifyOnDisconnect(self._lost, writer)
            self._markers[writer] = (canary, handle)
            remote[shnum] = FoolscapBucketWriter(writer, self._finished)
        return already, remote

    def remote_add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> None:
        self.calls["add_lease"] += 1
        self._server.add_lease(storage_index, renew_secret, cancel_secret)

    def remote_get_buckets(self, storage_index: bytes) -> dict[int, FoolscapBucketReader]:
        self.calls["get_buckets"] += 1
        return {sh: FoolscapBucketReader(r) for sh, r in self._server.get_buckets(storage_index).items()}

    def remote_slot_readv(self, storage_index: bytes, shares: list[int], readv: list) -> dict[int, list[bytes]]:
        self.calls["slot_readv"] += 1
        return self._server.slot_readv(storage_index, list(shares), [tuple(r) for r in readv])

    def remote_slot_testv_and_readv_and_writev(
        self, storage_index: bytes, secrets: tuple, tw_vectors: dict, r_vector: list
    ) -> tuple[bool, dict[int, list[bytes]]]:
        self.calls["slot_testv_and_readv_and_writev"] += 1
        vectors = {
            sh: ([tuple(t) for t in tv], [tuple(w) for w in wv], new_length)
            for sh, (tv, wv, new_length) in tw_vectors.items()
        }
        return self._server.slot_testv_and_readv_and_writev(
            storage_index, tuple(secrets), vectors, [tuple(r) for r in r_vector]
        )

    def remote_advise_corrupt_share(
        self, share_type: bytes, storage_index: bytes, shnum: int, reason: bytes
    ) -> "defer.Deferred[None]":
        self.calls["advise_corrupt_share"] += 1
        # the server checks the share's hashes: off the reactor thread
        return cpu.run(  # type: ignore[no-any-return]
            self._server.advise_corrupt_share, share_type, storage_index, shnum, reason
        )
