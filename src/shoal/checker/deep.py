"""Deep operations from a directory: walk, manifest, deep-stats, deep-size, deep-check.

The walk is Tahoe-LAFS 1.20's deep traversal (dirnode.deep_traverse): depth
first from the root, each directory's children in name order, its files
before its subdirectories; every object (directories, files, unknown caps)
is visited once, identified by its verify cap (so a tree that links one file
twice, or a directory cycle, is walked once); LIT files have no verify cap
and are always visited. ``visit`` gets one ``DeepObject`` per object, in that
order, which is what the streaming forms (one JSON line per object) write.

``DeepStats`` is Tahoe's deep-stats dictionary (counts, sizes, largest
directory, the size-files histogram with two buckets per decade).
``DeepCheck`` gathers check (or check-and-repair) results and renders the
JSON of Tahoe's t=start-deep-check (with and without repair). Differences
from Tahoe: the size of a mutable directory is asked of the grid when it is
visited (Tahoe uses the size its node cached), and
``count-corrupt-shares-post-repair`` counts the post-repair corrupt shares
(Tahoe 1.20 repeats the pre-repair count there).
"""

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from shoal.caps import UnknownCap
from shoal.caps.base import CapBase
from shoal.checker.file_checker import FileChecker
from shoal.checker.results import CheckAndRepairResults, CheckResults, longname
from shoal.encoding.base32 import b2a
from shoal.errors import CallerError

DIRECTORY, FILE, UNKNOWN = "directory", "file", "unknown"
API_VERSION = 1
_STAT_KEYS = (
    "count-immutable-files", "count-mutable-files", "count-literal-files", "count-files",
    "count-directories", "count-unknown", "size-immutable-files", "size-literal-files",
    "size-directories", "largest-directory", "largest-directory-children", "largest-immutable-file",
)


class WalkCancelled(CallerError):
    """The caller asked the walk to stop."""


class NotADirectoryRootError(CallerError):
    """A deep walk was asked to start at something other than a directory."""


@attrs.frozen
class DeepObject:
    """One object reached by a walk, described as Tahoe's streaming forms describe it."""

    path: tuple[str, ...]
    kind: str  # DIRECTORY, FILE or UNKNOWN
    cap: str
    verifycap: str
    repaircap: str
    storage_index: str  # base32, "" for LIT
    node: Any = attrs.field(eq=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": list(self.path), "cap": self.cap, "type": self.kind, "verifycap": self.verifycap,
            "repaircap": self.repaircap, "storage-index": self.storage_index,
        }


def _cap_text(cap: Any) -> str:
    return cap.to_string() if cap is not None else ""


_KINDS = {"directory": DIRECTORY, "file": FILE, "verifier": FILE, "unknown": UNKNOWN}
"""A node's ``kind`` (shoal.dirnode.filenodes) -> the walk's: a CHK verify cap a
directory links is checked as the file it verifies."""


def describe(node: Any, path: Sequence[str]) -> DeepObject:
    """The DeepObject of a node of shoal.dirnode.NodeMaker."""
    kind = _KINDS[node.kind]
    verify = repair = None
    if kind != UNKNOWN:
        verify = node.verifier_cap  # None for LIT files and directories
        # as Tahoe: an immutable file is repaired with its verify cap; anything
        # else only through a write cap (immutable directories not at all)
        if verify is not None and kind == FILE and not node.is_mutable():
            repair = verify
        elif verify is not None and not node.is_readonly():
            repair = node.cap
    si = node.storage_index if kind != UNKNOWN else None
    return DeepObject(
        path=tuple(path), kind=kind, cap=_cap_text(node.cap), verifycap=_cap_text(verify),
        repaircap=_cap_text(repair), storage_index=b2a(si) if si else "", node=node,
    )


class DeepStats:
    """Tahoe's deep-stats: counts and sizes of what a walk reached."""

    def __init__(self) -> None:
        self.stats: dict[str, Any] = {"api-version": API_VERSION, **{key: 0 for key in _STAT_KEYS}}
        self.histogram: dict[tuple[int, int], int] = {}
        self._buckets: list[tuple[int, int]] = [(0, 0), (1, 3)]

    def _bucket(self, size: int) -> tuple[int, int]:
        """(low, high) with low <= size <= high: two buckets per decade, as Tahoe makes them."""
        i = 0
        while True:
            if i >= len(self._buckets):
                low = self._buckets[i - 1][1] + 1
                high: float = 1
                while high < low:
                    high *= math.sqrt(10)
                self._buckets.append((low, int(high)))
            low_i, high_i = self._buckets[i]
            if low_i <= size <= high_i:
                return low_i, high_i
            i += 1

    def add_object(self, obj: DeepObject) -> None:
        stats = self.stats
        if obj.kind == UNKNOWN:
            stats["count-unknown"] += 1
        elif obj.kind == DIRECTORY:
            stats["count-directories"] += 1
        elif obj.node.is_mutable():
            stats["count-files"] += 1
            stats["count-mutable-files"] += 1
        else:
            size = obj.node.get_size()
            stats["count-files"] += 1
            bucket = self._bucket(size)
            self.histogram[bucket] = self.histogram.get(bucket, 0) + 1
            if obj.node.format == "LIT":
                stats["count-literal-files"] += 1
                stats["size-literal-files"] += size
            else:
                stats["count-immutable-files"] += 1
                stats["size-immutable-files"] += size
                stats["largest-immutable-file"] = max(stats["largest-immutable-file"], size)

    def enter_directory(self, size: int | None, children: int) -> None:
        if size is not None:
            self.stats["size-directories"] += size
            self.stats["largest-directory"] = max(self.stats["largest-directory"], size)
        self.stats["largest-directory-children"] = max(self.stats["largest-directory-children"], children)

    def results(self) -> dict[str, Any]:
        out = dict(self.stats)
        out["size-files-histogram"] = sorted([low, high, count] for (low, high), count in self.histogram.items())
        return out


def deep_size(stats: dict[str, Any]) -> int:
    """Tahoe's t=deep-size: bytes of immutable files, mutable files and directories."""
    return int(stats.get("size-immutable-files", 0) + stats.get("size-mutable-files", 0)
               + stats.get("size-directories", 0))


async def _directory_size(node: Any) -> int | None:
    try:
        return int(await node.file.get_current_size())  # immutable: from the cap, mutable: the grid's
    except Exception:  # unreachable now: Tahoe would report None too
        return None


async def walk(maker: Any, root: Any, visit: Callable[[DeepObject], Awaitable[None]], *,
               stats: DeepStats | None = None, cancelled: Callable[[], bool] = lambda: False) -> DeepStats:
    """Walk from the directory `root` (a DirectoryNode, or its cap or cap text),
    calling ``visit`` for every object once (see the module docstring); return the stats."""
    stats = stats if stats is not None else DeepStats()
    node = maker.node_for(root) if isinstance(root, str | CapBase | UnknownCap) else root
    if node.kind != "directory":
        raise NotADirectoryRootError(f"a deep walk starts at a directory, not at {node!r}")
    seen: set[str] = {describe(node, ()).verifycap}

    async def one(obj: DeepObject) -> None:
        if cancelled():
            raise WalkCancelled()
        await visit(obj)
        stats.add_object(obj)

    async def directory(dnode: Any, path: tuple[str, ...]) -> None:
        await one(describe(dnode, path))
        entries = await dnode.list()
        stats.enter_directory(await _directory_size(dnode), len(entries))
        files: list[DeepObject] = []
        dirs: list[DeepObject] = []
        for name, entry in sorted(entries.items()):
            obj = describe(maker.node_for_entry(entry), (*path, name))
            if obj.kind != UNKNOWN and obj.verifycap:
                if obj.verifycap in seen:
                    continue
                seen.add(obj.verifycap)
            (dirs if obj.kind == DIRECTORY else files).append(obj)
        for obj in files:
            await one(obj)
        for obj in dirs:
            await directory(obj.node, obj.path)

    await directory(node, ())
    return stats


async def manifest(maker: Any, root: Any, on_object: Callable[[DeepObject], Any] | None = None) -> dict[str, Any]:
    """Tahoe's t=start-manifest JSON once finished: manifest, verifycaps, storage-index, stats."""
    found: list[DeepObject] = []

    async def visit(obj: DeepObject) -> None:
        found.append(obj)
        if on_object is not None:
            on_object(obj)

    stats = await walk(maker, root, visit)
    root_si = found[0].storage_index if found else ""
    return {
        "manifest": [["/".join(o.path), o.cap] for o in found],
        "verifycaps": sorted({o.verifycap for o in found if o.verifycap}),
        "storage-index": sorted({o.storage_index for o in found if o.storage_index}),
        "stats": stats.results(),
        "finished": True,
        "origin": root_si,
    }


class DeepCheck:
    """Results of a deep-check (or deep-check with repair), in Tahoe's shapes."""

    def __init__(self, repair: bool) -> None:
        self.repair = repair
        self.root_storage_index = ""
        self.results: list[tuple[tuple[str, ...], CheckResults | CheckAndRepairResults]] = []
        self.stats = DeepStats()
        self.finished = False

    def add(self, obj: DeepObject, result: CheckResults | CheckAndRepairResults | None) -> None:
        if not obj.path:
            self.root_storage_index = obj.storage_index
        if result is not None:  # LIT and unknown objects are not counted, as in Tahoe
            self.results.append((obj.path, result))

    @staticmethod
    def _corrupt(results: Sequence[CheckResults]) -> list[list[Any]]:
        return [[longname(sid), r.storage_index_string, sh] for r in results for sid, sh in r.corrupt_shares]

    def to_json(self) -> dict[str, Any]:
        if self.repair:
            return self._repair_json()
        checks = [r for _p, r in self.results if isinstance(r, CheckResults)]
        corrupt = self._corrupt(checks)
        return {
            "finished": self.finished,
            "root-storage-index": self.root_storage_index,
            "count-objects-checked": len(checks),
            "count-objects-healthy": sum(r.healthy for r in checks),
            "count-objects-unhealthy": sum(not r.healthy for r in checks),
            "count-objects-unrecoverable": sum(not r.recoverable for r in checks),
            "count-corrupt-shares": len(corrupt),
            "list-corrupt-shares": corrupt,
            "list-unhealthy-files": [
                [list(path), r.to_json()] for path, r in self.results
                if isinstance(r, CheckResults) and not r.healthy
            ],
            "stats": self.stats.results(),
        }

    def _repair_json(self) -> dict[str, Any]:
        crrs = [(p, r) for p, r in self.results if isinstance(r, CheckAndRepairResults)]
        pre = [r.pre_repair for _p, r in crrs]
        post = [r.post_repair for _p, r in crrs]
        corrupt_pre, corrupt_post = self._corrupt(pre), self._corrupt(post)
        return {
            "finished": self.finished,
            "root-storage-index": self.root_storage_index,
            "count-objects-checked": len(crrs),
            "count-objects-healthy-pre-repair": sum(r.healthy for r in pre),
            "count-objects-unhealthy-pre-repair": sum(not r.healthy for r in pre),
            "count-objects-unrecoverable-pre-repair": sum(not r.recoverable for r in pre),
            "count-objects-healthy-post-repair": sum(r.healthy for r in post),
            "count-objects-unhealthy-post-repair": sum(not r.healthy for r in post),
            "count-objects-unrecoverable-post-repair": sum(not r.recoverable for r in post),
            "count-repairs-attempted": sum(r.repair_attempted for _p, r in crrs),
            "count-repairs-successful": sum(r.repair_attempted and r.repair_successful for _p, r in crrs),
            "count-repairs-unsuccessful": sum(r.repair_attempted and not r.repair_successful for _p, r in crrs),
            "count-corrupt-shares-pre-repair": len(corrupt_pre),
            "count-corrupt-shares-post-repair": len(corrupt_post),
            "list-corrupt-shares": corrupt_pre,
            "list-remaining-corrupt-shares": corrupt_post,
            "list-unhealthy-files": [
                [list(path), r.pre_repair.to_json()] for path, r in crrs if not r.pre_repair.healthy
            ],
            "stats": self.stats.results(),
        }


async def deep_check(
    maker: Any,
    checker: FileChecker,
    root: Any,
    *,
    verify: bool = False,
    repair: bool = False,
    add_lease: bool = False,
    on_object: Callable[[DeepObject, dict[str, Any] | None], Any] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    into: DeepCheck | None = None,
) -> DeepCheck:
    """Check (and repair) every object below `root`. ``on_object(obj, line)`` gets
    each object and its streaming JSON line (t=stream-deep-check) as soon as it is
    checked; ``into`` is filled as the walk goes (for progress pages)."""
    report = into if into is not None else DeepCheck(repair)

    async def visit(obj: DeepObject) -> None:
        result: CheckResults | CheckAndRepairResults | None = None
        if obj.kind != UNKNOWN:
            cap = obj.node.cap
            if repair:
                result = await checker.check_and_repair(cap, verify=verify, add_lease=add_lease)
            else:
                result = await checker.check(cap, verify=verify, add_lease=add_lease)
        report.add(obj, result)
        if on_object is not None:
            line = obj.to_json()
            key = "check-and-repair-results" if repair else "check-results"
            if result is not None:
                line[key] = result.to_json()
            else:
                line[key] = {"storage-index": "", "repair-attempted": False} if repair else {
                    "storage-index": "", "results": {"healthy": True}}
            on_object(obj, line)

    await walk(maker, root, visit, stats=report.stats, cancelled=cancelled)
    report.finished = True
    return report
