"""The checker's entry point for one file or directory object: check, verify, repair.

``FileChecker(broker, lease_secret=..., happy=..., mutable=...)`` is built
once by the node (with its storage broker, its lease secret, its shares.happy
and its MutableClient, which mutable repair publishes through) and
used by the web API (t=check, with verify=, repair=, add-lease=) and the
deep operations:

    results = await checker.check(cap, verify=False, add_lease=False)
    results = await checker.check_and_repair(cap, verify=False, add_lease=False)

``cap`` is a cap object or its text; a directory cap is checked through the
file that holds the directory. A LIT file (and a LIT directory) lives inside
its cap: both methods return None, which the web renders as Tahoe does
(results.literal_check_json). Results are CheckResults /
CheckAndRepairResults, whose ``to_json()`` is Tahoe 1.20's JSON.
"""

from typing import Any

import attrs

from shoal.caps import (
    CHKCap,
    CHKVerifierCap,
    LiteralCap,
    parse_cap,
)
from shoal.caps.base import CapBase
from shoal.checker.immutable import build_results, check_immutable, find_shares
from shoal.checker.mutable import check_mutable
from shoal.checker.mutable_repair import repair_mutable
from shoal.checker.repair import repair_immutable
from shoal.checker.results import CheckAndRepairResults, CheckResults
from shoal.errors import CallerError


class CheckerError(CallerError):
    """The object cannot be checked (an unknown or unsupported cap kind)."""


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def file_cap_of(cap: Any) -> Any:
    """The cap of the file that holds an object (a directory's underlying file)."""
    if isinstance(cap, (str, bytes)):
        cap = parse_cap(cap)
    inner = getattr(cap, "file_cap", None)
    return inner if inner is not None and getattr(cap, "is_directory", False) else cap


class FileChecker:
    """Check, verify and repair files on one grid (see the module docstring)."""

    def __init__(self, broker: Any, *, lease_secret: bytes, happy: int = 7, mutable: Any = None) -> None:
        self.broker = broker
        self.mutable = mutable  # a shoal.mutable.MutableClient: needed to repair mutable files
        self.lease_secret = lease_secret
        self.happy = happy

    def _file_cap(self, cap: Any) -> Any:
        cap = file_cap_of(cap)
        if isinstance(cap, LiteralCap):
            return None
        if isinstance(cap, CapBase) and not cap.is_directory:
            return cap
        raise CheckerError(f"cannot check {type(cap).__name__} objects: not a file or directory cap")

    async def check(self, cap: Any, *, verify: bool = False, add_lease: bool = False) -> CheckResults | None:
        """Check (or verify) one object; None for a LIT file."""
        fcap = self._file_cap(cap)
        if fcap is None:
            return None
        if fcap.is_mutable_file:
            results, _ = await check_mutable(self.broker, fcap, verify_blocks=verify, add_lease=add_lease,
                                             lease_secret=self.lease_secret)
            return results
        return await check_immutable(
            self.broker, fcap, verify_blocks=verify, add_lease=add_lease, lease_secret=self.lease_secret,
            happy=self.happy,
        )

    async def check_and_repair(self, cap: Any, *, verify: bool = False,
                               add_lease: bool = False) -> CheckAndRepairResults | None:
        """Check one object and repair it if it is not healthy; None for a LIT file."""
        fcap = self._file_cap(cap)
        if fcap is None:
            return None
        if fcap.is_mutable_file:
            return await self._mutable_check_and_repair(fcap, verify, add_lease)
        chk = fcap
        pre = await check_immutable(
            self.broker, chk, verify_blocks=verify, add_lease=add_lease, lease_secret=self.lease_secret,
            happy=self.happy,
        )
        if pre.healthy:
            return CheckAndRepairResults(chk.storage_index, pre, pre, repair_attempted=False,
                                         repair_successful=False)
        bad = set(pre.corrupt_shares) | set(pre.incompatible_shares)
        placed: dict[int, bytes] = {}
        problem = None
        if not pre.recoverable:
            problem = (f"unrecoverable: {pre.count_shares_good} good shares found, "
                       f"{pre.count_shares_needed} needed")
        else:
            try:
                repaired = await repair_immutable(self.broker, chk, lease_secret=self.lease_secret, bad=bad)
                placed = repaired.shares_placed
            except Exception as e:  # whatever failed, the post-repair check tells the state
                problem = _one_line(e)
        post = await self._after_repair(chk, bad, placed, problem)
        return CheckAndRepairResults(
            chk.storage_index, pre, post, repair_attempted=True, repair_successful=post.healthy,
            repair_problem=problem, shares_placed=placed,
        )

    async def _after_repair(self, cap: CHKCap | CHKVerifierCap, bad: set[tuple[bytes, int]],
                            placed: dict[int, bytes], problem: str | None) -> CheckResults:
        """A fresh check, not counting shares known corrupt unless the repair replaced them."""
        found, asked, no_answer, names = await find_shares(self.broker, cap)
        replaced = {(sid, sh) for sh, sid in placed.items()}
        still_bad = set()
        good: dict[int, tuple[bytes, ...]] = {}
        for sh, sids in found.items():
            for sid in sids:
                if (sid, sh) in bad and (sid, sh) not in replaced:
                    still_bad.add((sid, sh))
                else:
                    good[sh] = (*good.get(sh, ()), sid)
        report = [f"repair placed {len(placed)} share(s)"]
        if problem is not None:
            report.append(f"repair failed: {problem}")
        responding = [sid for sid in asked if sid not in no_answer]
        return build_results(cap, good, responding, happy=self.happy, corrupt=tuple(sorted(still_bad)),
                             report=tuple(report), names=names)

    async def _mutable_check_and_repair(self, cap: Any, verify: bool, add_lease: bool) -> CheckAndRepairResults:
        pre, _ = await check_mutable(self.broker, cap, verify_blocks=verify, add_lease=add_lease,
                                     lease_secret=self.lease_secret)
        if pre.healthy:
            return CheckAndRepairResults(cap.storage_index, pre, pre, repair_attempted=False,
                                         repair_successful=False)
        problem = done = None
        try:
            done = await repair_mutable(self.broker, self.mutable, cap, pre, lease_secret=self.lease_secret)
        except Exception as e:  # the check afterwards tells the state
            problem = _one_line(e)
        post, _ = await check_mutable(self.broker, cap)
        note = f"repair failed: {problem}" if problem is not None else f"repair: {done}"
        post = attrs.evolve(post, report=(*post.report, note))
        return CheckAndRepairResults(cap.storage_index, pre, post, repair_attempted=True,
                                     repair_successful=post.healthy, repair_problem=problem)
