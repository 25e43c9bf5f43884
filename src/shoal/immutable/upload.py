"""Immutable (CHK) upload to the storage grid, as Tahoe-LAFS 1.20 does it, faster.

`await upload(broker, source, size, params=..., convergence_secret=...,
lease_secret=...)` returns an `UploadResult` whose cap any Tahoe 1.20 client
can read. Files of at most 55 bytes become URI:LIT: caps with no network.

1. **Key.** With a convergence secret the AES key is the convergent hash of
   the whole file (one read pass in the CPU pool, 1 MiB at a time); with
   None it is random. The storage index is the tagged hash of the key.
2. **Placement** (shoal.placement.happiness does the thinking). The first 2N
   servers of the permuted ring are consulted at once: the planned ones with
   allocate_buckets for the shares planned for them (share i to the i-th
   writable server at first), all others with get_buckets, which is how
   shares on read-only or full servers are found (a server is writable when
   its announced maximum-immutable-share-size fits the share). The answers
   (writers, shares already held, refusals, errors) are fed to the planner,
   which re-plans; the shares it moves are asked of the next servers, until
   nothing is left to ask. Holders of existing shares that the plan relies
   on are asked allocate_buckets too (it renews their leases, as in Tahoe).
   Writers the final plan does not need are aborted. If servers-of-happiness
   is below shares.happy, every writer is aborted (abort, not close: the
   servers discard the partial shares) and UploadUnhappinessError lists every
   server asked and what it answered.
3. **Existing shares.** When the plan needs no share pushed (a re-upload),
   nothing is encoded: the UEB is read from the existing shares on two
   servers (one if only one holds shares), the copies must agree and equal
   the UEB this file must have, rebuilt from the file's shape and its
   crypttext hashes (one AES + SHA-256 pass in the CPU pool) and the fetched
   share root hash; the cap is built from it. Otherwise the whole file is
   encoded and only the missing shares are pushed.
4. **Push**: shoal.immutable.push (bounded pipeline, ~1 MiB writes, every
   server in parallel), driven by shoal.immutable.share_upload, which also
   places (steps 2 and 4 are one `ShareUpload`, as in a repair). A share
   whose write fails is re-placed on another server when that raises
   happiness (a second pass over the source), else dropped; if happiness
   falls below shares.happy the upload aborts every unfinished writer and
   raises UploadUnhappinessError (shares already closed on other servers
   stay: they are complete and valid).

Lease secrets per server are derived as Tahoe does: node lease secret ->
client secret -> file secret (storage index) -> bucket secret (the server's
20-byte tub id, its lease seed).
"""

import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, BinaryIO

import attrs
from twisted.internet import defer

from shoal import cpu
from shoal.caps import CHKCap, LiteralCap
from shoal.crypto import hashes
from shoal.crypto.aes import AESCTR
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import b2a
from shoal.formats.errors import FormatError
from shoal.formats.ueb import pack_ueb, unpack_ueb
from shoal.grid.storage_broker import StorageBroker
from shoal.hashtree import CompleteHashTree
from shoal.immutable.coalesce import InFlightUploads
from shoal.immutable.encoder import AlreadyEncrypted, ImmutableEncoder, StreamCipher, ueb_fields
from shoal.immutable.params import LIT_THRESHOLD, EncodingParams, FileShape
from shoal.immutable.placer import (
    ExistingSharesError,
    NoServersError,
    ServerReport,
    SharePlacement,
    UploadError,
    UploadFullError,
    UploadUnhappinessError,
)
from shoal.immutable.push import PIPELINE_SEGMENTS, SourceError, error_text, gather, read_exactly
from shoal.immutable.share_upload import ShareSource, ShareUpload
from shoal.placement.happiness import Plan
from shoal.placement.policy import PlacementPolicy
from shoal.placement.straggler import LagRule

INLINE_LIMIT = 32 * 1024  # files this small are hashed and encoded on the calling thread
KEY_CHUNK = 1024 * 1024
UEB_COPIES = 2  # existing UEBs compared before a re-upload is trusted

__all__ = [
    "ExistingSharesError",
    "InFlightUploads",
    "NoServersError",
    "ServerReport",
    "SourceError",
    "UploadError",
    "UploadFullError",
    "UploadResult",
    "UploadUnhappinessError",
    "upload",
    "uploads_in_flight",
]


@attrs.frozen
class UploadResult:
    cap: str
    size: int
    storage_index: bytes | None  # None for LIT
    sharemap: dict[int, bytes]  # shnum -> server id relied upon for it
    servers: list[ServerReport]
    happiness: int
    preexisting_shares: int  # distinct shares found already on the grid
    pushed_shares: int
    bytes_pushed: int
    timings: dict[str, float]  # seconds: key, placement, push, total (and existing, for re-uploads)


def uploads_in_flight() -> InFlightUploads[UploadResult]:
    """A node's register of running uploads: a waiter runs the upload again
    when the one it waited for ended by its own caller's source."""
    return InFlightUploads((SourceError, OSError))


# --- CPU steps (pool threads, or inline for tiny files) -----------------------------


def _chunks(source: BinaryIO, position: int, size: int) -> Iterator[bytes]:
    if source.seekable():
        source.seek(position)
    done = 0
    while done < size:
        length = min(KEY_CHUNK, size - done)
        yield read_exactly(source, length, position + done)
        done += length


def _convergent_key(source: BinaryIO, position: int, shape: FileShape, secret: bytes) -> bytes:
    return convergent_key(_chunks(source, position, shape.size), secret, shape.k, shape.n, shape.segment_size)


def _crypttext_hashes(source: BinaryIO, position: int, key: bytes | None, shape: FileShape) -> tuple[bytes, bytes]:
    """(crypttext_hash, crypttext_root_hash) of the file under `key`, as the encoder computes them
    (key None: `source` holds the ciphertext already, as an upload helper's does)."""
    aes: StreamCipher = AESCTR(key) if key is not None else AlreadyEncrypted()
    whole = hashes.crypttext_hasher()
    leaves = []
    if source.seekable():
        source.seek(position)
    done = 0
    for segnum in range(shape.num_segments):
        length = shape.segment_length(segnum)
        crypttext = aes.process(read_exactly(source, length, position + done))
        done += length
        whole.update(crypttext)
        leaves.append(hashes.crypttext_segment_hash(crypttext))
    return whole.digest(), CompleteHashTree(leaves).root


# --- existing shares ----------------------------------------------------------------


async def _existing_cap(
    placement: SharePlacement,
    plan: Plan[bytes],
    encoder: ImmutableEncoder,
    crypttext_hashes: Awaitable[tuple[bytes, bytes]],
) -> tuple[str, int]:
    """The cap of a file whose shares are all on the grid already (see the module docstring)."""
    ueb, copies = await existing_ueb(placement, plan, encoder, crypttext_hashes)
    shape = encoder.shape
    cap = CHKCap(encoder.key, hashes.uri_extension_hash(ueb), shape.k, shape.n, shape.size)
    return cap.to_string(), copies


async def existing_ueb(
    placement: SharePlacement,
    plan: Plan[bytes],
    encoder: ImmutableEncoder,
    crypttext_hashes: Awaitable[tuple[bytes, bytes]],
) -> tuple[bytes, int]:
    """The UEB of a file whose shares are all on the grid already, checked against the UEB
    this file must have, and how many servers' copies agreed on it."""
    shape = encoder.shape
    rank = {sid: i for i, sid in enumerate(placement.order)}
    # one share per holder: relied-upon holders first, then other holders, in ring order
    holders: dict[bytes, int] = {}
    for sid in sorted(plan.relied, key=rank.__getitem__):
        holders[sid] = min(plan.relied[sid])
    for sid, shares in sorted(placement.planner.held().items(), key=lambda item: rank[item[0]]):
        holders.setdefault(sid, min(shares))
    want = min(UEB_COPIES, len(holders))
    uebs: dict[bytes, bytes] = {}
    errors: list[str] = []

    async def one(sid: bytes, shnum: int) -> None:
        try:
            uebs[sid] = await placement.read_ueb(sid, shnum, encoder)
        except ExistingSharesError:
            raise
        except Exception as e:  # unreachable or broken: try another holder
            errors.append(f"{placement.servers[sid].label}: {error_text(e)}")

    pending = list(holders.items())
    while len(uebs) < want and pending:
        batch, pending = pending[: want - len(uebs)], pending[want - len(uebs) :]
        await gather([defer.ensureDeferred(one(s, sh)) for s, sh in batch])
    if not uebs:
        raise ExistingSharesError(
            f"storage index {b2a(placement.si)}: could not read the shares already on the grid: "
            + "; ".join(errors)
        )
    copies = set(uebs.values())
    if len(copies) > 1:
        raise ExistingSharesError(
            f"storage index {b2a(placement.si)}: servers "
            + ", ".join(placement.servers[s].label for s in uebs)
            + " hold shares with different URI extension blocks"
        )
    ueb = copies.pop()
    crypttext_hash, crypttext_root = await crypttext_hashes
    try:
        share_root = unpack_ueb(ueb).get("share_root_hash")
    except FormatError as e:
        raise ExistingSharesError(f"storage index {b2a(placement.si)}: existing UEB: {e}") from None
    if not isinstance(share_root, bytes) or len(share_root) != hashes.HASH_LENGTH:
        raise ExistingSharesError(f"storage index {b2a(placement.si)}: existing UEB has no share root hash")
    expected = pack_ueb(ueb_fields(shape, crypttext_hash, crypttext_root, share_root))
    if expected != ueb:
        raise ExistingSharesError(
            f"storage index {b2a(placement.si)}: the shares already on the grid describe another "
            "file (their URI extension block differs from this file's)"
        )
    return ueb, len(uebs)


# --- the upload ---------------------------------------------------------------------


async def upload(
    broker: StorageBroker,
    source: BinaryIO,
    size: int,
    *,
    params: EncodingParams,
    convergence_secret: bytes | None,
    lease_secret: bytes,
    write_size: int | None = None,
    pipeline_segments: int = PIPELINE_SEGMENTS,
    key: bytes | None = None,
    in_flight: "InFlightUploads[UploadResult] | None" = None,
) -> UploadResult:
    """Upload `size` bytes of `source` (from its current position) as an immutable file.

    convergence_secret None means a random key; `key`, when given, is the AES
    key computed already (the web API hashes a PUT body while it arrives).
    `in_flight`, the node's running uploads: an upload of the same storage
    index, shape and happiness running already is awaited instead of raced
    (shoal.immutable.coalesce).
    Raises UploadUnhappinessError, NoServersError, ExistingSharesError,
    SourceError (the stream ended early).
    """
    if size < 0:
        raise ValueError(f"negative size {size}")
    started = time.monotonic()
    position = source.tell() if source.seekable() else 0
    if size <= LIT_THRESHOLD:
        data = read_exactly(source, size, position)
        took = time.monotonic() - started
        return UploadResult(
            cap=LiteralCap(data).to_string(), size=size, storage_index=None, sharemap={}, servers=[],
            happiness=0, preexisting_shares=0, pushed_shares=0, bytes_pushed=0,
            timings={"key": 0.0, "placement": 0.0, "push": 0.0, "total": took},
        )
    shape = FileShape(size, params.k, params.n, params.segment_size_for(size))
    inline = size <= INLINE_LIMIT

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args) if inline else await cpu.run(fn, *args)

    if key is not None:
        pass
    elif convergence_secret is None:
        key = os.urandom(16)
    else:
        key = await run(_convergent_key, source, position, shape, convergence_secret)
    storage_index = hashes.storage_index_hash(key)
    t_key = time.monotonic()
    file_key = key

    async def place_and_push() -> UploadResult:
        shares = ShareUpload(
            broker, storage_index, shape, lease_secret, PlacementPolicy.upload(params.happy),
            ShareSource(source, position, lambda: ImmutableEncoder(file_key, shape), inline=inline),
            stragglers=LagRule(),
        )
        plan = await shares.place()
        t_place = time.monotonic()
        timings = {"key": t_key - started, "placement": t_place - t_key}

        try:
            cap, bytes_pushed, pushed, sharemap = await _finish(
                shares, plan, source, position, run, timings, write_size, pipeline_segments
            )
        except BaseException:
            await shares.abort()  # whatever is not closed yet; a no-op for closed buckets
            raise
        timings["total"] = time.monotonic() - started
        return UploadResult(
            cap=cap,
            size=size,
            storage_index=storage_index,
            sharemap=dict(sorted(sharemap.items())),
            servers=shares.reports(),
            happiness=shares.happiness(),
            preexisting_shares=shares.preexisting_shares(),
            pushed_shares=pushed,
            bytes_pushed=bytes_pushed,
            timings=timings,
        )

    if in_flight is None:
        return await place_and_push()
    return await in_flight.run((storage_index, shape, params.happy), place_and_push)


async def _finish(
    shares: ShareUpload,
    plan: Plan[bytes],
    source: BinaryIO,
    position: int,
    run: Callable[..., Coroutine[Any, Any, Any]],
    timings: dict[str, float],
    write_size: int | None,
    pipeline_segments: int,
) -> tuple[str, int, int, dict[int, bytes]]:
    """After placement: the cap from existing shares, or encode and push."""
    t_place = time.monotonic()
    encoder = shares.encoder
    key, shape = encoder.key, encoder.shape
    sharemap = {sh: sid for sid, held in plan.relied.items() for sh in held}
    if not plan.keep:
        # every share we need is on the grid already: nothing to encode or push
        hashes_d: defer.Deferred[tuple[bytes, bytes]] = defer.ensureDeferred(
            run(_crypttext_hashes, source, position, key, shape)
        )
        try:
            cap, _ = await _existing_cap(shares.placement, plan, encoder, hashes_d)
        finally:
            await defer.DeferredList([hashes_d], consumeErrors=True)
        bytes_pushed, pushed = 0, 0
        timings["existing"] = time.monotonic() - t_place
        timings["push"] = 0.0
    else:
        result = await shares.push(plan, write_size=write_size, pipeline_segments=pipeline_segments)
        cap = result.encoded.cap.to_string()
        bytes_pushed, pushed = result.bytes_pushed, len(result.shares_pushed)
        sharemap.update(result.shares_pushed)
        timings["push"] = time.monotonic() - t_place
    return cap, bytes_pushed, pushed, sharemap
