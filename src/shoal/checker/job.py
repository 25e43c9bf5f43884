"""The checker job: a client node checks (and repairs, and renews leases on) its trees itself.

Tahoe-LAFS 1.20 leaves this to a cron job running ``tahoe deep-check
--repair --add-lease``. shoal's node runs ``CheckerJob``, configured by a
``[checker]`` section of tahoe.cfg (shoal's own; Tahoe ignores it):

    [checker]
    enabled = true
    roots = URI:DIR2:..., URI:DIR2-MDMF:...   (the node resolves aliases first)
    interval = 7d            # a round starts at most this often (s, m, h, d suffixes)
    verify-fraction = 0.1    # this share of files is verified, the rest checked
    repair = true
    add-lease = true
    pause = 0.05             # seconds between objects, so the job stays in the background

A round walks every root (shoal.checker.deep's walk) and checks each object
with the node's FileChecker. Which files are verified rotates: a file is
verified in a round when a hash of (its storage index, the round number)
falls under the fraction, so over 1/fraction rounds most files are verified.
Everything is asynchronous I/O; the hashing runs in the CPU pool, so the
reactor is never held for long, and ``pause`` spaces objects out.

Progress is saved after every object (JSON, written to a temporary file,
fsync'd, renamed): the round, the root, how many objects of it are done, and
the counts so far. After a restart the job walks the current root again and
skips the objects already done (listing directories is cheap next to
checking files). ``status()`` gives the last finished round's report and the
current one's progress, for the status page and metrics.
"""

import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from shoal.checker.deep import UNKNOWN, DeepObject, walk
from shoal.checker.file_checker import FileChecker
from shoal.checker.results import CheckAndRepairResults, CheckResults
from shoal.errors import Fault, ShoalError

STATE_VERSION = 1
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_COUNTERS = ("objects-checked", "objects-verified", "objects-healthy", "objects-unhealthy",
             "objects-unrecoverable", "repairs-attempted", "repairs-successful", "corrupt-shares", "errors")


class CheckerConfigError(ShoalError):
    """A [checker] setting that cannot be used; the message names the key (the user's fault)."""

    fault = Fault.CALLER


def _duration(key: str, text: str) -> float:
    text = text.strip().lower()
    unit = _UNITS.get(text[-1:], None)
    number = text[:-1] if unit is not None else text
    try:
        value = float(number) * (unit or 1)
    except ValueError:
        raise CheckerConfigError(f"[checker]{key} = {text!r}: expected seconds, or a number with s/m/h/d") from None
    if value <= 0:
        raise CheckerConfigError(f"[checker]{key} = {text!r}: must be positive")
    return value


def _boolean(key: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise CheckerConfigError(f"[checker]{key} = {text!r}: expected true or false")


KNOWN_KEYS = frozenset({"enabled", "roots", "interval", "verify-fraction", "repair", "add-lease", "pause"})


@attrs.frozen
class CheckerSettings:
    """The [checker] section, validated."""

    enabled: bool = False
    roots: tuple[str, ...] = ()
    interval: float = 7 * 86400.0
    verify_fraction: float = 0.0
    repair: bool = True
    add_lease: bool = True
    pause: float = 0.05

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> "CheckerSettings":
        """From the section's raw strings (missing keys take the defaults)."""
        for key in values:
            if key not in KNOWN_KEYS:
                raise CheckerConfigError(f"[checker]{key}: unknown setting (known: {', '.join(sorted(KNOWN_KEYS))})")
        out = cls()
        if "enabled" in values:
            out = attrs.evolve(out, enabled=_boolean("enabled", values["enabled"]))
        if "roots" in values:
            out = attrs.evolve(out, roots=tuple(r.strip() for r in values["roots"].split(",") if r.strip()))
        if "interval" in values:
            out = attrs.evolve(out, interval=_duration("interval", values["interval"]))
        if "verify-fraction" in values:
            try:
                fraction = float(values["verify-fraction"])
            except ValueError:
                fraction = -1.0
            if not 0.0 <= fraction <= 1.0:
                raise CheckerConfigError(
                    f"[checker]verify-fraction = {values['verify-fraction']!r}: expected a number from 0 to 1")
            out = attrs.evolve(out, verify_fraction=fraction)
        if "repair" in values:
            out = attrs.evolve(out, repair=_boolean("repair", values["repair"]))
        if "add-lease" in values:
            out = attrs.evolve(out, add_lease=_boolean("add-lease", values["add-lease"]))
        if "pause" in values:
            out = attrs.evolve(out, pause=_duration("pause", values["pause"]))
        if out.enabled and not out.roots:
            raise CheckerConfigError("[checker]enabled = true but [checker]roots names no directory")
        return out


def verified_this_round(storage_index: str, round_number: int, fraction: float) -> bool:
    """Whether a file is verified (not just checked) in a round: a stable rotation."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{storage_index}:{round_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def _initial() -> dict[str, Any]:
    return {"version": STATE_VERSION, "round": 0, "round-started": None, "next-round": None,
            "root-index": 0, "done": 0, "counts": dict.fromkeys(_COUNTERS, 0), "last-report": None}


class CheckerJob:
    """Runs rounds over the configured roots (see the module docstring)."""

    def __init__(self, maker: Any, checker: FileChecker, settings: CheckerSettings, state_path: str, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.maker = maker
        self.checker = checker
        self.settings = settings
        self.state_path = state_path
        self.clock = clock
        self._sleep = sleep
        self.state = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.state_path, "rb") as handle:
                state = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return _initial()
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            return _initial()
        return {**_initial(), **state}

    def save(self) -> None:
        temp = self.state_path + ".tmp"
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(json.dumps(self.state, sort_keys=True).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.state_path)

    def seconds_until_due(self) -> float:
        """0 when a round is in progress or due now, else how long until the next one."""
        state = self.state
        if state["round-started"] is not None or state["next-round"] is None:
            return 0.0
        return max(0.0, state["next-round"] - self.clock())

    async def run_round(self) -> dict[str, Any]:
        """Run (or finish) one round over every root; return its report."""
        state = self.state
        if state["round-started"] is None:
            state["round"] += 1
            state["round-started"] = self.clock()
            state["root-index"] = state["done"] = 0
            state["counts"] = dict.fromkeys(_COUNTERS, 0)
            self.save()
        while state["root-index"] < len(self.settings.roots):
            await self._root(self.settings.roots[state["root-index"]])
            state["root-index"] += 1
            state["done"] = 0
            self.save()
        report = {"round": state["round"], "started": state["round-started"], "finished": self.clock(),
                  **state["counts"]}
        state["last-report"] = report
        state["round-started"] = None
        state["next-round"] = report["started"] + self.settings.interval
        self.save()
        return report

    async def _root(self, root: str) -> None:
        state = self.state
        skip = state["done"]
        seen = 0

        async def visit(obj: DeepObject) -> None:
            nonlocal seen
            seen += 1
            if seen <= skip:
                return
            self._count(await self._check(obj))
            state["done"] = seen
            self.save()
            if self._sleep is not None and self.settings.pause:
                await self._sleep(self.settings.pause)

        await walk(self.maker, root, visit)

    async def _check(self, obj: DeepObject) -> tuple[bool, CheckResults | CheckAndRepairResults | None]:
        if obj.kind == UNKNOWN:
            return False, None
        verify = verified_this_round(obj.storage_index, self.state["round"], self.settings.verify_fraction)
        settings = self.settings
        try:
            if settings.repair:
                return verify, await self.checker.check_and_repair(obj.node.cap, verify=verify,
                                                                   add_lease=settings.add_lease)
            return verify, await self.checker.check(obj.node.cap, verify=verify, add_lease=settings.add_lease)
        except Exception:  # one object's trouble must not stop the round: counted
            self.state["counts"]["errors"] += 1
            return verify, None

    def _count(self, outcome: tuple[bool, CheckResults | CheckAndRepairResults | None]) -> None:
        verify, result = outcome
        if result is None:
            return
        counts = self.state["counts"]
        pre = result.pre_repair if isinstance(result, CheckAndRepairResults) else result
        counts["objects-checked"] += 1
        counts["objects-verified"] += int(verify)
        counts["objects-healthy"] += int(pre.healthy)
        counts["objects-unhealthy"] += int(not pre.healthy)
        counts["objects-unrecoverable"] += int(not pre.recoverable)
        counts["corrupt-shares"] += len(pre.corrupt_shares)
        if isinstance(result, CheckAndRepairResults) and result.repair_attempted:
            counts["repairs-attempted"] += 1
            counts["repairs-successful"] += int(result.repair_successful)

    def status(self) -> dict[str, Any]:
        """For the status page and metrics: the last round's report, this round's progress."""
        state = self.state
        return {
            "enabled": self.settings.enabled,
            "round-in-progress": state["round-started"] is not None,
            "round": state["round"],
            "root-index": state["root-index"],
            "roots": len(self.settings.roots),
            "objects-done-in-root": state["done"],
            "counts-so-far": dict(state["counts"]),
            "last-report": state["last-report"],
            "next-round": state["next-round"],
        }

    async def run_forever(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        """Rounds forever, each when due (the node starts this and cancels it on stop)."""
        self._sleep = self._sleep or sleep
        while True:
            wait = self.seconds_until_due()
            if wait > 0:
                await sleep(min(wait, 3600.0))
                continue
            await self.run_round()
