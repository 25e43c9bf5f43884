"""The lease crawler: walks every share in small slices, expires leases, counts buckets.

Like Tahoe-LAFS 1.20's ShareCrawler, LeaseCheckingCrawler and
BucketCountingCrawler in one walk (storage/crawler.py, storage/expirer.py):
a cycle visits the 1024 prefix directories in sorted order and each bucket
(storage index) in them in sorted order; cycles start at most once per
``minimum_cycle_time`` (Tahoe's lease checker: 12 hours). For each share it
counts leases and bytes and, under the server's ExpirationPolicy, finds the
expired leases; when expiration is enabled it removes them and deletes a
share whose last lease expired (a share that never had a lease is kept, as
in Tahoe), then removes the bucket directory once empty.

It is a plain object with no timer: ``run_slice(seconds)`` does at least one
bucket and stops once the time is spent, and a shell calls it again later
(a Twisted LoopingCall, say). Its position, cycle counts, this cycle's
statistics and the last 10 cycles' are saved as JSON after every slice
(written to a temporary file, fsync'd, renamed), so a restarted server picks
up where it left off; a crash mid-slice repeats at most that slice's work.
The state file is ``storage/lease_crawler.state.json``, apart from Tahoe's
``lease_checker.state.json`` so either program can run on the directory.
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
from shoal.storage.errors import StorageError
from shoal.storage.expiration import ExpirationPolicy
from shoal.storage.layout import ALL_PREFIXES
from shoal.storage.shares import open_share

if TYPE_CHECKING:
    from shoal.storage.server import StorageServer

STATE_FILE = "lease_crawler.state.json"
STATE_VERSION = 1
HISTORY_LENGTH = 10
MAX_CORRUPT_LISTED = 1000
MINIMUM_CYCLE_TIME = 12 * 60 * 60
_COUNTERS = (
    "buckets-examined", "buckets-removed",
    "shares-examined", "sharebytes-examined", "leases-examined",
    "leases-expired", "leases-removed",
    "shares-expired", "sharebytes-expired",
    "shares-removed", "bytes-reclaimed",
)
_TYPED = ("shares-examined", "shares-expired", "shares-removed", "bytes-reclaimed")


def empty_cycle() -> dict[str, Any]:
    counts: dict[str, Any] = {name: 0 for name in _COUNTERS}
    for name in _TYPED:
        for sharetype in ("mutable", "immutable"):
            counts[f"{name}-{sharetype}"] = 0
    counts["corrupt-shares"] = []
    return counts


def initial_state() -> dict[str, Any]:
    return {
        **base_state(STATE_VERSION),
        "last-complete-prefix-index": -1,
        "last-complete-bucket": None,
        "cycle-to-date": empty_cycle(),
        "last-complete-bucket-count": None,
    }


class LeaseCrawler:
    """Resumable, time-sliced walk over a server's shares (see the module docstring)."""

    def __init__(self, server: "StorageServer", policy: ExpirationPolicy, *,
                 state_path: str | None = None, minimum_cycle_time: float = MINIMUM_CYCLE_TIME,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self.policy = policy
        self.minimum_cycle_time = minimum_cycle_time
        self._monotonic = monotonic
        self.state_path = state_path or os.path.join(server.layout.root, STATE_FILE)
        self.state = self._load()
        self._prefix_cache: tuple[int, list[str]] = (-1, [])

    def _load(self) -> dict[str, Any]:
        return load_state(self.state_path, STATE_VERSION, initial_state, empty_cycle)

    def save(self) -> None:
        save_state(self.state_path, self.state, self._server.layout.temp_path())

    # -- the walk ------------------------------------------------------------

    def run_slice(self, deadline_seconds: float, *, max_buckets: int | None = None) -> bool:
        """Crawl for about ``deadline_seconds`` (at least one bucket or prefix).

        Returns True when the current cycle has more to do (call again
        soon), False when the crawler is between cycles and waiting until
        ``status()["next-crawl-time"]``.
        """
        stop_at = self._monotonic() + deadline_seconds
        state = self.state
        if state["current-cycle"] is None:
            if not cycle_due(state, self._server.clock()):
                return False
            self._start_cycle()
        done = 0
        try:
            while True:
                index = state["last-complete-prefix-index"] + 1
                if index >= len(ALL_PREFIXES):
                    self._finish_cycle()
                    return False
                for bucket in self._buckets_after(index, state["last-complete-bucket"]):
                    if done and self._spent(stop_at, done, max_buckets):
                        return True
                    self._process_bucket(ALL_PREFIXES[index], bucket)
                    state["last-complete-bucket"] = bucket
                    done += 1
                state["last-complete-prefix-index"] = index
                state["last-complete-bucket"] = None
                if index + 1 >= len(ALL_PREFIXES):
                    self._finish_cycle()
                    return False
                if self._spent(stop_at, done, max_buckets):
                    return True
        finally:
            self.save()

    def _spent(self, stop_at: float, done: int, max_buckets: int | None) -> bool:
        if max_buckets is not None and done >= max_buckets:
            return True
        return self._monotonic() >= stop_at

    def _buckets_after(self, index: int, last: str | None) -> list[str]:
        if self._prefix_cache[0] != index:
            self._prefix_cache = (index, self._server.layout.list_buckets(ALL_PREFIXES[index]))
        buckets = self._prefix_cache[1]
        return [bucket for bucket in buckets if last is None or bucket > last]

    def _start_cycle(self) -> None:
        state = self.state
        last = state["last-cycle-finished"]
        state["current-cycle"] = 0 if last is None else last + 1
        state["current-cycle-start-time"] = self._server.clock()
        state["last-complete-prefix-index"] = -1
        state["last-complete-bucket"] = None
        state["cycle-to-date"] = empty_cycle()
        self._prefix_cache = (-1, [])

    def _finish_cycle(self) -> None:
        state = self.state
        record = dict(state["cycle-to-date"])
        record["expiration-enabled"] = self.policy.enabled
        record["configured-expiration-mode"] = [
            self.policy.mode,
            self.policy.override_lease_duration,
            self.policy.cutoff_date,
            sorted(self.policy.sharetypes),
        ]
        close_cycle(state, record, self._server.clock(), HISTORY_LENGTH, self.minimum_cycle_time)
        state["last-complete-bucket-count"] = record["buckets-examined"] - record["buckets-removed"]
        state["last-complete-prefix-index"] = -1
        state["last-complete-bucket"] = None

    # -- one bucket ----------------------------------------------------------

    def _process_bucket(self, prefix: str, name: str) -> None:
        server = self._server
        counts = self.state["cycle-to-date"]
        with server.lock:
            storage_index = layout.si_a2b(name)
            bucket = os.path.join(server.layout.prefix_dir(prefix), name)
            counts["buckets-examined"] += 1
            now = server.clock()
            for shnum, path in layout.list_share_files(bucket):
                try:
                    share = open_share(path, storage_index, shnum)
                    if share is None:
                        raise StorageError(f"share {name}/{shnum} is not a share container")
                    self._process_share(share, now)
                except StorageError:
                    corrupt = counts["corrupt-shares"]
                    if len(corrupt) < MAX_CORRUPT_LISTED:
                        corrupt.append([name, shnum])
            if layout.remove_empty_dir(bucket):
                layout.fsync_dir(os.path.dirname(bucket))
                counts["buckets-removed"] += 1

    def _process_share(self, share: Any, now: float) -> None:
        counts = self.state["cycle-to-date"]
        kind = share.sharetype
        slots = share.lease_slots()
        live = [index for index, lease in enumerate(slots) if lease is not None]
        counts["shares-examined"] += 1
        counts[f"shares-examined-{kind}"] += 1
        counts["sharebytes-examined"] += share.size
        counts["leases-examined"] += len(live)
        expired: set[int] = set()
        if self.policy.may_expire(kind):
            expired = {i for i in live if self.policy.lease_expired(slots[i].expiration_time, now)}
        counts["leases-expired"] += len(expired)
        whole = bool(live) and len(expired) == len(live)
        if whole:
            counts["shares-expired"] += 1
            counts[f"shares-expired-{kind}"] += 1
            counts["sharebytes-expired"] += share.size
        if not self.policy.enabled or not expired:
            return
        server = self._server
        counts["leases-removed"] += len(expired)
        if whole:
            os.unlink(share.path)
            layout.fsync_dir(os.path.dirname(share.path))
            server.space.changed(-share.size)
            counts["shares-removed"] += 1
            counts[f"shares-removed-{kind}"] += 1
            counts["bytes-reclaimed"] += share.size
            counts[f"bytes-reclaimed-{kind}"] += share.size
            return
        size = layout.rewrite_durably(
            share.path, server.layout.temp_path(), lambda handle: share.drop_leases_in(handle, expired)
        )
        server.space.changed(size - share.size)
        counts["bytes-reclaimed"] += share.size - size
        counts[f"bytes-reclaimed-{kind}"] += share.size - size

    # -- reporting -----------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Progress and statistics, for status pages (JSON-safe)."""
        state = self.state
        in_progress = state["current-cycle"] is not None
        report: dict[str, Any] = {
            "cycle-in-progress": in_progress,
            "current-cycle": state["current-cycle"],
            "last-cycle-finished": state["last-cycle-finished"],
            "last-complete-bucket-count": state["last-complete-bucket-count"],
            "expiration-enabled": self.policy.enabled,
            "history": json_copy(state["history"]),
        }
        if in_progress:
            done = state["last-complete-prefix-index"] + 1
            report["cycle-complete-percentage"] = 100.0 * done / len(ALL_PREFIXES)
            report["current-cycle-start-time"] = state["current-cycle-start-time"]
            report["cycle-to-date"] = json_copy(state["cycle-to-date"])
        else:
            report["next-crawl-time"] = state["next-cycle-time"]
        return report
