"""Download an immutable (CHK) file from the grid: find, fetch, validate, decode, stream.

The shell over shoal.immutable.remote_share (one share on one server), the
pure validator (shoal.immutable.decoder) and the fetch planner
(shoal.immutable.fetch_plan), which alone chooses the shares (steps 1, 2 and
4: what to open, how long to wait for a better choice, when to give up):

1. Ask every connected server at once which shares it holds (see
   share_finder); for a small file (one segment, shares read whole) read
   shares 0..k-1 at once from the first k servers of the permuted ring, where
   an upload puts them, so a healthy grid answers in one round trip (a guess
   that misses is no find, never a fault). Start as soon as k distinct shares are known; when those
   allow only a poor choice (check shares, several shares on one server) and
   the download is big enough to care, wait a few milliseconds more for the
   other answers. Later answers become spares.
2. Open k shares: primary shares (0..k-1: decoding them is a join) first,
   then servers by how fast they answered, one share per server when
   possible. Opening is one round trip (see remote_share) and proves the UEB
   against the cap, the share's hash chain and its block hash tree.
3. Segments go through a window of a few in flight: read the k blocks (after
   the first segment, one read brings the blocks of a few segments), then in
   the CPU pool check each against its proven leaf, decode, check the
   segment against the crypttext tree and decrypt, all in one hop; deliver
   in order to the consumer and await it when it returns an awaitable (its
   backpressure). Memory is a few segments whatever the file size.
4. A share that fails a check, times out or disconnects is dropped (a
   corrupt one is reported to its server with advise_corrupt_share); another
   share is opened and only the blocks still missing are fetched again. The
   file is never restarted, and nothing that failed a check is delivered.

A range read fetches only the segments that overlap it. With a verify cap
the validated ciphertext is delivered; shoal.immutable.verify checks every
block of every share instead, for the checker.
"""

import inspect
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
from twisted.internet import defer

from shoal import cpu
from shoal.caps import CHKCap, CHKVerifierCap, LiteralCap
from shoal.immutable.decoder import (
    BadBlockError,
    DownloadError,
    FileIdentity,
    FileValidator,
    NotEnoughSharesError,
)
from shoal.immutable.fetch_plan import BlocksValidated, FetchPlanner, Grace, ShareKey
from shoal.immutable.remote_share import (
    CorruptShare,
    LayoutGuess,
    RemoteShare,
    ShareProblem,
    ShareTimeout,
    ShareUnreachable,
    whole_share_read,
)
from shoal.immutable.share_finder import ShareFailure, ShareFinder

__all__ = [
    "CorruptShare",
    "DownloadError",
    "DownloadResult",
    "NotEnoughSharesError",
    "ShareFailure",
    "ShareProblem",
    "ShareTimeout",
    "ShareUnreachable",
    "download",
]

WINDOW_BYTES = 6 * 1024 * 1024  # segments in flight: about this many bytes of them
MAX_WINDOW = 16
READ_SPAN = 1536 * 1024  # bytes of consecutive blocks per read, at most
# Once k shares are known, wait a little for answers that allow a better choice
# (primary shares, one share per server): as long as the first answers took, at
# least MIN_GRACE, but never longer than what the better choice could save on
# this download (its bytes at GRACE_RATE) nor MAX_GRACE.
MIN_GRACE = 0.005
MAX_GRACE = 0.25
GRACE_RATE = 500e6  # bytes per second

Writer = Callable[[bytes], Awaitable[None] | None]


@attrs.frozen
class DownloadResult:
    """What a download did, for callers and status pages."""

    storage_index: bytes | None
    size: int  # of the whole file
    offset: int
    bytes_written: int
    bytes_fetched: int  # from all servers, hash trees and headers included
    servers_used: Mapping[int, tuple[bytes, ...]]  # shnum -> servers its blocks came from
    shares_found: Mapping[int, tuple[bytes, ...]]  # shnum -> servers that said they hold it
    server_names: Mapping[bytes, str]  # server id -> "nickname (short id)"
    failures: tuple[ShareFailure, ...]
    no_answer: Mapping[bytes, str]  # server id -> why its get_buckets failed
    time_to_first_byte: float | None  # seconds from the start
    elapsed: float


def _identity(cap: CHKCap | CHKVerifierCap) -> tuple[FileIdentity, bytes]:
    key = cap.key if isinstance(cap, CHKCap) else None
    return FileIdentity(cap.ueb_hash, cap.needed, cap.total, cap.size, key), cap.storage_index


async def download(
    broker: Any,
    cap: CHKCap | CHKVerifierCap | LiteralCap,
    write: Writer,
    *,
    offset: int = 0,
    length: int | None = None,
    report_corruption: bool = True,
) -> DownloadResult:
    """Stream bytes [offset, offset+length) of the file to `write`, in order.

    Plaintext for a read cap; for a verify cap the validated ciphertext.
    Raises NotEnoughSharesError (saying what was found where and what went
    wrong with each rejected share) or another DownloadError; in any case no
    byte that failed a check has been written.
    """
    started = time.monotonic()
    size = len(cap.data) if isinstance(cap, LiteralCap) else cap.size
    if offset < 0 or offset > size:
        raise ValueError(f"offset {offset} outside a file of {size} bytes")
    length = size - offset if length is None else min(length, size - offset)
    if length < 0:
        raise ValueError(f"negative length {length}")
    if isinstance(cap, LiteralCap) or length == 0:
        data = cap.data[offset : offset + length] if isinstance(cap, LiteralCap) else b""
        if data:
            await _deliver(write, data)
        elapsed = time.monotonic() - started
        return DownloadResult(
            storage_index=None if isinstance(cap, LiteralCap) else cap.storage_index,
            size=size, offset=offset, bytes_written=len(data), bytes_fetched=0, servers_used={},
            shares_found={}, server_names={}, failures=(), no_answer={},
            time_to_first_byte=elapsed if data else None, elapsed=elapsed,
        )
    identity, storage_index = _identity(cap)
    run = _Download(broker, storage_index, identity, wanted_bytes=length,
                    report_corruption=report_corruption, started=started)
    try:
        await run.stream(write, offset, length)
    finally:
        await run.finish()
    return run.result(offset)


async def _deliver(write: Writer, data: bytes) -> None:
    answer = write(data)
    if inspect.isawaitable(answer):
        await answer


class _Download:
    """One download: the segment window over the shares the planner chose."""

    def __init__(
        self,
        broker: Any,
        storage_index: bytes,
        identity: FileIdentity,
        *,
        wanted_bytes: int,
        report_corruption: bool,
        started: float,
    ) -> None:
        self.identity = identity
        self.k = identity.k
        self.file = FileValidator(identity)
        self.planner = FetchPlanner(
            identity.k, identity.n, want=identity.k,
            grace=Grace(MIN_GRACE, MAX_GRACE, GRACE_RATE, wanted_bytes),
        )
        self.guess = LayoutGuess.from_cap(identity.size, identity.k, identity.n)
        one_segment = self.guess is not None and self.guess.shape.num_segments == 1
        self.finder = ShareFinder(
            broker, storage_index, self.file, report_corruption=report_corruption,
            planner=self.planner, opener=self._open,
            guess_read=whole_share_read(self.guess) if one_segment else None,
        )
        self.started = started
        self.first_byte: float | None = None
        self.bytes_written = 0
        self.want_segment: int | None = None  # the segment a share being opened reads at once
        self.span = 1  # segments whose blocks one read fetches
        self.span_from = 0
        self.last_segment = 0

    # -- opening shares (which ones: the planner's choice) -----------------

    def _open(self, share: RemoteShare) -> Awaitable[None]:
        guess = self.guess
        active = self.planner.active
        opened = self.finder.share(next(iter(active.values()))) if active else None
        if opened is not None and opened.layout is not None and self.file.shape is not None:
            guess = LayoutGuess(self.file.shape, opened.layout)  # the others are laid out alike
        return share.open(guess, self.want_segment)

    def _shares(self, keys: list[ShareKey]) -> list[RemoteShare]:
        return [self.finder.share(key) for key in keys]

    def fail(self, share: RemoteShare, problem: ShareProblem, segnum: int) -> None:
        """Drop a share; a replacement opened now reads `segnum`'s block at once."""
        self.want_segment = segnum
        self.finder.fail(share, problem)

    # -- segments ----------------------------------------------------------

    async def _fetch(self, share: RemoteShare, segnum: int) -> tuple[bytes, bytes] | ShareProblem:
        count = 1
        if segnum >= self.span_from and (segnum - self.span_from) % self.span == 0:
            count = min(self.span, self.last_segment + 1 - segnum)
        try:
            return await share.fetch_block(segnum, count)
        except ShareProblem as p:
            return p

    async def crypttext_leaf(self, segnum: int) -> bytes:
        leaves = self.file.crypttext_leaves
        assert leaves is not None
        leaf = leaves.leaf(segnum)
        while leaf is None:
            await self.finder.until_ready()
            share = self.finder.share(self.planner.hash_sources()[0])
            try:
                leaf = await share.fetch_crypttext_leaf(segnum)
            except ShareProblem as p:
                self.fail(share, p, segnum)
        return leaf

    async def segment(self, segnum: int, start: int, end: int) -> bytes:
        """Validated bytes [start, end) of one segment."""
        blocks: dict[int, bytes] = {}
        leaves: dict[int, bytes] = {}
        source: dict[int, RemoteShare] = {}
        while True:
            while len(blocks) < self.k:
                await self.finder.until_ready()
                use = self._shares(self.planner.readers(blocks))
                outcomes = await defer.gatherResults(
                    [defer.ensureDeferred(self._fetch(s, segnum)) for s in use], consumeErrors=True
                )
                for share, outcome in zip(use, outcomes, strict=True):
                    if isinstance(outcome, ShareProblem):
                        self.fail(share, outcome, segnum)
                    else:
                        blocks[share.shnum], leaves[share.shnum] = outcome
                        source[share.shnum] = share
            crypttext_leaf = await self.crypttext_leaf(segnum)
            try:
                data: bytes = await cpu.run(
                    self.file.finish_segment, segnum, blocks, leaves, crypttext_leaf, start, end
                )
            except BadBlockError as e:
                bad = source.pop(e.shnum)
                del blocks[e.shnum], leaves[e.shnum]
                self.fail(bad, CorruptShare(f"{bad.label}: {e}"), segnum)
                continue
            self.finder.feed(BlocksValidated(segnum, tuple(s.key for s in source.values())))
            return data

    async def stream(self, write: Writer, offset: int, length: int) -> None:
        if self.guess is not None:
            self.want_segment = offset // self.guess.shape.segment_size
        self.finder.start()
        await self.finder.until_ready()
        shape = self.file.shape
        assert shape is not None
        size = shape.segment_size
        first, last = offset // size, (offset + length - 1) // size
        window = max(2, min(MAX_WINDOW, WINDOW_BYTES // size))
        # after the first segment, read the blocks of a few segments at a time
        self.span = max(1, min(window // 2, READ_SPAN // shape.block_size))
        self.span_from, self.last_segment = first + 1, last
        pending: deque[defer.Deferred[bytes]] = deque()
        try:
            for segnum in range(first, last + 1):
                start = offset - segnum * size if segnum == first else 0
                end = offset + length - segnum * size if segnum == last else size
                pending.append(defer.ensureDeferred(self.segment(segnum, start, end)))
                while pending and (len(pending) >= window or segnum == last):
                    await self._write(write, await pending.popleft())
        finally:
            for d in pending:
                _cancel(d)

    async def _write(self, write: Writer, data: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.monotonic() - self.started
        await _deliver(write, data)
        self.bytes_written += len(data)

    # -- the end ---------------------------------------------------------

    async def finish(self) -> None:
        await self.finder.finish()

    def result(self, offset: int) -> DownloadResult:
        finder = self.finder
        return DownloadResult(
            storage_index=finder.storage_index,
            size=self.identity.size,
            offset=offset,
            bytes_written=self.bytes_written,
            bytes_fetched=sum(s.bytes_read for s in finder.shares),
            servers_used=self.planner.used,
            shares_found=finder.shares_found(),
            server_names=dict(finder.names),
            failures=tuple(finder.failures),
            no_answer=dict(finder.no_answer),
            time_to_first_byte=self.first_byte,
            elapsed=time.monotonic() - self.started,
        )


def _cancel(d: "defer.Deferred[Any]") -> None:
    d.addErrback(lambda _: None)
    d.cancel()
