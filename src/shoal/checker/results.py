"""Check results, and their JSON in the shape of Tahoe-LAFS 1.20's web API.

``CheckResults`` holds what one check or verify of one file found;
``CheckAndRepairResults`` the check before a repair, the repair, and the
check after it. ``to_json`` gives the dictionaries Tahoe's
web/check_results.py renders for ``t=check&output=JSON`` (and
``&repair=true``): the same keys, the same value types. Servers are named
by their long name (the server id, ``v0-...``), storage indexes in base32,
share numbers as JSON object keys (strings) in ``sharemap``; a LIT file
(no storage index) is ``None`` and renders as Tahoe renders it.

Health, as Tahoe defines it: a file is healthy when all N shares are found
good (and, for a mutable file, there is one recoverable version and no
unrecoverable one). shoal adds one condition for immutable files: the
shares must also be spread to at least ``min(happy, servers responding)``
servers of happiness, so a file crowded onto a few servers is repaired
when more servers are there (Tahoe's repairer does not spread shares).
"""

from collections.abc import Mapping
from typing import Any

import attrs

from shoal.encoding.base32 import b2a

ShareKey = int | str  # share number (immutable) or "<shnum>" / "seqN-<root>-shN" keys (mutable)


def longname(server_id: bytes) -> str:
    """A server's long name as Tahoe shows it: its server id as text."""
    return server_id.decode("ascii", errors="replace")


@attrs.frozen
class CheckResults:
    """What one check (or verify) of one file found."""

    storage_index: bytes
    healthy: bool
    recoverable: bool
    count_happiness: int
    count_shares_needed: int
    count_shares_expected: int
    count_shares_good: int
    count_good_share_hosts: int
    count_recoverable_versions: int
    count_unrecoverable_versions: int
    servers_responding: tuple[bytes, ...]
    sharemap: Mapping[Any, tuple[bytes, ...]]  # good shares (ShareKey) -> servers holding them
    count_wrong_shares: int = 0
    corrupt_shares: tuple[tuple[bytes, int], ...] = ()  # (server id, shnum)
    incompatible_shares: tuple[tuple[bytes, int], ...] = ()
    summary: str = ""
    report: tuple[str, ...] = ()
    verified: bool = False  # every block of every share was read and checked
    server_names: Mapping[bytes, str] = attrs.field(factory=dict)  # server id -> nickname

    @property
    def storage_index_string(self) -> str:
        return b2a(self.storage_index)

    def good_pairs(self) -> set[tuple[bytes, ShareKey]]:
        return {(sid, sh) for sh, sids in self.sharemap.items() for sid in sids}

    def counts_json(self) -> dict[str, Any]:
        """Tahoe's json_check_counts."""
        si = self.storage_index_string
        return {
            "count-happiness": self.count_happiness,
            "count-shares-good": self.count_shares_good,
            "count-shares-needed": self.count_shares_needed,
            "count-shares-expected": self.count_shares_expected,
            "count-good-share-hosts": self.count_good_share_hosts,
            "count-corrupt-shares": len(self.corrupt_shares),
            "list-corrupt-shares": [[longname(sid), si, sh] for sid, sh in self.corrupt_shares],
            "servers-responding": [longname(sid) for sid in self.servers_responding],
            "sharemap": {
                str(sh): sorted(longname(sid) for sid in sids)
                for sh, sids in sorted(self.sharemap.items(), key=lambda item: (isinstance(item[0], str), item[0]))
            },
            "count-wrong-shares": self.count_wrong_shares,
            "count-recoverable-versions": self.count_recoverable_versions,
            "count-unrecoverable-versions": self.count_unrecoverable_versions,
        }

    def to_json(self) -> dict[str, Any]:
        """Tahoe's json_check_results."""
        results = self.counts_json()
        results["healthy"] = self.healthy
        results["recoverable"] = self.recoverable
        return {"storage-index": self.storage_index_string, "summary": self.summary, "results": results}


@attrs.frozen
class CheckAndRepairResults:
    """A check, the repair it led to (if any), and the state after it."""

    storage_index: bytes
    pre_repair: CheckResults
    post_repair: CheckResults
    repair_attempted: bool
    repair_successful: bool
    repair_problem: str | None = None  # why a repair failed, one line
    shares_placed: Mapping[int, bytes] = attrs.field(factory=dict)  # shnum -> server, written by the repair

    def to_json(self) -> dict[str, Any]:
        """Tahoe's json_check_and_repair_results."""
        return {
            "storage-index": b2a(self.storage_index),
            "repair-attempted": self.repair_attempted,
            "repair-successful": self.repair_successful if self.repair_attempted else False,
            "pre-repair-results": self.pre_repair.to_json(),
            "post-repair-results": self.post_repair.to_json(),
        }


def literal_check_json() -> dict[str, Any]:
    """What Tahoe answers for a LIT file (nothing on the grid to check)."""
    return {"storage-index": "", "results": {"healthy": True}}


def literal_check_and_repair_json() -> dict[str, Any]:
    return {"storage-index": "", "repair-attempted": False}


def happiness_floor(happy: int, servers_responding: int) -> int:
    """The servers of happiness a healthy immutable file needs (see the module docstring)."""
    return max(1, min(happy, servers_responding))
