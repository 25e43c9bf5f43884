"""Small blobs that arrive together share one immutable file (a *pack*).

A 10 KB blob uploaded on its own costs a grid upload of N shares (each a
bucket on a storage node, its own writes and fsyncs) for a few kilobytes;
most of the cost of many small blobs is that per-file work, not their
bytes. So the blobs of one /stream upload, and PUTs that arrive while an
upload of the same namespace is in flight, are written as one CHK file,
their bytes one after another, and each blob's directory entry names that
file and where in it the blob starts::

    <blob_id>  URI:CHK:... (the pack), metadata {"blob": {"size": S,
               "offset": O, "tag": ..., "flags": [...], "created": T}}

The blob is bytes [O, O + S) of the pack; a read of it is a ranged read of
the pack (only the segments it touches are fetched, and every byte is
checked against the pack's hashes as for any file). An entry without
``offset`` is a blob stored on its own, as before packs existed, and a
group of one is stored that way too.

A pack's blobs belong to one namespace of one user (whose directory holds
the pack's cap, so it gives no one access to anything they could not
read). A deleted blob's bytes stay in its pack until every blob of the
pack is deleted: then no live entry references the pack and its leases
lapse like a lone blob's. Quotas count each live blob's own size.

Only blobs above the literal-cap limit (those are free: their bytes are in
the cap) and up to PACK_MAX_BLOB are packed, up to PACK_BYTES a pack.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.immutable.params import LIT_THRESHOLD

PACK_MAX_BLOB = 64 * 1024  # larger blobs are always stored on their own
PACK_BYTES = 1024 * 1024  # a pack stops growing at this size


def packable(size: int) -> bool:
    return LIT_THRESHOLD < size <= PACK_MAX_BLOB  # at most LIT_THRESHOLD: a literal cap, no upload


def plan(sizes: Sequence[int], pack_bytes: int = PACK_BYTES) -> list[list[int]]:
    """Group items (by their sizes, in order) into uploads: each group lists
    item indexes in order; a group of several is a pack (packable items, at
    most pack_bytes together), a group of one is stored on its own. Every
    index appears in exactly one group; groups are ordered by their first item."""
    groups: list[list[int]] = []
    current: list[int] = []
    filled = 0
    for i, size in enumerate(sizes):
        if size < 0:
            raise ValueError(f"item {i}: negative size {size}")
        if not packable(size):
            groups.append([i])
            continue
        if current and filled + size > pack_bytes:
            groups.append(current)
            current, filled = [], 0
        current.append(i)
        filled += size
    if current:
        groups.append(current)
    groups.sort(key=lambda g: g[0])
    return groups
