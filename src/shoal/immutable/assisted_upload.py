"""An immutable upload through an upload helper (Tahoe-LAFS 1.20's AssistedUploader).

The client computes the key (convergent, from the whole file, as a direct
upload does; or random) and the storage index, asks the helper
``upload_chk(storage_index)`` and, when the helper wants the file, serves
the ciphertext through an ``EncryptedSource`` (Tahoe's
RIEncryptedUploadable: any offset forward or back, so a helper that holds
part of the file from an earlier attempt asks only for the rest). The cap is
built from the helper's UEB hash and is the one a direct upload gives.
The helper's answer must describe this file (k, n, segment size, size), or
the upload fails.
"""

import os
import time
from collections.abc import Awaitable
from typing import Any, BinaryIO, Protocol

from twisted.internet import defer

from shoal import cpu
from shoal.caps import CHKCap
from shoal.crypto import hashes
from shoal.crypto.aes import AESCTR
from shoal.errors import Fault, ShoalError
from shoal.immutable.params import EncodingParams, FileShape
from shoal.immutable.push import read_exactly
from shoal.immutable.upload import UploadResult, _convergent_key
from shoal.protocol.helper import HelperResults

MAX_READ = 4 * 1024 * 1024  # at most this much ciphertext per read_encrypted answer
INLINE_LIMIT = 64 * 1024  # reads this small are encrypted on the calling thread


class AssistedUploadError(ShoalError):
    """The helper's answer does not describe this file."""

    fault = Fault.GRID


class UploadHelperRef(Protocol):
    """RICHKUploadHelper as the client calls it."""

    def upload(self, reader: "EncryptedSource") -> Awaitable[HelperResults]: ...


class HelperRef(Protocol):
    """RIHelper as the client calls it."""

    def upload_chk(self, storage_index: bytes) -> Awaitable[tuple[HelperResults | None, UploadHelperRef | None]]: ...


class EncryptedSource:
    """The ciphertext of `size` bytes of `source` (from `position`) under `key`, served by offset."""

    def __init__(self, source: BinaryIO, position: int, size: int, key: bytes, params: EncodingParams) -> None:
        self._source = source
        self._position = position
        self.size = size
        self._key = key
        self.parameters = (params.k, params.happy, params.n, params.segment_size_for(size))
        self.bytes_sent = 0
        self.closed = False
        self._lock = defer.DeferredLock()  # one read at a time: each seeks the one source file

    async def get_size(self) -> int:
        return self.size

    async def get_all_encoding_parameters(self) -> tuple[int, int, int, int]:
        return self.parameters

    async def read_encrypted(self, offset: int, length: int) -> list[bytes]:
        if offset < 0 or length < 0:
            raise ValueError(f"read_encrypted({offset}, {length}): negative")
        length = max(0, min(length, MAX_READ, self.size - offset))
        if length == 0:
            return []
        await self._lock.acquire()
        try:
            if length <= INLINE_LIMIT:
                data = self._read(offset, length)
            else:
                data = await cpu.run(self._read, offset, length)
        finally:
            self._lock.release()
        self.bytes_sent += len(data)
        return [data]

    def _read(self, offset: int, length: int) -> bytes:
        self._source.seek(self._position + offset)
        return AESCTR(self._key, offset).process(read_exactly(self._source, length, self._position + offset))

    async def close(self) -> None:
        self.closed = True


def check_results(results: HelperResults, shape: FileShape) -> None:
    data = results.uri_extension_data
    want = {"needed_shares": shape.k, "total_shares": shape.n, "segment_size": shape.segment_size,
            "size": shape.size}
    for key, value in want.items():
        if data.get(key) != value:
            raise AssistedUploadError(
                f"the helper's upload results say {key} = {data.get(key)!r}, this file has {value}"
            )


async def assisted_upload(
    helper: HelperRef,
    source: BinaryIO,
    size: int,
    *,
    params: EncodingParams,
    convergence_secret: bytes | None,
    key: bytes | None = None,
) -> UploadResult:
    """Upload `size` (> 55) bytes of `source` from its position through `helper`."""
    started = time.monotonic()
    position = source.tell()
    shape = FileShape(size, params.k, params.n, params.segment_size_for(size))
    if key is None:
        if convergence_secret is None:
            key = os.urandom(16)
        else:
            key = await cpu.run(_convergent_key, source, position, shape, convergence_secret)
    storage_index = hashes.storage_index_hash(key)
    t_key = time.monotonic()
    results, uploader = await helper.upload_chk(storage_index)
    t_contact = time.monotonic()
    reader = EncryptedSource(source, position, size, key, params)
    if uploader is not None:
        results = await uploader.upload(reader)
    if results is None:
        raise AssistedUploadError("the helper answered neither upload results nor an upload helper")
    check_results(results, shape)
    cap = CHKCap(key, results.uri_extension_hash, shape.k, shape.n, size)
    timings: dict[str, Any] = {"storage_index": t_key - started, "contacting_helper": t_contact - t_key}
    for name, value in results.timings.items():
        timings["helper_total" if name == "total" else name] = value
    timings["total"] = time.monotonic() - started
    servers = {sid for ids in results.sharemap.values() for sid in ids}
    return UploadResult(
        cap=cap.to_string(),
        size=size,
        storage_index=storage_index,
        sharemap={sh: min(ids) for sh, ids in sorted(results.sharemap.items()) if ids},
        servers=[],
        happiness=len(servers),
        preexisting_shares=results.preexisting_shares,
        pushed_shares=results.pushed_shares,
        bytes_pushed=reader.bytes_sent,
        timings=timings,
    )
