"""Calls to storage servers' slot API (Foolscap) for mutable files, with deadlines.

Secrets, as Tahoe-LAFS 1.20 derives them per server: the write enabler is
the tagged hash of (write-enabler master from the writekey, server tub id);
lease renew/cancel secrets go node lease secret -> file (storage index) ->
bucket (server tub id). Test vectors on the wire are
(offset, length, b"eq", specimen).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as _reactor

from shoal.crypto.hashes import (
    bucket_cancel_secret,
    bucket_renewal_secret,
    client_cancel_secret,
    client_renewal_secret,
    file_cancel_secret,
    file_renewal_secret,
    ssk_write_enabler_hash,
)
from shoal.errors import Fault
from shoal.mutable.errors import MutableError

reactor: Any = _reactor
QUERY_TIMEOUT = 60.0

ReadVector = list[tuple[int, int]]
TestVector = list[tuple[int, int, bytes, bytes]]
WriteVector = list[tuple[int, bytes]]


class ServerFailure(MutableError):
    """A storage server did not answer, or answered with an error (its fault or the network's)."""

    fault = Fault.SERVER


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "error"


async def call(server: Any, method: str, *args: Any, timeout: float = QUERY_TIMEOUT) -> Any:
    """server.rref.callRemote(method, *args) with a deadline; ServerFailure on any trouble."""
    ref = server.rref
    if ref is None or not server.is_connected():
        raise ServerFailure(f"server {server.name}: not connected")
    try:
        d = ref.callRemote(method, *args)
    except Exception as e:
        raise ServerFailure(f"server {server.name}: {method}: {_first_line(str(e))}") from None
    d.addTimeout(timeout, reactor)
    try:
        return await d
    except defer.TimeoutError:
        raise ServerFailure(f"server {server.name}: {method} got no answer in {timeout:.0f}s") from None
    except Exception as e:
        text = getattr(e, "args", None) and str(e) or type(e).__name__
        raise ServerFailure(f"server {server.name}: {method} failed: {_first_line(text)}") from None


def write_secrets(
    writekey: bytes, lease_secret: bytes, storage_index: bytes, server: Any
) -> tuple[bytes, bytes, bytes]:
    """(write enabler, lease renew secret, lease cancel secret) for one server."""
    seed = server.tubid
    renew = bucket_renewal_secret(file_renewal_secret(client_renewal_secret(lease_secret), storage_index), seed)
    cancel = bucket_cancel_secret(file_cancel_secret(client_cancel_secret(lease_secret), storage_index), seed)
    return ssk_write_enabler_hash(writekey, seed), renew, cancel


async def readv(server: Any, storage_index: bytes, shares: list[int], vector: ReadVector) -> dict[int, list[bytes]]:
    answer = await call(server, "slot_readv", storage_index, shares, vector)
    if not isinstance(answer, dict):
        raise ServerFailure(f"server {server.name}: slot_readv answered {type(answer).__name__}")
    return answer


async def test_and_write(
    server: Any,
    storage_index: bytes,
    secrets: tuple[bytes, bytes, bytes],
    vectors: dict[int, tuple[TestVector, WriteVector, int | None]],
    read_vector: ReadVector,
) -> tuple[bool, dict[int, list[bytes]]]:
    answer = await call(
        server, "slot_testv_and_readv_and_writev", storage_index, secrets, vectors, read_vector
    )
    ok, reads = answer
    return bool(ok), dict(reads)
