"""Verify every share of an immutable file, as Tahoe's verifier does: no decrypting.

For the checker. Every server is asked which shares it holds; each share
found is opened at once (the fetch planner's verify mode) and strictly (UEB
against the cap, hash chain against the share root, both of its hash trees
whole) and all its blocks are read, in spans of about 1 MiB with the next
span requested while the CPU pool hashes the current one, and checked
against its block hash tree. Corrupt shares are
reported to their servers. A verify cap is enough (a read cap works too).
"""

import time
from collections.abc import Mapping
from typing import Any

import attrs
from twisted.internet import defer

from shoal import cpu
from shoal.caps import CHKCap, CHKVerifierCap
from shoal.immutable.decoder import BadBlockError, FileIdentity, FileValidator, check_blocks
from shoal.immutable.fetch_plan import FetchPlanner
from shoal.immutable.remote_share import CorruptShare, LayoutGuess, RemoteShare
from shoal.immutable.share_finder import ShareFailure, ShareFinder

VERIFY_SPAN = 1024 * 1024  # bytes of consecutive blocks per read


@attrs.frozen
class VerifyResult:
    storage_index: bytes
    k: int
    n: int
    good: Mapping[int, tuple[bytes, ...]]  # shnum -> servers holding a good copy
    failures: tuple[ShareFailure, ...]
    servers_asked: int
    no_answer: Mapping[bytes, str]  # server id -> why its get_buckets failed
    server_names: Mapping[bytes, str]
    elapsed: float

    @property
    def recoverable(self) -> bool:
        return len(self.good) >= self.k


async def verify(
    broker: Any,
    cap: CHKCap | CHKVerifierCap,
    *,
    report_corruption: bool = True,
) -> VerifyResult:
    """Check every block of every share found; say which shares are good.

    Raises UEBMismatchError if the cap itself names a badly encoded file.
    """
    started = time.monotonic()
    identity = FileIdentity(cap.ueb_hash, cap.needed, cap.total, cap.size, None)
    file = FileValidator(identity)
    guess = LayoutGuess.from_cap(cap.size, cap.needed, cap.total)

    async def check(share: RemoteShare) -> None:
        await share.open(guess, strict=True)
        await _check_all_blocks(share)

    # the planner's verify mode: every share found is opened (and checked) at once
    planner = FetchPlanner(cap.needed, cap.total, want=None)
    finder = ShareFinder(
        broker, cap.storage_index, file, report_corruption=report_corruption, planner=planner, opener=check
    )
    try:
        finder.start()
        await finder.all_answered()
        await finder.settled()
    finally:
        await finder.finish()
    if finder.fatal is not None:
        raise finder.fatal
    return VerifyResult(
        storage_index=cap.storage_index,
        k=cap.needed,
        n=cap.total,
        good=planner.good(),
        failures=tuple(finder.failures),
        servers_asked=finder.asked,
        no_answer=dict(finder.no_answer),
        server_names=dict(finder.names),
        elapsed=time.monotonic() - started,
    )


async def _check_all_blocks(share: RemoteShare) -> None:
    shape, layout = share.file.shape, share.layout
    leaves = share.validator.block_leaves
    assert shape is not None and layout is not None and leaves is not None
    per = max(1, VERIFY_SPAN // shape.block_size)
    spans = [(first, min(first + per, shape.num_segments)) for first in range(0, shape.num_segments, per)]

    def request(i: int) -> "defer.Deferred[bytes]":
        first, end = spans[i]
        offset, _ = layout.block_range(first, shape.block_size, shape.block_length(first))
        length = sum(shape.block_length(j) for j in range(first, end))
        return defer.ensureDeferred(share.read_span(offset, length, f"blocks {first}..{end - 1}"))

    pending: defer.Deferred[bytes] | None = request(0)
    try:
        for i, (first, end) in enumerate(spans):
            assert pending is not None
            data = await pending
            pending = request(i + 1) if i + 1 < len(spans) else None
            proven = [leaves.leaf(j) for j in range(first, end)]
            try:
                await cpu.run(check_blocks, shape, share.shnum, first, data, proven)
            except BadBlockError as e:
                raise CorruptShare(f"{share.label}: {e}") from None
    finally:
        if pending is not None and not pending.called:
            pending.addErrback(lambda _: None)
            pending.cancel()
