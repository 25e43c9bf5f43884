"""The scrubber: a slow crawler that checks every share against its own hashes.

shoal's addition (Tahoe-LAFS 1.20 only checks shares when a client reads
them). A cycle visits the 1024 prefix directories in sorted order, each
bucket in sorted order and each share by number, like the lease crawler
(crawler.py), but its unit of work is bytes, not buckets: an immutable share
is proven whole (see ``integrity``) a span of blocks at a time, so one slice
reads at most about ``bytes_per_slice`` bytes of blocks (plus the share's
hash trees) however big the shares are. A mutable share is checked whole in
one step (slots holding no SDMF/MDMF share, and shares over
quarantine.MAX_MUTABLE_CHECK bytes, are counted and skipped). A share that fails is moved into quarantine (``quarantine``).

``run_slice(seconds)`` is called by a shell (the node's housekeeping loop)
and returns True while the cycle has more to do. The position (prefix,
bucket, share, next block and the inode being checked, so a share replaced
mid-check is started again), this cycle's counts and the last 10 cycles'
are saved as JSON after every slice (temporary file, fsync, rename) in
``storage/scrubber.state.json``, so a restarted server resumes where it
stopped. A new cycle starts at most once per ``minimum_cycle_time``.
"""

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shoal.storage import layout
from shoal.storage.crawl_state import (
    base_state,
    close_cycle,
    cycle_due,
    json_copy,
    load_state,
    save_state,
)
from shoal.storage.integrity import ShareDamage
from shoal.storage.layout import ALL_PREFIXES
from shoal.storage.quarantine import (
    MUTABLE,
    NotAShare,
    OpenShare,
    damage_in,
    mutable_uncheckable,
    structure_of,
)

if TYPE_CHECKING:
    from shoal.storage.server import StorageServer

STATE_FILE = "scrubber.state.json"
STATE_VERSION = 1
HISTORY_LENGTH = 10
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


class Scrubber:
    """Resumable, byte-budgeted walk that proves every immutable share (see the module docstring)."""

    def __init__(self, server: "StorageServer", *, state_path: str | None = None,
                 minimum_cycle_time: float = MINIMUM_CYCLE_TIME,
                 bytes_per_slice: int = BYTES_PER_SLICE,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self.minimum_cycle_time = minimum_cycle_time
        self.bytes_per_slice = bytes_per_slice
        self._monotonic = monotonic
        self.state_path = state_path or os.path.join(server.layout.root, STATE_FILE)
        self.state = self._load()
        self._prefix_cache: tuple[int, list[str]] = (-1, [])

    def _load(self) -> dict[str, Any]:
        state = load_state(self.state_path, STATE_VERSION, initial_state, empty_cycle)
        position = state["position"]
        if not (isinstance(position, list) and len(position) == 5):
            state["position"] = initial_state()["position"]
        return state

    def save(self) -> None:
        save_state(self.state_path, self.state, self._server.layout.temp_path())

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
        span. True while the cycle has more to do; False between cycles."""
        state = self.state
        if state["current-cycle"] is None:
            if not cycle_due(state, self._server.clock()):
                return False
            self._start_cycle()
        budget = self.bytes_per_slice if max_bytes is None else max_bytes
        stop_at = self._monotonic() + deadline_seconds
        spent = 0
        try:
            while True:
                found = self._next_share()
                if found is None:
                    self._finish_cycle()
                    return False
                spent += self._work(*found, max(1, budget - spent))
                if spent >= budget or self._monotonic() >= stop_at:
                    return True
        finally:
            self.save()

    def _buckets(self, index: int) -> list[str]:
        if self._prefix_cache[0] != index:
            self._prefix_cache = (index, self._server.layout.list_buckets(ALL_PREFIXES[index]))
        return self._prefix_cache[1]

    def _next_share(self) -> tuple[str, int] | None:
        """(bucket, shnum) of the first share at or after the position; moves the position there."""
        position = self.state["position"]
        index, bucket, shnum = position[0], position[1], position[2]
        while index < len(ALL_PREFIXES):
            for name in self._buckets(index):
                if name < bucket:
                    continue
                first = shnum if name == bucket else 0
                directory = os.path.join(self._server.layout.prefix_dir(ALL_PREFIXES[index]), name)
                for number, _path in layout.list_share_files(directory):
                    if number >= first:
                        if name != bucket:
                            self.state["cycle-to-date"]["buckets-examined"] += 1
                        if [name, number] != position[1:3]:
                            position[1:5] = [name, number, 0, None]
                        position[0] = index
                        return name, number
            index += 1
            bucket, shnum = "", 0
            position[0:5] = [index, "", 0, 0, None]
        return None

    def _advance(self) -> None:
        position = self.state["position"]
        position[2] += 1
        position[3:5] = [0, None]

    def _work(self, bucket: str, shnum: int, budget: int) -> int:
        """Check part of one share; return the bytes read."""
        counts = self.state["cycle-to-date"]
        position = self.state["position"]
        storage_index = layout.si_a2b(bucket)
        path = self._server.layout.share_path(storage_index, shnum)
        try:
            share = OpenShare(path)
        except FileNotFoundError:
            self._advance()
            return 0
        with share:
            identity = list(share.identity)
            if position[4] != identity:
                position[3:5] = [0, identity]
            if position[3] == 0:
                counts["shares-examined"] += 1
            if share.kind == MUTABLE and share.problem is None:
                return self._mutable(storage_index, bucket, shnum, share)
            spent = 0
            try:
                check = structure_of(share, shnum)
                spent += check.layout.uri_extension - check.layout.crypttext_hash_tree
                start = segnum = position[3]
                while segnum < check.num_segments and (segnum == start or spent < budget):
                    before = segnum
                    segnum = check.check_blocks(segnum, budget - spent)
                    spent += check.span_length(before, segnum)
            except ShareDamage as e:
                counts["bytes-checked"] += spent
                self._quarantine(storage_index, bucket, shnum, share, str(e))
                self._advance()
                return spent
            counts["bytes-checked"] += spent
            if segnum < check.num_segments:
                position[3] = segnum
                return spent
            counts["shares-good"] += 1
            self._advance()
            return spent

    def _mutable(self, storage_index: bytes, bucket: str, shnum: int, share: OpenShare) -> int:
        """Check a mutable share whole (unless it is too big); return the bytes read."""
        counts = self.state["cycle-to-date"]
        self._advance()
        if mutable_uncheckable(share) is not None:
            counts["shares-skipped-mutable"] += 1
            return 0
        try:
            problem = damage_in(share, shnum, 0)
        except NotAShare:
            counts["shares-skipped-mutable"] += 1
            return share.data_length
        counts["bytes-checked"] += share.data_length
        if problem is None:
            counts["shares-good"] += 1
        else:
            self._quarantine(storage_index, bucket, shnum, share, problem)
        return share.data_length

    def _quarantine(self, storage_index: bytes, bucket: str, shnum: int, share: OpenShare, problem: str) -> None:
        moved = self._server.quarantine.move(storage_index, shnum, share.identity, problem, "scrubber")
        if moved is None:
            return  # replaced while we read it: the new file is checked next cycle
        counts = self.state["cycle-to-date"]
        counts["shares-quarantined"] += 1
        if len(counts["quarantined"]) < MAX_LISTED:
            counts["quarantined"].append([bucket, shnum, problem])

    def _start_cycle(self) -> None:
        state = self.state
        last = state["last-cycle-finished"]
        state["current-cycle"] = 0 if last is None else last + 1
        state["current-cycle-start-time"] = self._server.clock()
        state["position"] = initial_state()["position"]
        state["cycle-to-date"] = empty_cycle()
        self._prefix_cache = (-1, [])

    def _finish_cycle(self) -> None:
        state = self.state
        close_cycle(state, dict(state["cycle-to-date"]), self._server.clock(), HISTORY_LENGTH,
                    self.minimum_cycle_time)
        state["position"] = initial_state()["position"]

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
            report["cycle-complete-percentage"] = 100.0 * state["position"][0] / len(ALL_PREFIXES)
            report["current-cycle-start-time"] = state["current-cycle-start-time"]
            report["cycle-to-date"] = json_copy(state["cycle-to-date"])
        else:
            report["next-crawl-time"] = state["next-cycle-time"]
        return report
