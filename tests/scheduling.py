"""How a parallel run (pytest-xdist) deals the suite out to its workers.

Every module runs whole on one worker, in file order: a module's grid is module-scoped
and later tests use what earlier ones made. The netgrid package is one unit (its
package-scoped namespace grid starts once and no two namespace grids run at once).

The units are handed out longest first (the known slow ones by their measured cost, the
rest in collection order), so that no slow module starts last and leaves one worker idle.

Why not `--dist loadgroup` with xdist_group marks: xdist 3.8 renames a marked item's
`_nodeid` to `id@group` in the worker, but since pytest 9.2 a node's id comes from its
structured `_id`, so the rename is lost and the marks group nothing. The unit here is
read from the node id's path, which both versions give the controller.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

PACKAGE_UNITS = ("tests/netgrid/",)

# Seconds each of the slowest units took in a two-worker run of the whole suite
# (--durations=0: setup, call and teardown summed, a session grid counted in the first
# module that used it; 4 Dec 2026, a machine shared with other runs). Only the order
# matters. Units not listed count as 0 and go after these, in collection order.
MEASURED_SECONDS: Mapping[str, float] = {
    "tests/unit/apps/blobs/test_blobs_fanout.py": 126,
    "tests/netgrid": 119,
    "tests/storage_suite/test_suite_mutable.py": 85,
    "tests/integration/test_cli.py": 79,
    "tests/integration/test_cli_dropin.py": 74,
    "tests/interop/test_tahoe_cli.py": 72,
    "tests/integration/test_updown.py": 68,
    "tests/interop/test_http_interop.py": 66,
    "tests/integration/test_no_cap_in_logs.py": 65,
    "tests/integration/test_grid.py": 54,
    "tests/conformance/test_immutable_vectors.py": 51,
    "tests/integration/test_checker.py": 50,
    "tests/storage_suite/test_suite_immutable.py": 50,
    "tests/integration/test_pages.py": 49,
    "tests/interop/test_dropin_side_by_side.py": 49,
    "tests/grid/test_mutable.py": 48,
    "tests/storage_suite/test_suite_server.py": 46,
    "tests/interop/test_updown_interop.py": 45,
    "tests/integration/test_http_storage_node.py": 41,
    "tests/integration/test_bad_config.py": 41,
    "tests/integration/test_storage_node.py": 40,
    "tests/integration/test_sftp.py": 40,
    "tests/integration/test_blockstack_driver.py": 39,
    "tests/interop/test_cli_against_tahoe.py": 39,
}


def unit_of(nodeid: str) -> str:
    """The scheduling unit of a test: its package for PACKAGE_UNITS, else its module."""
    path = nodeid.split("::", 1)[0]
    for package in PACKAGE_UNITS:
        if path.startswith(package):
            return package.rstrip("/")
    return path


def next_unit(waiting: Iterable[str], seconds: Mapping[str, float] = MEASURED_SECONDS) -> str:
    """The waiting unit to hand out next: the costliest, the first of equals (collection order)."""
    best: str | None = None
    for unit in waiting:
        if best is None or seconds.get(unit, 0) > seconds.get(best, 0):
            best = unit
    if best is None:
        raise ValueError("no unit is waiting")
    return best


def worker_spec(spec: str, executable: str, bytes_warning: int) -> str:
    """The execnet spec of a worker: a plain `popen` runs `executable` with the controller's
    -b/-bb (xdist starts it as `python -u -c ...`, where a bytes/str mix-up would warn
    nobody); a spec of the caller's own (--tx) is left as given."""
    if spec != "popen" or not bytes_warning:
        return spec
    flag = "-bb" if bytes_warning > 1 else "-b"
    return f"popen//python={shlex.quote(executable)} {flag}"


def make_scheduler(config: Any, log: Any) -> Any:
    """An xdist scheduler that hands out whole units (unit_of), costliest first (next_unit)."""
    from xdist.scheduler import LoadScopeScheduling  # only a parallel run has xdist loaded

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            # the parent hands out the queue's first unit: put the one we want there
            self.workqueue.move_to_end(next_unit(self.workqueue), last=False)
            super()._assign_work_unit(node)

    return UnitScheduling(config, log)
