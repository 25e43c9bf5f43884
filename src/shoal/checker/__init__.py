"""Checking, verifying and repairing files on the grid (Tahoe-LAFS 1.20's checker, improved).

``FileChecker`` (file_checker) is the entry point for one object; ``immutable``
checks and verifies CHK files and ``repair`` regenerates and places their
shares; ``mutable`` and ``mutable_repair`` do the same for SDMF/MDMF files;
``results`` holds results and renders Tahoe's JSON; ``deep`` walks trees
(manifest, deep-stats, deep-check); ``job`` is the node's periodic checker.
"""

from shoal.checker.file_checker import CheckerError, FileChecker, file_cap_of
from shoal.checker.repair import RepairError, RepairResult
from shoal.checker.results import (
    CheckAndRepairResults,
    CheckResults,
    literal_check_and_repair_json,
    literal_check_json,
)

__all__ = [
    "CheckAndRepairResults",
    "CheckResults",
    "CheckerError",
    "FileChecker",
    "RepairError",
    "RepairResult",
    "file_cap_of",
    "literal_check_and_repair_json",
    "literal_check_json",
]
