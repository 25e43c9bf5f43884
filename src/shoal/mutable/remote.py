"""Mutable files' calls to storage servers' slots, through each server's StorageClient.

Secrets, as Tahoe-LAFS 1.20 derives them per server: the write enabler is
the tagged hash of (write-enabler master from the writekey, server tub id);
lease renew/cancel secrets go node lease secret -> file (storage index) ->
bucket (server tub id). Test vectors on the wire are
(offset, length, b"eq", specimen). Deadlines and error translation belong
to the StorageClient: every failure here is a ServerError.
"""

from __future__ import annotations

from typing import Any

from shoal.crypto.hashes import (
    bucket_cancel_secret,
    bucket_renewal_secret,
    client_cancel_secret,
    client_renewal_secret,
    file_cancel_secret,
    file_renewal_secret,
    ssk_write_enabler_hash,
)
from shoal.grid.storage_client import (
    ReadVector,
    ServerError,
    SlotWrite,
    TestWriteResult,
    WriteSecrets,
)


def write_secrets(writekey: bytes, lease_secret: bytes, storage_index: bytes, server: Any) -> WriteSecrets:
    """The write enabler and lease renew/cancel secrets for one server."""
    seed = server.tubid
    renew = bucket_renewal_secret(file_renewal_secret(client_renewal_secret(lease_secret), storage_index), seed)
    cancel = bucket_cancel_secret(file_cancel_secret(client_cancel_secret(lease_secret), storage_index), seed)
    return WriteSecrets(ssk_write_enabler_hash(writekey, seed), renew, cancel)


async def readv(server: Any, storage_index: bytes, shares: list[int], vector: ReadVector) -> dict[int, list[bytes]]:
    return await server.connected_storage("slot_readv").slot_readv(storage_index, shares, vector)


async def test_and_write(
    server: Any,
    storage_index: bytes,
    secrets: WriteSecrets,
    vectors: dict[int, SlotWrite],
    read_vector: ReadVector,
) -> TestWriteResult:
    client = server.connected_storage("slot_testv_and_readv_and_writev")
    return await client.slot_testv_and_readv_and_writev(storage_index, secrets, vectors, read_vector)


async def advise_corrupt(server: Any, storage_index: bytes, shnum: int, reason: str) -> None:
    """Tell a server (best effort) that one of its mutable shares failed a check."""
    try:
        client = server.connected_storage("advise_corrupt_share")
        await client.advise_corrupt_share(b"mutable", storage_index, shnum, reason.encode("utf-8", "replace"))
    except ServerError:
        pass
