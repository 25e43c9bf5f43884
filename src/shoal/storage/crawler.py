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

It is a ``walk.SlicedWalk`` by buckets with no timer: ``run_slice(seconds)``
does at least one bucket (or one empty prefix directory) on the calling
thread and stops once the time is spent; the node's housekeeping
(``storage.housekeeping``) runs ``slice`` with each bucket's work in the CPU
pool. Its position (Tahoe's last-complete-prefix-index and
last-complete-bucket), cycle counts, this cycle's statistics and the last 10
cycles' are saved as JSON after every slice (written to a temporary file,
fsync'd, renamed), so a restarted server picks up where it left off; a crash
mid-slice repeats at most that slice's work.
The state file is ``storage/lease_crawler.state.json``, apart from Tahoe's
``lease_checker.state.json`` so either program can run on the directory.
"""

import collections
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shoal.storage import layout
from shoal.storage.crawl_state import base_state, json_copy
from shoal.storage.errors import StorageError
from shoal.storage.expiration import ExpirationPolicy
from shoal.storage.shares import open_share
from shoal.storage.walk import STATE_VERSION, Bucket, Offload, Position, Share, SlicedWalk, run_now

if TYPE_CHECKING:
    from shoal.storage.server import StorageServer

STATE_FILE = "lease_crawler.state.json"
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


class LeaseCrawler(SlicedWalk):
    """Resumable, time-sliced walk over a server's buckets (see the module docstring)."""

    STATE_FILE = STATE_FILE
    BY_SHARE = False
    empty_cycle = staticmethod(empty_cycle)
    initial_state = staticmethod(initial_state)

    def __init__(self, server: "StorageServer", policy: ExpirationPolicy, *,
                 state_path: str | None = None, minimum_cycle_time: float = MINIMUM_CYCLE_TIME,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        super().__init__(server, state_path=state_path, minimum_cycle_time=minimum_cycle_time,
                         monotonic=monotonic)


    # -- the walk ------------------------------------------------------------

    def run_slice(self, deadline_seconds: float, *, max_buckets: int | None = None) -> bool:
        """Crawl for about ``deadline_seconds`` (at least one bucket or prefix), on this thread.

        Returns True when the current cycle has more to do (call again
        soon), False when the crawler is between cycles and waiting until
        ``status()["next-crawl-time"]``.
        """
        return run_now(self.slice(deadline_seconds, budget=max_buckets))

    def get_position(self) -> Position:
        # Tahoe's two fields: the prefix before the one being crawled, the last bucket done in it
        state = self.state
        last = state["last-complete-bucket"]
        return Position(state["last-complete-prefix-index"] + 1, last or "", None if last else 0)

    def set_position(self, position: Position) -> None:
        self.state["last-complete-prefix-index"] = position.prefix - 1
        self.state["last-complete-bucket"] = position.bucket or None

    async def visit(self, step: Bucket | Share, budget: int, offload: Offload) -> tuple[int, bool]:
        assert isinstance(step, Bucket)
        found = await offload(self._process_bucket, step.prefix, step.name)
        counts = self.state["cycle-to-date"]
        for name, value in found.items():
            if name == "corrupt-shares":
                counts[name].extend(value[: max(0, MAX_CORRUPT_LISTED - len(counts[name]))])
            else:
                counts[name] += value
        return 1, True

    def cycle_record(self, record: dict[str, Any]) -> None:
        record["expiration-enabled"] = self.policy.enabled
        record["configured-expiration-mode"] = [
            self.policy.mode,
            self.policy.override_lease_duration,
            self.policy.cutoff_date,
            sorted(self.policy.sharetypes),
        ]

    def cycle_finished(self, record: dict[str, Any]) -> None:
        self.state["last-complete-bucket-count"] = record["buckets-examined"] - record["buckets-removed"]

    # -- one bucket (in the offload's thread: touches only the disk and the server's
    # locked parts, and answers what it counted) --------------------------------

    def _process_bucket(self, prefix: int, name: str) -> dict[str, Any]:
        server = self._server
        counts: dict[str, Any] = collections.Counter()
        corrupt: list[list[Any]] = []
        with server.lock:
            storage_index = layout.si_a2b(name)
            bucket = self.tree.bucket_dir(prefix, name)
            counts["buckets-examined"] += 1
            now = server.clock()
            for shnum, path in layout.list_share_files(bucket):
                try:
                    share = open_share(path, storage_index, shnum)
                    if share is None:
                        raise StorageError(f"share {name}/{shnum} is not a share container")
                    self._process_share(share, now, counts)
                except StorageError:
                    corrupt.append([name, shnum])
            if layout.remove_empty_dir(bucket):
                layout.fsync_dir(os.path.dirname(bucket))
                counts["buckets-removed"] += 1
        return {**counts, "corrupt-shares": corrupt}

    def _process_share(self, share: Any, now: float, counts: dict[str, Any]) -> None:
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
            report["cycle-complete-percentage"] = 100.0 * self.cycle_fraction()
            report["current-cycle-start-time"] = state["current-cycle-start-time"]
            report["cycle-to-date"] = json_copy(state["cycle-to-date"])
        else:
            report["next-crawl-time"] = state["next-cycle-time"]
        return report
