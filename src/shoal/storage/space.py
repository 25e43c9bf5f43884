"""How much a storage server may still store: free disk and an optional cap.

Two limits, the tighter one wins:

- ``reserved_space`` (Tahoe-LAFS 1.20, util/fileutil.py get_disk_stats): the
  disk must keep this many bytes free; free bytes are ``f_bavail * f_frsize``
  from statvfs (what an unprivileged user may use);
- ``max_space`` (shoal; Tahoe Trac #671): the bytes of all share files
  (their sizes, not their disk blocks) may not exceed this.

Uploads in progress hold a reservation of their full container size until
they close or abort, counted against both limits, as Tahoe counts its
allocated-but-unfinished buckets against free disk. The bytes used by shares
are counted once at start (only when ``max_space`` is set, since the count
walks every share) and kept up to date by every change.
"""

import os
from collections.abc import Callable
from typing import Any, Protocol

from shoal.storage.layout import ALL_PREFIXES, StorageLayout, list_share_files


class StatvfsResult(Protocol):
    f_frsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int


Statvfs = Callable[[str], Any]


class SpaceAccountant:
    """Free disk, the share-space cap, and the reservations of uploads in progress."""

    def __init__(self, store: StorageLayout, reserved_space: int, max_space: int | None,
                 statvfs: Statvfs = os.statvfs) -> None:
        if reserved_space < 0:
            raise ValueError(f"reserved_space must not be negative, got {reserved_space}")
        if max_space is not None and max_space < 0:
            raise ValueError(f"max_space must not be negative, got {max_space}")
        self._store = store
        self.reserved_space = reserved_space
        self.max_space = max_space
        self._statvfs = statvfs
        self.pending = 0  # reservations of uploads in progress
        self.used: int | None = count_share_bytes(store) if max_space is not None else None

    def disk_stats(self) -> dict[str, int]:
        """Tahoe's disk statistics: total, free_for_root, free_for_nonroot, used, avail."""
        s = self._statvfs(self._store.shares_dir)
        total = s.f_frsize * s.f_blocks
        free_for_root = s.f_frsize * s.f_bfree
        free_for_nonroot = s.f_frsize * s.f_bavail
        return {
            "total": total,
            "free_for_root": free_for_root,
            "free_for_nonroot": free_for_nonroot,
            "used": total - free_for_root,
            "avail": max(free_for_nonroot - self.reserved_space, 0),
        }

    def headroom(self) -> int:
        """Bytes that new share data may still take, after pending reservations."""
        room = self.disk_stats()["avail"] - self.pending
        if self.max_space is not None:
            assert self.used is not None
            room = min(room, self.max_space - self.used - self.pending)
        return max(room, 0)

    def reserve(self, size: int) -> None:
        self.pending += size

    def release(self, size: int, committed: bool) -> None:
        """Drop a reservation; if ``committed`` its bytes are now a share's."""
        self.pending -= size
        if committed:
            self.changed(size)

    def changed(self, delta: int) -> None:
        """Share files grew (or, negative, shrank or vanished) by ``delta`` bytes."""
        if self.used is not None:
            self.used = max(0, self.used + delta)


def count_share_bytes(store: StorageLayout) -> int:
    """The total size of every finished share file (a full walk of shares/)."""
    total = 0
    for prefix in ALL_PREFIXES:
        for bucket in store.list_buckets(prefix):
            for _shnum, path in list_share_files(os.path.join(store.prefix_dir(prefix), bucket)):
                try:
                    total += os.stat(path).st_size
                except FileNotFoundError:
                    continue
    return total
