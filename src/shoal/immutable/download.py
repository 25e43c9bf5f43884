"""Download an immutable (CHK) file from the grid: find, fetch, validate, decode, stream.

The driver over shoal.immutable.remote_share (one share on one server) and
the pure validator (shoal.immutable.decoder):

1. Ask every connected server at once which shares it holds (see
   share_finder). Start as soon as k distinct shares are known; when those
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
    UEBMismatchError,
)
from shoal.immutable.remote_share import (
    CorruptShare,
    LayoutGuess,
    RemoteShare,
    ShareProblem,
    ShareTimeout,
    ShareUnreachable,
    describe,
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
    run = _Download(broker, storage_index, identity,
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
    """One download: the k shares in use, replacements, and the segment window."""

    def __init__(
        self,
        broker: Any,
        storage_index: bytes,
        identity: FileIdentity,
        *,
        report_corruption: bool,
        started: float,
    ) -> None:
        self.identity = identity
        self.k = identity.k
        self.file = FileValidator(identity)
        self.finder = ShareFinder(
            broker, storage_index, self.file, report_corruption=report_corruption
        )
        self.started = started
        self.first_byte: float | None = None
        self.bytes_written = 0
        self.active: dict[int, RemoteShare] = {}  # opened shares in use, by shnum (k of them)
        self.used: dict[int, list[bytes]] = {}
        self.fatal: BaseException | None = None
        self.want_segment: int | None = None
        self.span = 1  # segments whose blocks one read fetches
        self.wanted_bytes = identity.size
        self.span_from = 0
        self.last_segment = 0
        self.guess = LayoutGuess.from_cap(identity.size, identity.k, identity.n)
        self._opens: list[defer.Deferred[None]] = []

    # -- choosing and opening shares ---------------------------------------

    def _pick(self, count: int) -> list[RemoteShare]:
        """Up to `count` unopened shares of new share numbers: primaries first, then
        by server speed, at most one share per server while that is possible."""
        shares = self.finder.shares
        taken = self.finder.distinct(RemoteShare.OPENING, RemoteShare.OPEN)
        busy = {s.server_id for s in shares if s.state in (RemoteShare.OPENING, RemoteShare.OPEN)}
        candidates = sorted(
            (s for s in shares if s.state == RemoteShare.NEW and s.shnum not in taken),
            key=lambda s: (s.shnum >= self.k, s.rank, s.shnum),
        )
        picks: list[RemoteShare] = []
        for spread in (True, False):
            for s in candidates:
                if len(picks) == count:
                    return picks
                if s.shnum in taken or (spread and s.server_id in busy):
                    continue
                picks.append(s)
                taken.add(s.shnum)
                busy.add(s.server_id)
        return picks

    def _grace_left(self, picks: list[RemoteShare]) -> float:
        """How much longer to wait, before the first opens, for answers that may
        give a better choice (primary shares, or one share per server)."""
        finder = self.finder
        spread = len({s.server_id for s in picks}) == len(picks)
        if not finder.waiting or finder.enough_at is None or (spread and all(s.shnum < self.k for s in picks)):
            return 0.0
        if any(s.state != RemoteShare.NEW for s in finder.shares):
            return 0.0  # already under way
        worth = min(self.wanted_bytes / GRACE_RATE, MAX_GRACE)
        grace = min(max(finder.enough_at - finder.started, MIN_GRACE), worth)
        return finder.enough_at + grace - time.monotonic()

    async def ensure_active(self, segnum: int | None = None) -> dict[int, RemoteShare]:
        """Return k opened shares, opening replacements as needed (for `segnum`:
        their first read then includes its block)."""
        finder = self.finder
        while True:
            if self.fatal is not None:
                raise self.fatal
            if len(self.active) >= self.k:
                return self.active
            opening = len(finder.distinct(RemoteShare.OPENING))
            known = len(finder.distinct(RemoteShare.NEW, RemoteShare.OPENING, RemoteShare.OPEN))
            if known < self.k and not finder.waiting:
                raise finder.not_enough(len(self.active))
            want = self.k - len(self.active) - opening
            if want > 0 and known >= self.k:
                picks = self._pick(want)
                grace = self._grace_left(picks)
                if grace > 0:
                    await finder.changed(grace)
                    continue
                if picks and segnum is not None:
                    self.want_segment = segnum
                for share in picks:
                    self._open(share)
                opening += len(picks)
            if opening == 0 and not finder.waiting:
                raise finder.not_enough(len(self.active))
            await finder.changed()

    def _open(self, share: RemoteShare) -> None:
        share.state = RemoteShare.OPENING
        guess = self.guess
        opened = next(iter(self.active.values()), None)
        if opened is not None and opened.layout is not None and self.file.shape is not None:
            guess = LayoutGuess(self.file.shape, opened.layout)  # the others are laid out alike
        self._opens.append(defer.ensureDeferred(self._opening(share, guess, self.want_segment)))

    async def _opening(self, share: RemoteShare, guess: LayoutGuess | None, segnum: int | None) -> None:
        try:
            await share.open(guess, segnum)
        except UEBMismatchError as e:
            self.fatal = e
            share.state = RemoteShare.FAILED
            self.finder.notify()
            return
        except ShareProblem as p:
            self.fail(share, p)
            return
        except defer.CancelledError:
            share.state = RemoteShare.FAILED
            return
        except Exception as e:  # a bug: lose the share, keep the download going
            self.fail(share, ShareProblem(f"{share.label}: unexpected {describe(e)}"))
            return
        if share.state != RemoteShare.OPENING:
            return
        share.state = RemoteShare.OPEN
        self.active[share.shnum] = share
        self.finder.notify()

    def fail(self, share: RemoteShare, problem: ShareProblem) -> None:
        if self.active.get(share.shnum) is share:
            del self.active[share.shnum]
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
            active = await self.ensure_active(segnum)
            share = min(active.values(), key=lambda s: s.rank)
            try:
                leaf = await share.fetch_crypttext_leaf(segnum)
            except ShareProblem as p:
                self.fail(share, p)
        return leaf

    async def segment(self, segnum: int, start: int, end: int) -> bytes:
        """Validated bytes [start, end) of one segment."""
        blocks: dict[int, bytes] = {}
        leaves: dict[int, bytes] = {}
        source: dict[int, RemoteShare] = {}
        while True:
            while len(blocks) < self.k:
                active = await self.ensure_active(segnum)
                use = [s for sh, s in sorted(active.items()) if sh not in blocks][: self.k - len(blocks)]
                outcomes = await defer.gatherResults(
                    [defer.ensureDeferred(self._fetch(s, segnum)) for s in use], consumeErrors=True
                )
                for share, outcome in zip(use, outcomes, strict=True):
                    if isinstance(outcome, ShareProblem):
                        self.fail(share, outcome)
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
                self.fail(bad, CorruptShare(f"{bad.label}: {e}"))
                continue
            for sh, share in source.items():
                servers = self.used.setdefault(sh, [])
                if share.server_id not in servers:
                    servers.append(share.server_id)
            return data

    async def stream(self, write: Writer, offset: int, length: int) -> None:
        self.wanted_bytes = length
        self.finder.start()
        if self.guess is not None:
            self.want_segment = offset // self.guess.shape.segment_size
        await self.ensure_active(self.want_segment)
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
        for d in self._opens:
            if not d.called:
                _cancel(d)
        await self.finder.finish()

    def result(self, offset: int) -> DownloadResult:
        finder = self.finder
        return DownloadResult(
            storage_index=finder.storage_index,
            size=self.identity.size,
            offset=offset,
            bytes_written=self.bytes_written,
            bytes_fetched=sum(s.bytes_read for s in finder.shares),
            servers_used={sh: tuple(ids) for sh, ids in sorted(self.used.items())},
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
