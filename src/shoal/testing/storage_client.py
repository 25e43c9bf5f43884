"""A synchronous client for a storage server over real Foolscap, for tests.

Its methods mirror StorageServer's, so the storage conformance suite runs
unchanged against an in-process server or a node process across a socket.
Each call crosses the network through the reactor thread.
"""

from typing import Any

from foolscap.api import Referenceable, Tub

from shoal.testing import reactor_thread


class _Canary(Referenceable):  # type: ignore[misc]
    pass


class RemoteBucketWriter:
    def __init__(self, rref: Any) -> None:
        self._rref = rref

    def write(self, offset: int, data: bytes) -> None:
        reactor_thread.call(self._rref.callRemote, "write", offset, data)

    def close(self) -> None:
        reactor_thread.call(self._rref.callRemote, "close")

    def abort(self) -> None:
        reactor_thread.call(self._rref.callRemote, "abort")


class RemoteBucketReader:
    def __init__(self, rref: Any) -> None:
        self._rref = rref

    def read(self, offset: int, length: int) -> bytes:
        return reactor_thread.call(self._rref.callRemote, "read", offset, length)

    def advise_corrupt_share(self, reason: bytes) -> None:
        reactor_thread.call(self._rref.callRemote, "advise_corrupt_share", reason)


class RemoteStorageClient:
    """Connects its own client Tub to a storage FURL."""

    def __init__(self, furl: str) -> None:
        self.furl = furl
        self.tub = Tub()
        reactor_thread.call(self.tub.startService)
        self.rref = reactor_thread.call(self.tub.getReference, furl)
        self.canary = _Canary()

    def close(self) -> None:
        """Drop the connection (the server sees the canary disconnect)."""
        reactor_thread.call(self.tub.stopService)

    def _call(self, name: str, *args: Any) -> Any:
        return reactor_thread.call(self.rref.callRemote, name, *args)

    def get_version(self) -> dict[bytes, Any]:
        return self._call("get_version")

    def allocate_buckets(
        self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes,
        sharenums: set[int], allocated_size: int,
    ) -> tuple[set[int], dict[int, RemoteBucketWriter]]:
        already, writers = self._call(
            "allocate_buckets", storage_index, renew_secret, cancel_secret, sharenums, allocated_size, self.canary
        )
        return set(already), {sh: RemoteBucketWriter(w) for sh, w in writers.items()}

    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> None:
        self._call("add_lease", storage_index, renew_secret, cancel_secret)

    def get_buckets(self, storage_index: bytes) -> dict[int, RemoteBucketReader]:
        return {sh: RemoteBucketReader(r) for sh, r in self._call("get_buckets", storage_index).items()}

    def slot_readv(self, storage_index: bytes, shares: list[int], readv: list[tuple[int, int]]) -> dict[int, list[bytes]]:
        return self._call("slot_readv", storage_index, shares, readv)

    def slot_testv_and_readv_and_writev(
        self, storage_index: bytes, secrets: tuple[bytes, bytes, bytes], tw_vectors: dict, read_vector: list
    ) -> tuple[bool, dict[int, list[bytes]]]:
        ok, data = self._call("slot_testv_and_readv_and_writev", storage_index, secrets, tw_vectors, read_vector)
        return ok, data

    def advise_corrupt_share(self, share_type: bytes, storage_index: bytes, shnum: int, reason: bytes) -> None:
        self._call("advise_corrupt_share", share_type, storage_index, shnum, reason)
