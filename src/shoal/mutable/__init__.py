"""Mutable files (SDMF and MDMF) of Tahoe-LAFS 1.20: create, read, overwrite, modify, update."""

from shoal.mutable.client import MutableClient
from shoal.mutable.errors import (
    CorruptShareError,
    MutableError,
    MutableFullError,
    MutableUsageError,
    NotEnoughServersError,
    NotEnoughSharesError,
    ReadOnlyError,
    UncoordinatedWriteError,
    VersionChangedError,
)
from shoal.mutable.filenode import MutableFileNode, normalize_tag, version_tag
from shoal.mutable.servermap import (
    MODE_ANYTHING,
    MODE_CHECK,
    MODE_READ,
    MODE_REPAIR,
    MODE_WRITE,
    ServerMap,
)

__all__ = [
    "MODE_ANYTHING",
    "MODE_CHECK",
    "MODE_READ",
    "MODE_REPAIR",
    "MODE_WRITE",
    "CorruptShareError",
    "MutableClient",
    "MutableError",
    "MutableUsageError",
    "MutableFileNode",
    "MutableFullError",
    "NotEnoughServersError",
    "NotEnoughSharesError",
    "ReadOnlyError",
    "ServerMap",
    "UncoordinatedWriteError",
    "VersionChangedError",
    "normalize_tag",
    "version_tag",
]
