"""The scrubber: a slow crawler that checks every share against its own hashes.

shoal's addition (Tahoe-LAFS 1.20 only checks shares when a client reads
them). A cycle visits the 1024 prefix directories in sorted order, each
bucket in sorted order and each share by number, like the lease crawler
(crawler.py), but its unit of work is bytes, not buckets: an immutable share
is proven whole (see ``integrity``) a span of blocks at a time, so one slice
reads at most about ``bytes_per_slice`` bytes of blocks (plus the share's
hash trees) however big the shares are. A mutable share is checked whole in
one step (slots holding no SDMF/MDMF share, and shares over
quarantine.MAX_MUTABLE_CHECK bytes, are counted and skipped). A share that
fails is moved into quarantine (``quarantine``).

It is a ``walk.SlicedWalk`` by shares: ``run_slice(seconds)`` checks on the
calling thread and returns True while the cycle has more to do; the node's
housekeeping (``storage.housekeeping``) runs ``slice`` with each visit's
reading, hashing and quarantining in shoal.cpu's pool, never on the reactor
thread, and keeps the counts on the reactor thread. The position (prefix,
bucket, share, next block and the inode being checked, so a share replaced
mid-check is started again), this cycle's counts and the last 10 cycles'
are saved as JSON after every slice (temporary file, fsync, rename) in
``storage/scrubber.state.json``, so a restarted server resumes where it
stopped. A new cycle starts at most once per ``minimum_cycle_time``.
"""

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from shoal.storage import layout
from shoal.storage.crawl_state import base_state, json_copy
from shoal.storage.integrity import ShareDamage
from shoal.storage.quarantine import (
    MUTABLE,
    NotAShare,
    OpenShare,
    damage_in,
    mutable_uncheckable,
    structure_of,
)
from shoal.storage.walk import STATE_VERSION, Bucket, Offload, Position, Share, SlicedWalk, run_now

if TYPE_CHECKING:
    from shoal.storage.server import StorageServer

STATE_FILE = "scrubber.state.json"
MAX_LISTED = 100
MINIMUM_CYCLE_TIME = 7 * 24 * 60 * 60
BYTES_PER_SLICE = 4 * 1024 * 1024
_COUNTERS = (
    "buckets-examined", "shares-examined", "shares-good", "shares-quarantined",
    "shares-skipped-mutable", "bytes-checked",
)


def empty_cycle() -> dict[str, Any]:
    counts: dict[str, Any] = {name: 0 for name in _COUNTERS}
    counts["quarantined"] = []  # [SI base32, shnum, problem], at most MAX_LISTED
    return counts


def initial_state() -> dict[str, Any]:
    return {
        **base_state(STATE_VERSION),
        # the next share to work on: prefix index, bucket (SI base32), share
        # number, next block, and the (dev, inode) of the file being checked
        "position": [0, "", 0, 0, None],
        "cycle-to-date": empty_cycle(),
    }


@attrs.frozen
class Visit:
    """What one visit to a share found (worked out in the offload's thread)."""

    outcome: str  # ABSENT, PARTIAL, GOOD, SKIPPED, QUARANTINED or REPLACED (damaged, then replaced)
    spent: int = 0  # bytes read, for the slice's budget
    checked: int = 0  # bytes proven (or found bad), for "bytes-checked"
    identity: list[int] | None = None  # (dev, inode) of the file read
    started: bool = False  # the visit began the share at its first block
    next_block: int = 0  # PARTIAL: where the next visit resumes
    problem: str = ""


ABSENT, PARTIAL, GOOD, SKIPPED, QUARANTINED, REPLACED = (
    "absent", "partial", "good", "skipped", "quarantined", "replaced",
)


class Scrubber(SlicedWalk):
    """Resumable, byte-budgeted walk that proves every share (see the module docstring)."""

    STATE_FILE = STATE_FILE
    BY_SHARE = True
    empty_cycle = staticmethod(empty_cycle)
    initial_state = staticmethod(initial_state)

    def __init__(self, server: "StorageServer", *, state_path: str | None = None,
                 minimum_cycle_time: float = MINIMUM_CYCLE_TIME,
                 bytes_per_slice: int = BYTES_PER_SLICE,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.bytes_per_slice = bytes_per_slice
        super().__init__(server, state_path=state_path, minimum_cycle_time=minimum_cycle_time,
                         monotonic=monotonic)


    def _load(self) -> dict[str, Any]:
        state = super()._load()
        position = state["position"]
        if not (isinstance(position, list) and len(position) == 5):
            state["position"] = initial_state()["position"]
        return state

    # -- the walk ------------------------------------------------------------

    def set_minimum_cycle_time(self, seconds: float) -> None:
        """Change how often cycles may start (``[storage]scrub.interval``); a cycle already
        scheduled further away than the new interval allows is brought forward."""
        self.minimum_cycle_time = seconds
        state = self.state
        start, next_time = state.get("current-cycle-start-time"), state.get("next-cycle-time")
        if start is not None and next_time is not None and next_time > start + seconds:
            state["next-cycle-time"] = start + seconds

    def run_slice(self, deadline_seconds: float, *, max_bytes: int | None = None) -> bool:
        """Check shares for about ``deadline_seconds`` or ``max_bytes`` bytes
        (default ``bytes_per_slice``), whichever comes first, at least one
        span, on this thread. True while the cycle has more to do; False between cycles."""
        return run_now(self.slice(deadline_seconds, budget=max_bytes))

    def default_budget(self) -> int:
        return self.bytes_per_slice

    def get_position(self) -> Position:
        index, bucket, shnum = self.state["position"][:3]
        return Position(index, bucket, shnum)

    def set_position(self, position: Position) -> None:
        current = self.state["position"]
        assert position.shnum is not None
        if [position.bucket, position.shnum] != current[1:3]:
            current[1:5] = [position.bucket, position.shnum, 0, None]
        current[0] = position.prefix

    async def visit(self, step: Bucket | Share, budget: int, offload: Offload) -> tuple[int, bool]:
        assert isinstance(step, Share)
        counts = self.state["cycle-to-date"]
        position = self.state["position"]
        if step.bucket != position[1]:
            counts["buckets-examined"] += 1
        self.set_position(Position(step.prefix, step.bucket, step.shnum))
        found: Visit = await offload(self._check, step.bucket, step.shnum, position[3], position[4], budget)
        if found.outcome == ABSENT:
            return 0, True
        if found.started:
            counts["shares-examined"] += 1
        counts["bytes-checked"] += found.checked
        if found.outcome == PARTIAL:
            position[3:5] = [found.next_block, found.identity]
            return found.spent, False
        if found.outcome == GOOD:
            counts["shares-good"] += 1
        elif found.outcome == SKIPPED:
            counts["shares-skipped-mutable"] += 1
        elif found.outcome == QUARANTINED:
            counts["shares-quarantined"] += 1
            if len(counts["quarantined"]) < MAX_LISTED:
                counts["quarantined"].append([step.bucket, step.shnum, found.problem])
        return found.spent, True

    # -- one share (in the offload's thread: reads and hashes the file, moves it
    # into quarantine if it is damaged, and answers what it found) ---------------

    def _check(self, bucket: str, shnum: int, block: int, identity: list[int] | None, budget: int) -> Visit:
        """Check part of one share, from ``block`` if it is still the file ``identity``."""
        storage_index = layout.si_a2b(bucket)
        path = self._server.layout.share_path(storage_index, shnum)
        try:
            share = OpenShare(path)
        except FileNotFoundError:
            return Visit(ABSENT)
        with share:
            now = list(share.identity)
            if identity != now:
                block = 0
            if share.kind == MUTABLE and share.problem is None:
                return self._mutable(storage_index, shnum, share)
            spent = 0
            try:
                check = structure_of(share, shnum)
                spent += check.layout.uri_extension - check.layout.crypttext_hash_tree
                segnum = block
                while segnum < check.num_segments and (segnum == block or spent < budget):
                    before = segnum
                    segnum = check.check_blocks(segnum, budget - spent)
                    spent += check.span_length(before, segnum)
            except ShareDamage as e:
                return self._damaged(storage_index, shnum, share, str(e), spent, spent, block == 0)
            if segnum < check.num_segments:
                return Visit(PARTIAL, spent, spent, now, block == 0, segnum)
            return Visit(GOOD, spent, spent, now, block == 0)

    def _mutable(self, storage_index: bytes, shnum: int, share: OpenShare) -> Visit:
        """Check a mutable share whole (unless it is too big, or no share at all)."""
        if mutable_uncheckable(share) is not None:
            return Visit(SKIPPED, started=True)
        try:
            problem = damage_in(share, shnum, 0)
        except NotAShare:
            return Visit(SKIPPED, share.data_length, started=True)
        if problem is None:
            return Visit(GOOD, share.data_length, share.data_length, started=True)
        return self._damaged(storage_index, shnum, share, problem, share.data_length, share.data_length, True)

    def _damaged(self, storage_index: bytes, shnum: int, share: OpenShare, problem: str, spent: int,
                 checked: int, started: bool) -> Visit:
        moved = self._server.quarantine.move(storage_index, shnum, share.identity, problem, "scrubber")
        # not moved: replaced while we read it, and the new file is checked next cycle
        outcome = REPLACED if moved is None else QUARANTINED
        return Visit(outcome, spent, checked, started=started, problem=problem)

    # -- reporting -----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Progress and statistics, for status pages (JSON-safe)."""
        state = self.state
        in_progress = state["current-cycle"] is not None
        report: dict[str, Any] = {
            "cycle-in-progress": in_progress,
            "current-cycle": state["current-cycle"],
            "last-cycle-finished": state["last-cycle-finished"],
            "history": json_copy(state["history"]),
        }
        if in_progress:
            report["cycle-complete-percentage"] = 100.0 * self.cycle_fraction()
            report["current-cycle-start-time"] = state["current-cycle-start-time"]
            report["cycle-to-date"] = json_copy(state["cycle-to-date"])
        else:
            report["next-crawl-time"] = state["next-cycle-time"]
        return report
