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
   server in parallel). A share whose write or close fails is dropped; if
   happiness falls below shares.happy the upload aborts every unfinished
   writer and raises UploadUnhappinessError (shares already closed on other
   servers stay: they are complete and valid).

Lease secrets per server are derived as Tahoe does: node lease secret ->
client secret -> file secret (storage index) -> bucket secret (the server's
20-byte tub id, its lease seed).
"""

import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, BinaryIO

import attrs
from foolscap.api import Referenceable
from twisted.internet import defer

from shoal.caps import CHKCap, LiteralCap
from shoal.crypto import hashes
from shoal.crypto.aes import AESCTR
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import b2a
from shoal.errors import ShoalError
from shoal.formats.errors import FormatError
from shoal.formats.ueb import pack_ueb, unpack_ueb
from shoal.grid import cpu
from shoal.grid.storage_broker import STORAGE_V1, GridServer, StorageBroker
from shoal.hashtree import CompleteHashTree
from shoal.immutable.encoder import ImmutableEncoder, ueb_fields, ueb_length
from shoal.immutable.params import LIT_THRESHOLD, EncodingParams, FileShape
from shoal.immutable.push import (
    PIPELINE_SEGMENTS,
    Pusher,
    SourceError,
    call_remote,
    error_text,
    gather,
    read_exactly,
)
from shoal.placement.happiness import Plan, Planner

QUERY_TIMEOUT = 30.0  # seconds for allocate_buckets, get_buckets and reads (Tahoe: 15 s per query)
INLINE_LIMIT = 32 * 1024  # files this small are hashed and encoded on the calling thread
KEY_CHUNK = 1024 * 1024
MAX_PLACEMENT_ROUNDS = 16  # a safety net: each round asks servers never asked for these shares
UEB_COPIES = 2  # existing UEBs compared before a re-upload is trusted

__all__ = [
    "ExistingSharesError",
    "NoServersError",
    "ServerReport",
    "SourceError",
    "UploadError",
    "UploadResult",
    "UploadUnhappinessError",
    "upload",
]


class UploadError(ShoalError):
    """An immutable upload failed."""


class NoServersError(UploadError):
    """No storage server is connected."""


class UploadUnhappinessError(UploadError):
    """Shares could not be placed on shares.happy servers; says what each server answered."""


class ExistingSharesError(UploadError):
    """Shares already stored under this storage index do not belong to this file."""


@attrs.frozen
class ServerReport:
    """One server consulted during placement and what it answered."""

    server_id: bytes
    name: str
    asked: frozenset[int]
    already: frozenset[int]
    allocated: frozenset[int]
    error: str | None
    answer: str  # one line: "allocated sh0, already had sh5" / "full: refused sh3" / "error: ..."


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


class _Canary(Referenceable):  # type: ignore[misc]
    """Passed to allocate_buckets: servers discard our partial shares if we vanish."""


def _max_share_size(server: GridServer) -> int | None:
    version = server.version or {}
    v1 = version.get(STORAGE_V1)
    if not isinstance(v1, dict):
        return None
    size = v1.get(b"maximum-immutable-share-size")
    return size if isinstance(size, int) else None


def _server_name(server: GridServer) -> str:
    return f"{server.nickname} [{server.name}]" if server.nickname else f"[{server.name}]"


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


def _crypttext_hashes(source: BinaryIO, position: int, key: bytes, shape: FileShape) -> tuple[bytes, bytes]:
    """(crypttext_hash, crypttext_root_hash) of the file under `key`, as the encoder computes them."""
    aes = AESCTR(key)
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


# --- placement ---------------------------------------------------------------------


class _Placement:
    """The network side of placement: queries servers, feeds the Planner, keeps the writers."""

    def __init__(
        self,
        broker: StorageBroker,
        storage_index: bytes,
        shape: FileShape,
        allocated_size: int,
        lease_secret: bytes,
        happy: int,
        timeout: float | None,
    ) -> None:
        self.si = storage_index
        self.shape = shape
        self.allocated_size = allocated_size
        self.happy = happy
        self.timeout = timeout
        candidates = [s for s in broker.get_servers_for_psi(storage_index) if s.rref is not None]
        candidates = candidates[: 2 * shape.n]
        if not candidates:
            raise NoServersError("no storage servers are connected")
        self.servers: dict[bytes, GridServer] = {s.server_id: s for s in candidates}
        self.order = [s.server_id for s in candidates]
        writable = set()
        for s in candidates:
            limit = _max_share_size(s)
            if limit is None or limit >= allocated_size:
                writable.add(s.server_id)
        self.planner: Planner[bytes] = Planner(self.order, shape.n, happy, writable)
        file_renew = hashes.file_renewal_secret(hashes.client_renewal_secret(lease_secret), storage_index)
        file_cancel = hashes.file_cancel_secret(hashes.client_cancel_secret(lease_secret), storage_index)
        self.renew = {s.server_id: hashes.bucket_renewal_secret(file_renew, s.tubid) for s in candidates}
        self.cancel = {s.server_id: hashes.bucket_cancel_secret(file_cancel, s.tubid) for s in candidates}
        self.canary = _Canary()
        self.writers: dict[tuple[bytes, int], Any] = {}
        self.readers: dict[bytes, dict[int, Any]] = {}
        self.pusher: Pusher | None = None
        self.plan: Plan[bytes] | None = None

    async def call(self, ref: Any, method: str, *args: Any) -> Any:
        d = call_remote(ref, method, *args)
        if self.timeout:
            d.addTimeout(self.timeout, cpu.reactor)
        return await d

    async def _allocate(self, sid: bytes, shares: frozenset[int]) -> None:
        self.planner.sent_allocate(sid, shares)
        server = self.servers[sid]
        try:
            answer = await self.call(
                server.rref, "allocate_buckets", self.si, self.renew[sid], self.cancel[sid],
                set(shares), self.allocated_size, self.canary,
            )
            already, writers = answer
            already = {sh for sh in already if isinstance(sh, int)}
        except Exception as e:
            self.planner.failed(sid, error_text(e))
            return
        granted = {}
        for sh, writer in writers.items():
            if sh in shares:
                granted[sh] = writer
            else:  # not asked for: give it back
                self._abort_writer(writer)
        self.planner.got_allocate(sid, shares, already, granted)
        for sh, writer in granted.items():
            self.writers[(sid, sh)] = writer

    async def _get_buckets(self, sid: bytes) -> None:
        try:
            readers = await self.call(self.servers[sid].rref, "get_buckets", self.si)
        except Exception as e:
            self.planner.failed(sid, error_text(e))
            return
        self.readers[sid] = readers
        self.planner.got_buckets(sid, [sh for sh in readers if isinstance(sh, int)])

    def _abort_writer(self, writer: Any) -> "defer.Deferred[Any]":
        d = call_remote(writer, "abort")
        d.addErrback(lambda _f: None)
        return d

    async def _gather(self, coros: Sequence[Coroutine[Any, Any, None]]) -> None:
        await gather([defer.ensureDeferred(c) for c in coros])

    async def place(self) -> Plan[bytes]:
        """Consult the servers until nothing is left to ask; abort every writer
        and raise UploadUnhappinessError if the result is not happy."""
        try:
            return await self._place()
        except UploadUnhappinessError:
            raise
        except BaseException:
            await self.abort_all()
            raise

    async def _place(self) -> Plan[bytes]:
        planner = self.planner
        first = planner.requests()
        await self._gather(
            [self._allocate(sid, shares) for sid, shares in first.items()]
            + [self._get_buckets(sid) for sid in self.order if sid not in first]
        )
        for _ in range(MAX_PLACEMENT_ROUNDS):
            requests = planner.requests()
            if not requests:
                break
            await self._gather([self._allocate(sid, shares) for sid, shares in requests.items()])
        plan = planner.plan()
        unneeded = planner.unneeded(plan)
        aborts = []
        for sid, shares in unneeded.items():
            for sh in shares:
                aborts.append(self._abort_writer(self.writers.pop((sid, sh))))
            planner.abandon(sid, shares)
        await defer.DeferredList(aborts)
        happiness = planner.happiness()
        if happiness < self.happy:
            await self.abort_all()
            raise UploadUnhappinessError(self.failure_message(happiness))
        self.plan = plan
        return plan

    async def abort_all(self) -> None:
        writers, self.writers = self.writers, {}
        await defer.DeferredList([self._abort_writer(w) for w in writers.values()])

    # -- while pushing --

    def dropped(self, sid: bytes, shnum: int, why: str) -> None:
        """A share's writer failed: drop it; stop the push if we are no longer happy."""
        self.writers.pop((sid, shnum), None)
        self.planner.drop(sid, shnum, why)
        happiness = self.planner.happiness()
        if happiness < self.happy and self.pusher is not None:
            self.pusher.stop(UploadUnhappinessError(self.failure_message(happiness, lost=True)))

    # -- reporting --

    def failure_message(self, happiness: int, lost: bool = False) -> str:
        k, n = self.shape.k, self.shape.n
        planner = self.planner
        with_shares = [s for s, a in planner.answers.items() if a.already or a.allocated]
        what = "kept" if lost else "placed or found"
        names = {sid: _server_name(s) for sid, s in self.servers.items()}
        return (
            f"upload of storage index {b2a(self.si)} failed: shares could be {what} on "
            f"{len(with_shares)} server(s), giving servers-of-happiness {happiness}, but {k}-of-{n} "
            f"with shares.happy={self.happy} needs shares on at least {self.happy} servers such "
            f"that any {k} of them can recover the file. Asked {len(self.order)} server(s): "
            f"{planner.describe(names)}"
        )

    def reports(self) -> list[ServerReport]:
        out = []
        for sid in self.order:
            a = self.planner.answers[sid]
            out.append(ServerReport(
                server_id=sid,
                name=_server_name(self.servers[sid]),
                asked=frozenset(a.asked),
                already=frozenset(a.already),
                allocated=frozenset(a.allocated),
                error=a.error,
                answer=a.describe(),
            ))
        return out

    # -- existing shares --

    async def read_ueb(self, sid: bytes, shnum: int, encoder: ImmutableEncoder) -> bytes:
        """The UEB stored in share shnum on server sid (checked against the layout we expect)."""
        name = _server_name(self.servers[sid])
        readers = self.readers.get(sid)
        if readers is None or shnum not in readers:
            readers = await self.call(self.servers[sid].rref, "get_buckets", self.si)
            self.readers[sid] = readers
        reader = readers.get(shnum)
        if reader is None:
            raise ExistingSharesError(f"server {name} no longer holds share {shnum}")
        layout = encoder.layout
        expected_length = ueb_length(self.shape)
        header, tail = await gather([
            defer.ensureDeferred(self.call(reader, "read", 0, layout.header_size)),
            defer.ensureDeferred(
                self.call(reader, "read", layout.uri_extension, layout.field_size + expected_length)
            ),
        ])
        if header != encoder.header:
            raise ExistingSharesError(
                f"share {shnum} on server {name} does not have the layout this file needs"
            )
        try:
            length = layout.parse_ueb_length(tail[: layout.field_size])
        except FormatError as e:
            raise ExistingSharesError(f"share {shnum} on server {name}: {e}") from None
        ueb = tail[layout.field_size :]
        if length != expected_length or len(ueb) != length:
            raise ExistingSharesError(
                f"share {shnum} on server {name} holds a UEB of {len(ueb)} of {length} bytes, "
                f"expected {expected_length}"
            )
        return bytes(ueb)


async def _existing_cap(
    placement: _Placement,
    plan: Plan[bytes],
    encoder: ImmutableEncoder,
    crypttext_hashes: Awaitable[tuple[bytes, bytes]],
) -> tuple[str, int]:
    """The cap of a file whose shares are all on the grid already (see the module docstring)."""
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
            errors.append(f"{_server_name(placement.servers[sid])}: {error_text(e)}")

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
            + ", ".join(_server_name(placement.servers[s]) for s in uebs)
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
    cap = CHKCap(encoder.key, hashes.uri_extension_hash(ueb), shape.k, shape.n, shape.size)
    return cap.to_string(), len(uebs)


# --- the upload ---------------------------------------------------------------------


async def upload(
    broker: StorageBroker,
    source: BinaryIO,
    size: int,
    *,
    params: EncodingParams,
    convergence_secret: bytes | None,
    lease_secret: bytes,
    query_timeout: float | None = QUERY_TIMEOUT,
    write_size: int | None = None,
    pipeline_segments: int = PIPELINE_SEGMENTS,
) -> UploadResult:
    """Upload `size` bytes of `source` (from its current position) as an immutable file.

    convergence_secret None means a random key. Raises UploadUnhappinessError,
    NoServersError, ExistingSharesError, SourceError (the stream ended early).
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

    if convergence_secret is None:
        key = os.urandom(16)
    else:
        key = await run(_convergent_key, source, position, shape, convergence_secret)
    storage_index = hashes.storage_index_hash(key)
    t_key = time.monotonic()
    encoder = ImmutableEncoder(key, shape)
    placement = _Placement(
        broker, storage_index, shape, encoder.share_size(), lease_secret, params.happy, query_timeout
    )
    plan = await placement.place()
    t_place = time.monotonic()
    timings = {"key": t_key - started, "placement": t_place - t_key}

    try:
        cap, bytes_pushed, pushed, sharemap = await _finish(
            placement, plan, encoder, source, position, run, timings, write_size, pipeline_segments
        )
    except BaseException:
        await placement.abort_all()  # whatever is not closed yet; a no-op for closed buckets
        raise
    timings["total"] = time.monotonic() - started
    return UploadResult(
        cap=cap,
        size=size,
        storage_index=storage_index,
        sharemap=dict(sorted(sharemap.items())),
        servers=placement.reports(),
        happiness=placement.planner.happiness(),
        preexisting_shares=len(placement.planner.existing_shares()),
        pushed_shares=pushed,
        bytes_pushed=bytes_pushed,
        timings=timings,
    )


async def _finish(
    placement: _Placement,
    plan: Plan[bytes],
    encoder: ImmutableEncoder,
    source: BinaryIO,
    position: int,
    run: Callable[..., Coroutine[Any, Any, Any]],
    timings: dict[str, float],
    write_size: int | None,
    pipeline_segments: int,
) -> tuple[str, int, int, dict[int, bytes]]:
    """After placement: the cap from existing shares, or encode and push."""
    t_place = time.monotonic()
    key, shape = encoder.key, encoder.shape
    inline = shape.size <= INLINE_LIMIT
    if not plan.keep:
        # every share we need is on the grid already: nothing to encode or push
        hashes_d: defer.Deferred[tuple[bytes, bytes]] = defer.ensureDeferred(
            run(_crypttext_hashes, source, position, key, shape)
        )
        try:
            cap, _ = await _existing_cap(placement, plan, encoder, hashes_d)
        finally:
            await defer.DeferredList([hashes_d], consumeErrors=True)
        bytes_pushed, pushed = 0, 0
        sharemap = {sh: sid for sid, shares in plan.relied.items() for sh in shares}
        timings["existing"] = time.monotonic() - t_place
        timings["push"] = 0.0
    else:
        writers = {
            sh: (sid, placement.writers[(sid, sh)]) for sid, shares in plan.keep.items() for sh in shares
        }
        pusher = Pusher(
            encoder, source, position, writers, placement.dropped,
            write_size=write_size, pipeline_segments=pipeline_segments, inline=inline,
        )
        placement.pusher = pusher
        result = await pusher.run()  # aborts its unfinished buckets if it fails
        cap = result.encoded.cap.to_string()
        bytes_pushed, pushed = result.bytes_pushed, len(result.shares_pushed)
        sharemap = {sh: sid for sid, shares in plan.relied.items() for sh in shares}
        sharemap.update(result.shares_pushed)
        timings["push"] = time.monotonic() - t_place
    return cap, bytes_pushed, pushed, sharemap
