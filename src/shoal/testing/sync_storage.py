"""Synchronous, StorageServer-shaped calls over any StorageClient, for tests.

`SyncStorage(client)` offers the methods of the transport-free
`shoal.storage.server.StorageServer` with its argument and answer shapes
(sets, tuples of secrets, `(tests, writes, new_length)` triples), so one test
body runs against the server itself and against any StorageClient. Each call
goes through the reactor thread (`reactor_thread.call`) and blocks for its
answer; failures arrive as the client raises them (the ServerError family).

`foolscap_storage(furl)` connects a client Tub of its own to a storage FURL
and wraps the FoolscapStorageClient it gets; close() drops the connection
(the server sees the canaries go).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from foolscap.api import Tub

from shoal.grid.foolscap_client import FoolscapStorageClient
from shoal.grid.storage_client import (
    BucketReader,
    BucketWriter,
    Deadlines,
    SlotWrite,
    StorageClient,
    WriteSecrets,
)
from shoal.testing import reactor_thread

# {shnum: (test vector, write vector, new length)} as StorageServer takes it
Vectors = Mapping[int, tuple[Sequence[Any], Sequence[Any], int | None]]


class SyncBucketWriter:
    def __init__(self, writer: BucketWriter) -> None:
        self.writer = writer

    def write(self, offset: int, data: bytes) -> None:
        reactor_thread.call(self.writer.write, offset, data)

    def close(self) -> None:
        reactor_thread.call(self.writer.close)

    def abort(self) -> None:
        reactor_thread.call(self.writer.abort)


class SyncBucketReader:
    def __init__(self, reader: BucketReader) -> None:
        self.reader = reader

    def read(self, offset: int, length: int) -> bytes:
        data: bytes = reactor_thread.call(self.reader.read, offset, length)
        return data

    def advise_corrupt_share(self, reason: bytes) -> None:
        reactor_thread.call(self.reader.advise_corrupt_share, reason)


class SyncStorage:
    """A StorageClient driven synchronously with StorageServer's method shapes."""

    def __init__(self, client: StorageClient, on_close: Any = None) -> None:
        self.client = client
        self._on_close = on_close

    def close(self) -> None:
        """Release what the client was built on (its Tub, its connection), if anything."""
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def get_version(self) -> dict[bytes, Any]:
        """The version as parsed by the client, in Tahoe's dictionary shape again."""
        return dict(reactor_thread.call(self.client.get_version).to_wire())

    def allocate_buckets(
        self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes, sharenums: set[int],
        allocated_size: int,
    ) -> tuple[set[int], dict[int, SyncBucketWriter]]:
        allocation = reactor_thread.call(
            self.client.allocate_buckets, storage_index, renew_secret, cancel_secret, frozenset(sharenums),
            allocated_size,
        )
        return set(allocation.already), {sh: SyncBucketWriter(w) for sh, w in allocation.writers.items()}

    def get_buckets(self, storage_index: bytes) -> dict[int, SyncBucketReader]:
        readers = reactor_thread.call(self.client.get_buckets, storage_index)
        return {sh: SyncBucketReader(r) for sh, r in readers.items()}

    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> None:
        reactor_thread.call(self.client.add_lease, storage_index, renew_secret, cancel_secret)

    def slot_readv(
        self, storage_index: bytes, shares: Sequence[int], readv: Sequence[tuple[int, int]]
    ) -> dict[int, list[bytes]]:
        answer: dict[int, list[bytes]] = reactor_thread.call(self.client.slot_readv, storage_index, shares, readv)
        return answer

    def slot_testv_and_readv_and_writev(
        self, storage_index: bytes, secrets: tuple[bytes, bytes, bytes], tw_vectors: Vectors,
        read_vector: Sequence[tuple[int, int]],
    ) -> tuple[bool, dict[int, list[bytes]]]:
        we, renew, cancel = secrets
        writes = {
            sh: SlotWrite(tuple(tests), tuple(data), new_length) for sh, (tests, data, new_length) in tw_vectors.items()
        }
        result = reactor_thread.call(
            self.client.slot_testv_and_readv_and_writev, storage_index, WriteSecrets(we, renew, cancel), writes,
            read_vector,
        )
        return result.success, result.reads

    def advise_corrupt_share(self, share_type: bytes, storage_index: bytes, shnum: int, reason: bytes) -> None:
        reactor_thread.call(self.client.advise_corrupt_share, share_type, storage_index, shnum, reason)


def foolscap_storage(furl: str, name: str = "node", deadlines: Deadlines | None = None) -> SyncStorage:
    """A SyncStorage over Foolscap to the storage server at `furl`, on a client Tub of its own."""
    tub = Tub()
    reactor_thread.call(tub.startService)
    try:
        rref = reactor_thread.call(tub.getReference, furl)
    except BaseException:
        reactor_thread.call(tub.stopService)
        raise
    client = FoolscapStorageClient(rref, name, reactor_thread.reactor, deadlines)
    return SyncStorage(client, on_close=lambda: reactor_thread.call(tub.stopService))
