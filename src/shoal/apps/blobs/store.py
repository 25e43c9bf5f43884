"""Where the blob service keeps its record on the grid.

Every blob is an immutable file (CHK, or LIT when 55 bytes or fewer) or a
part of one (a pack of small blobs, shoal.apps.blobs.packs: the entry's
metadata then has the blob's ``offset`` in it). The rest lives in mutable
directories (DIR2 over SDMF)::

    root directory            (the [blobs] root_cap, or private/blobs.rootcap)
      <user>                  one directory per user
        <namespace>           one directory per namespace
          <blob_id>           while the namespace is small: the blob's cap,
                              metadata {"blob": {...}}
          .shard-<hh>         once it is large, up to 256 shard directories,
            <blob_id>         made on first use, hh = the first two hex digits
                              of SHA-256(blob id)

Fan-out keeps an edit's cost flat as a namespace grows. A namespace keeps its
entries in its own directory until it holds FLAT_LIMIT (1,024) entries (as
older shoal did, and a small namespace costs no more directories, each of
which needs an RSA key); from then on every edit, of a new id or an old one,
goes to the id's shard, so a PUT into a namespace of 100,000 blobs rewrites
a shard of about 400 entries, never the namespace. Shard names start with
``.``, which no blob id may contain, so both kinds of entry share the
namespace directory; when the grid is read, a shard's entry for an id
overrides the flat one (nothing is written flat once a namespace has shards).

FLAT_LIMIT was re-measured with OpenSSL keys (42 ms of CPU per RSA-2048 key;
bench/blobs.py --scale, 5 storage nodes, the two settings run side by side,
median of 9 PUTs of 10 KB): flat, a PUT took 135 ms at 100 entries, 165 ms at
1,000, 302 ms at 4,000 and 461 ms at 8,000; sharded, 65 ms at 4,000 and
36 ms at 8,000 but 426 ms at 1,000 against 209 ms flat (there most PUTs
still make a shard: a key and two publishes). And 1,000 PUTs of 10 KB into
a new namespace cost 68 CPU-seconds flat against 101 sharded from the start
(FLAT_LIMIT 0 or 128): ~250 shards made, and no two edits share a publish.
The crossing lies between 1,000 and 4,000 entries, so the limit stays 1,024.

A live entry's ``blob`` metadata holds ``size``, ``tag``, ``flags`` and
``created`` (seconds since the epoch), and ``offset`` when the cap is a pack's; a deleted blob's entry is a tombstone:
the empty literal cap ``URI:LIT:`` with ``{"blob": {"deleted": T, "created":
T0}}``, so the blob's file is no longer referenced (its leases lapse) while
the id is still listed with ``deleted=true``. Reading these directories is
all a gateway needs to rebuild its index.

Directory edits go through a ``DirectoryBatcher``: while one write to a
directory is in flight, further edits queue and then go out together as one
``set_children`` (one mutable publish for many blobs), which is what makes
many small uploads affordable; each caller still returns only once its own
edit is on the grid.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer
from twisted.python import log

from shoal.apps.blobs.errors import BlobStoreError
from shoal.apps.blobs.index import BlobRow
from shoal.caps import DirectoryWriteCap, MDMFDirectoryWriteCap, parse_cap
from shoal.dirnode import ChildSpec, DirectoryNode, Entry, NodeMaker

TOMBSTONE_CAP = "URI:LIT:"
METADATA_KEY = "blob"
SHARD_PREFIX = ".shard-"
SHARD_DIGITS = 2  # hex digits of SHA-256(blob id): 256 shards per namespace
_SHARD_RE = re.compile(r"^\.shard-[0-9a-f]{%d}$" % SHARD_DIGITS)


def shard_of(blob_id: str) -> str:
    """The name of the shard directory that holds `blob_id`'s entry."""
    return SHARD_PREFIX + hashlib.sha256(blob_id.encode("utf-8")).hexdigest()[:SHARD_DIGITS]


def is_shard_name(name: str) -> bool:
    return bool(_SHARD_RE.match(name))


def live_metadata(row: BlobRow) -> dict[str, Any]:
    meta: dict[str, Any] = {"size": row.size, "tag": row.tag, "flags": list(row.flags), "created": row.created}
    if row.offset is not None:
        meta["offset"] = row.offset  # the cap is a pack's (shoal.apps.blobs.packs)
    return {METADATA_KEY: meta}


def tombstone_metadata(row: BlobRow) -> dict[str, Any]:
    assert row.deleted is not None
    return {METADATA_KEY: {"deleted": row.deleted, "created": row.created}}


def entry_spec(row: BlobRow) -> ChildSpec:
    """The directory child that records `row` (live or tombstone)."""
    if row.live:
        return (row.cap, None, live_metadata(row))
    return (TOMBSTONE_CAP, None, tombstone_metadata(row))


def row_from_entry(user: str, namespace: str, entry: Entry) -> BlobRow | None:
    """The index row an entry of a namespace directory stands for (None: not a blob's)."""
    meta = entry.metadata.get(METADATA_KEY)
    cap = entry.rw_cap or entry.ro_cap
    if not isinstance(meta, dict) or not cap:
        return None
    try:
        created = float(meta.get("created", 0.0))
        if "deleted" in meta:
            return BlobRow(user, namespace, entry.name, TOMBSTONE_CAP, 0, "", (), created, float(meta["deleted"]))
        flags = tuple(str(f) for f in meta.get("flags", []))
        size = int(meta["size"])
        offset = meta.get("offset")
        if size < 0 or (offset is not None and (type(offset) is not int or offset < 0)):
            return None
        return BlobRow(user, namespace, entry.name, cap, size, str(meta["tag"]), flags, created, None, offset)
    except (KeyError, TypeError, ValueError):
        return None


BATCH_ENTRIES = 1000  # entries of one publish (a /stream request's links, at most 1,000, go whole)
BATCH_BYTES = 4 * 1024 * 1024  # bytes of caps and metadata of one publish (roughly the entries' size)


def _spec_bytes(name: str, spec: ChildSpec) -> int:
    """Roughly the bytes an entry adds to a directory (its name, caps and metadata)."""
    return len(name) + len(repr(spec))


class DirectoryBatcher:
    """Group commit of links into one mutable directory.

    Callers queue in arrival order; each publish takes the callers at the head of
    the queue whose entries together stay within BATCH_ENTRIES and BATCH_BYTES
    (one caller's entries always go together, even past the bounds, so a /stream
    batch stays all or nothing), later edits of a name overriding earlier ones.
    """

    def __init__(self, node: DirectoryNode, soon: Callable[[Callable[[], None]], object] | None = None) -> None:
        self.node = node
        # how the first edit starts a publish: at once, or `soon` (the reactor's next
        # turn), so edits made in the same turn (a pack's blobs) share the publish
        self._soon = soon
        self._queue: list[tuple[Mapping[str, ChildSpec], int, defer.Deferred[None]]] = []
        self._running = False
        self.writes = 0  # publishes made (for tests and the benchmark)

    async def link(self, entries: Mapping[str, ChildSpec]) -> None:
        """Link (or replace) these children; returns once they are on the grid."""
        if not entries:
            return
        waiter: defer.Deferred[None] = defer.Deferred()
        size = sum(_spec_bytes(name, spec) for name, spec in entries.items())
        self._queue.append((dict(entries), size, waiter))
        if not self._running:
            self._running = True
            if self._soon is None:
                defer.ensureDeferred(self._drain())
            else:
                self._soon(self._start_drain)
        await waiter

    def _start_drain(self) -> None:
        defer.ensureDeferred(self._drain())

    def _next_batch(self) -> tuple[dict[str, ChildSpec], list[defer.Deferred[None]]]:
        batch: dict[str, ChildSpec] = {}
        waiters: list[defer.Deferred[None]] = []
        size = 0
        while self._queue:
            entries, n, waiter = self._queue[0]
            if waiters and (len(batch) + len(entries) > BATCH_ENTRIES or size + n > BATCH_BYTES):
                break
            self._queue.pop(0)
            batch.update(entries)
            waiters.append(waiter)
            size += n
        return batch, waiters

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, waiters = self._next_batch()
                try:
                    self.writes += 1
                    await self.node.set_children(batch, overwrite=True)
                except Exception as e:
                    # no cap in the message: the first 40 characters of a write cap hold its write key
                    error = BlobStoreError(f"cannot update a blob directory ({len(batch)} entries): {e}")
                    for waiter in waiters:
                        waiter.errback(error)
                else:
                    for waiter in waiters:
                        waiter.callback(None)
        finally:
            self._running = False


def write_private(path: str, text: str) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary keeps its old mode through O_CREAT
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_root_cap(text: str, where: str) -> str:
    """A root cap must be a mutable directory's write cap."""
    try:
        cap = parse_cap(text.strip())
    except Exception as e:
        raise BlobStoreError(f"{where}: not a cap: {e}") from None
    if not isinstance(cap, (DirectoryWriteCap, MDMFDirectoryWriteCap)):
        raise BlobStoreError(f"{where}: the blob root must be a directory write cap (URI:DIR2:...), not {text[:20]!r}")
    return cap.to_string()


class RootDirectory:
    """The service's root directory: the configured cap, or the one recorded in
    `record_path`, or (first start, nothing configured) a new one, recorded
    there. Copy the recorded cap into ``[blobs] root_cap`` to be able to
    rebuild on a new disk."""

    def __init__(self, nodemaker: NodeMaker, configured: str | None, record_path: str) -> None:
        self._maker = nodemaker
        self.record_path = record_path
        self.cap: str | None = None
        if configured:
            self.cap = check_root_cap(configured, "[blobs] root_cap")
        elif os.path.exists(record_path):
            with open(record_path, encoding="ascii") as f:
                self.cap = check_root_cap(f.read(), record_path)
        self._lock = defer.DeferredLock()

    async def node(self) -> DirectoryNode:
        if self.cap is None:
            await self._lock.acquire()
            try:
                if self.cap is None:
                    made = await self._maker.create_directory()
                    write_private(self.record_path, made.cap.to_string())
                    self.cap = made.cap.to_string()
                    log.msg(f"blobs: made the root directory, recorded in {self.record_path}; put it in"
                            " [blobs] root_cap to be able to rebuild this gateway on a new disk")
            finally:
                self._lock.release()
        node = self._maker.node_for(self.cap)
        assert isinstance(node, DirectoryNode)
        return node
