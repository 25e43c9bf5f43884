"""The grid blob backend: Soledad's ``IBlobsBackend`` over shoal's grid.

Public methods are those of Soledad's interface and return Deferreds
(read_blob, write_blob, delete_blob, get_blob_size, count, list_blobs,
get_total_storage, get_tag, get_flags, set_flags); each is a thin adapter
over an ``async`` method of the same name with a leading ``a`` less
(``store``, ``read`` ...) that the HTTP resources call directly.

Rules it keeps (Soledad's, with its quirks fixed):

* A namespace of '' is ``default`` (what the HTTP layer passes when absent).
* Create-only: a live id, or one being written right now, is BlobExists.
  Re-creating a deleted id is allowed and removes its tombstone.
* Quota: before any byte goes to the grid, the user's live bytes plus the
  bytes of uploads in flight plus this upload must fit the quota (in bytes),
  and so must the count of live blobs (in flight too) fit the per-user object
  limit, and a namespace's entries (blobs and tombstones)
  MAX_NAMESPACE_ENTRIES (spread over 256 shard directories, store.py, so an
  edit rewrites one shard of about 1/256 of them); the checks and
  the reservation are one step on the reactor thread, so concurrent uploads
  can never pass them together. Stream uploads get
  the same create-only and quota checks as PUT, for all their blobs at once.
* Tombstones are not counted and not listed unless deleted=True.
* Each blob's reads and edits are isolated by a per-blob lock.

The grid is written before the index (shoal.apps.blobs.store), so whatever
a client was told succeeded is on the grid. A /stream batch writes each shard
it touches once (at most LINK_PARALLEL at a time); if one shard write fails,
the others get their previous entries back. A user is read from the grid
namespace by namespace and LOAD_PARALLEL shards at a time, each shard's rows
stored as they come, so a rebuild of 100,000 entries holds a few directories
in memory, not the namespace.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, BinaryIO, TypeVar

import attrs
from twisted.internet import defer
from twisted.internet import reactor as _reactor
from twisted.internet.interfaces import IConsumer
from twisted.python import log
from zope.interface import implementer

from shoal.apps.blobs import packs
from shoal.apps.blobs.errors import (
    BlobExists,
    BlobNotFound,
    BlobStoreError,
    NamespaceFull,
    ObjectQuotaExceeded,
    QuotaExceeded,
    TooManyNamespaces,
)
from shoal.apps.blobs.index import BlobIndex, BlobRow
from shoal.apps.blobs.interfaces import IBlobsBackend
from shoal.apps.blobs.putqueue import PutQueue
from shoal.apps.blobs.rules import (
    DEFAULT_NAMESPACE,
    TAG_BYTES,
    check_flags,
    check_name,
    newest_first,
    tag_of,
)
from shoal.apps.blobs.store import (
    DirectoryBatcher,
    RootDirectory,
    entry_spec,
    is_shard_name,
    row_from_entry,
    shard_of,
)
from shoal.caps import parse_cap
from shoal.dirnode import ChildSpec, DirectoryNode, ImmutableFiles, NodeMaker
from shoal.grid.locks import KeyedLocks
from shoal.streaming import ConsumerWriter

T = TypeVar("T")
reactor: Any = _reactor
SPOOL_IN_MEMORY = 1024 * 1024  # bodies up to this stay in memory while spooled
STREAM_PARALLEL = 8  # blobs uploaded / fetched at once within one /stream request
PREFETCH_LIMIT = 1024 * 1024  # /stream download prefetches blobs up to this size
DEFAULT_MAX_OBJECTS = 50_000  # live blobs per user, over all namespaces ([blobs]max_objects)
MAX_NAMESPACE_ENTRIES = 500_000  # entries (blobs + tombstones) of one namespace (about 2,000 per shard)
FLAT_LIMIT = 1024  # entries a namespace keeps in its own directory before it fans out over shards
LOAD_PARALLEL = 8  # shard directories read at once while a user is read from the grid
LINK_PARALLEL = 16  # shard directories written at once by one /stream upload
MAX_NAMESPACES = 100  # namespaces of one user


@implementer(IConsumer)
class _SpoolConsumer:
    """Collects what a producer writes into a spooled temporary file."""

    def __init__(self) -> None:
        self.file: BinaryIO = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # type: ignore[assignment]
        self.size = 0

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)


def _tail(source: BinaryIO, start: int, size: int) -> bytes:
    n = min(size, TAG_BYTES)
    source.seek(start + size - n)
    tail = source.read(n)
    source.seek(start)
    return tail


@implementer(IBlobsBackend)
class GridBlobsBackend:
    def __init__(self, files: ImmutableFiles, nodemaker: NodeMaker, *, root: RootDirectory, index_path: str,
                 quota: int, max_objects: int = DEFAULT_MAX_OBJECTS,
                 clock: Callable[[], float] = time.time) -> None:
        self._files = files
        self._maker = nodemaker
        self._root = root
        self._index_path = index_path
        self._index: BlobIndex | None = None
        self.quota = quota
        self.max_objects = max_objects
        self._clock = clock
        self._reserved: dict[str, int] = {}
        self._writing: set[tuple[str, str, str]] = set()
        self._blob_locks = KeyedLocks()
        self._dir_locks = KeyedLocks()
        self._batchers: dict[str, DirectoryBatcher] = {}
        self._put_queues: dict[tuple[str, str], PutQueue] = {}  # small PUTs packed per namespace
        self._edits = 0  # grid edits in flight

    # --- setup and the grid's directories ------------------------------------------

    async def _ready(self) -> BlobIndex:
        if self._index is None:
            async with self._dir_locks.hold(("root",)):
                if self._index is None:
                    await self._root.node()
                    assert self._root.cap is not None
                    self._index = BlobIndex(self._index_path, self._root.cap)
        return self._index

    def close(self) -> None:
        """Close the index; it is marked clean only if no edit is in flight (an edit
        cut short may have reached the grid and not the index)."""
        if self._index is not None:
            self._index.close(clean=not self._edits)
            self._index = None

    def _batcher(self, node: DirectoryNode) -> DirectoryBatcher:
        key = node.cap.to_string()
        batcher = self._batchers.get(key)
        if batcher is None:
            batcher = self._batchers[key] = DirectoryBatcher(node, soon=lambda f: reactor.callLater(0, f))
        return batcher

    async def _user(self, user: str) -> BlobIndex:
        """The index, with everything the grid holds for `user` in it."""
        index = await self._ready()
        if not index.root_listed:
            async with self._dir_locks.hold(("root",)):
                if not index.root_listed:
                    root = await self._root.node()
                    listing = await root.list()
                    index.set_users({name: e.rw_cap for name, e in listing.items() if e.rw_cap and e.is_directory})
        known = index.user(user)
        if known is not None and not known[1]:
            async with self._dir_locks.hold(("user", user)):
                known = index.user(user)
                if known is not None and not known[1]:
                    await self._load_user(index, user, known[0])
        return index

    async def _load_user(self, index: BlobIndex, user: str, dircap: str) -> None:
        """Read `user`'s namespaces from the grid into the index, one namespace and at
        most LOAD_PARALLEL shards at a time, each shard's rows written as it arrives,
        so memory stays bounded by a few directories whatever the namespace holds."""
        node = self._dirnode(dircap)
        namespaces = {name: e.rw_cap for name, e in (await node.list()).items() if e.rw_cap and e.is_directory}
        index.begin_load(user, namespaces)
        limiter = defer.DeferredSemaphore(LOAD_PARALLEL)
        for namespace, cap in namespaces.items():
            listing = await self._dirnode(cap).list()
            shards = {}
            flat = []
            for entry in listing.values():
                if is_shard_name(entry.name) and entry.is_directory and entry.rw_cap:
                    shards[entry.name] = entry.rw_cap
                    continue
                row = row_from_entry(user, namespace, entry)
                if row is None:
                    log.msg(f"blobs: skipping {user}/{namespace}/{entry.name}: not a blob entry")
                else:
                    flat.append(row)
            index.put_many(flat)  # the older flat layout first: shard entries override it
            del listing, flat
            for shard, shard_cap in shards.items():
                index.add_shard(user, namespace, shard, shard_cap)

            async def load_shard(shard: str, shard_cap: str, namespace: str = namespace) -> None:
                rows = []
                for entry in (await self._dirnode(shard_cap).list()).values():
                    row = row_from_entry(user, namespace, entry)
                    if row is None:
                        log.msg(f"blobs: skipping {user}/{namespace}/{shard}/{entry.name}: not a blob entry")
                    else:
                        rows.append(row)
                index.put_many(rows)

            await defer.gatherResults([_limited(limiter, load_shard(shard, shard_cap))
                                       for shard, shard_cap in shards.items()], consumeErrors=True)
        index.finish_load(user)

    def _dirnode(self, cap: str) -> DirectoryNode:
        node = self._maker.node_for(cap)
        if not isinstance(node, DirectoryNode):
            raise BlobStoreError("an entry of the blob directories is not a directory")  # no cap: it is secret
        return node

    async def _link(self, batcher: DirectoryBatcher, entries: Mapping[str, ChildSpec]) -> None:
        self._edits += 1
        try:
            await batcher.link(entries)
        finally:
            self._edits -= 1

    async def _namespace_dir(self, index: BlobIndex, user: str, namespace: str) -> DirectoryBatcher:
        """The namespace's directory (made, with the user's, on first write)."""
        cap = index.namespace(user, namespace)
        if cap is None:
            async with self._dir_locks.hold(("user", user)):
                known = index.user(user)
                if known is None:
                    made = await self._maker.create_directory()
                    root = await self._root.node()
                    await self._link(self._batcher(root), {user: made.cap.to_string()})
                    index.add_user(user, made.cap.to_string())
                    known = (made.cap.to_string(), True)
                cap = index.namespace(user, namespace)
                if cap is None:
                    made = await self._maker.create_directory()
                    await self._link(self._batcher(self._dirnode(known[0])), {namespace: made.cap.to_string()})
                    cap = made.cap.to_string()
                    index.add_namespace(user, namespace, cap)
        return self._batcher(self._dirnode(cap))

    def _sharded(self, index: BlobIndex, user: str, namespace: str) -> bool:
        """Does the namespace write to shards? Once it has FLAT_LIMIT entries (or any
        shard), yes, for good: entries never go away and shards are never removed."""
        return index.has_shards(user, namespace) or index.entries(user, namespace) >= FLAT_LIMIT

    async def _entry_dir(self, index: BlobIndex, user: str, namespace: str, blob_id: str) -> DirectoryBatcher:
        """Where an edit of `blob_id` goes: its shard, or the namespace itself while small."""
        if self._sharded(index, user, namespace):
            return await self._shard_dir(index, user, namespace, blob_id)
        return await self._namespace_dir(index, user, namespace)

    async def _shard_dir(self, index: BlobIndex, user: str, namespace: str, blob_id: str) -> DirectoryBatcher:
        """The shard directory of `blob_id` in the namespace (made, with the namespace's, on
        first use)."""
        shard = shard_of(blob_id)
        cap = index.shard(user, namespace, shard)
        if cap is None:
            namespace_dir = await self._namespace_dir(index, user, namespace)
            async with self._dir_locks.hold(("shard", user, namespace, shard)):
                cap = index.shard(user, namespace, shard)
                if cap is None:
                    made = await self._maker.create_directory()
                    await self._link(namespace_dir, {shard: made.cap.to_string()})
                    cap = made.cap.to_string()
                    index.add_shard(user, namespace, shard, cap)
        return self._batcher(self._dirnode(cap))

    async def _link_rows(self, index: BlobIndex, user: str, namespace: str, rows: Sequence[BlobRow],
                         previous: Mapping[str, BlobRow | None]) -> None:
        """Link rows into their shards, each shard in one write, at most LINK_PARALLEL
        shards at once. If any shard write fails, the shards already written get their
        previous entries back (best effort), so the grid keeps all or none of them."""
        if not rows:
            return
        if not self._sharded(index, user, namespace):  # a small namespace: one write, all or nothing
            await self._link(await self._namespace_dir(index, user, namespace),
                             {row.blob_id: entry_spec(row) for row in rows})
            return
        groups: dict[str, dict[str, ChildSpec]] = {}
        for row in rows:
            groups.setdefault(shard_of(row.blob_id), {})[row.blob_id] = entry_spec(row)
        done: list[tuple[DirectoryBatcher, list[str]]] = []
        limiter = defer.DeferredSemaphore(LINK_PARALLEL)

        async def link(entries: dict[str, ChildSpec]) -> None:
            batcher = await self._shard_dir(index, user, namespace, next(iter(entries)))
            await self._link(batcher, entries)
            done.append((batcher, list(entries)))

        results = await defer.DeferredList([_limited(limiter, link(entries)) for entries in groups.values()],
                                           consumeErrors=True)
        failures: list[Any] = [r for ok, r in results if not ok]
        if failures:  # every write has ended by now: undo those that landed
            for batcher, names in done:
                await self._restore(batcher, names, previous)
            failures[0].raiseException()

    async def _restore(self, batcher: DirectoryBatcher, names: Sequence[str],
                       previous: Mapping[str, BlobRow | None]) -> None:
        back = {n: entry_spec(row) for n in names if (row := previous.get(n)) is not None}
        try:
            if back:
                await self._link(batcher, back)
            for name in names:
                if previous.get(name) is None:
                    await batcher.node.unlink(name)
        except Exception as e:  # noqa: BLE001 - the original failure is what the caller must see
            log.msg(f"blobs: could not undo part of a failed batch in {len(names)} entries: {e}")

    async def _live(self, user: str, blob_id: str, namespace: str) -> BlobRow:
        index = await self._user(user)
        row = index.get(user, namespace, blob_id)
        if row is None or not row.live:
            raise BlobNotFound(user, blob_id, namespace)
        return row

    @staticmethod
    def _names(user: str, blob_id: str | None, namespace: str) -> str:
        check_name("user", user)
        if blob_id is not None:
            check_name("blob id", blob_id)
        return check_name("namespace", namespace) if namespace else DEFAULT_NAMESPACE

    # --- writing -------------------------------------------------------------------

    def _reserve(self, index: BlobIndex, user: str, keys: list[tuple[str, str, str]], size: int) -> None:
        """Create-only and quota checks, and the reservation, in one step."""
        for key in keys:
            row = index.get(*key)
            if key in self._writing or (row is not None and row.live):
                raise BlobExists(key[0], key[2], key[1])
        used = index.usage(user) + self._reserved.get(user, 0)
        if used + size > self.quota:
            raise QuotaExceeded(user, used, size, self.quota)
        in_flight = [k for k in self._writing if k[0] == user]
        objects = index.objects(user) + len(in_flight)
        if objects + len(keys) > self.max_objects:
            raise ObjectQuotaExceeded(user, objects, len(keys), self.max_objects)
        fresh = {k[1] for k in keys + in_flight if index.namespace(user, k[1]) is None}
        if fresh and index.namespace_count(user) + len(fresh) > MAX_NAMESPACES:
            raise TooManyNamespaces(user, index.namespace_count(user), MAX_NAMESPACES)
        for namespace in {k[1] for k in keys}:
            new = [k for k in keys if k[1] == namespace and index.get(*k) is None]  # a tombstone is reused
            entries = index.entries(user, namespace) + sum(1 for k in in_flight if k[1] == namespace)
            if new and entries + len(new) > MAX_NAMESPACE_ENTRIES:
                raise NamespaceFull(user, namespace, entries, len(new), MAX_NAMESPACE_ENTRIES)
        self._reserved[user] = self._reserved.get(user, 0) + size
        self._writing.update(keys)

    def _unreserve(self, user: str, keys: Sequence[tuple[str, str, str]], size: int) -> None:
        self._reserved[user] -= size
        if not self._reserved[user]:
            del self._reserved[user]
        self._writing.difference_update(keys)

    async def _upload(self, user: str, namespace: str, blob_id: str, source: BinaryIO, size: int) -> BlobRow:
        tag = tag_of(_tail(source, source.tell(), size)) if size else tag_of(b"")
        result = await self._files.upload(source, size)
        return BlobRow(user, namespace, blob_id, result.cap, size, tag, (), self._clock())

    async def _upload_group(self, user: str, namespace: str, items: Sequence[tuple[str, int]],
                            starts: Sequence[int], spool: BinaryIO) -> list[BlobRow]:
        """Upload blobs spooled one after another in `spool` (at `starts`): one blob on
        its own, several as one pack (shoal.apps.blobs.packs)."""
        if len(items) == 1:
            spool.seek(starts[0])
            return [await self._upload(user, namespace, items[0][0], spool, items[0][1])]
        tags = [tag_of(_tail(spool, start, size)) for (_, size), start in zip(items, starts, strict=True)]
        spool.seek(0)
        result = await self._files.upload(spool, starts[-1] + items[-1][1])
        now = self._clock()
        return [BlobRow(user, namespace, blob_id, result.cap, size, tag, (), now, None, start)
                for (blob_id, size), start, tag in zip(items, starts, tags, strict=True)]

    async def _upload_datas(self, user: str, namespace: str, items: Sequence[tuple[str, bytes]]) -> list[BlobRow]:
        spool = io.BytesIO()
        starts = []
        for _, data in items:
            starts.append(spool.tell())
            spool.write(data)
        return await self._upload_group(user, namespace, [(b, len(d)) for b, d in items], starts, spool)

    def _put_queue(self, user: str, namespace: str) -> PutQueue:
        key = (user, namespace)
        queue = self._put_queues.get(key)
        if queue is None:
            def idle() -> None:
                current = self._put_queues.get(key)
                if current is not None and current.idle:
                    del self._put_queues[key]

            queue = self._put_queues[key] = PutQueue(
                lambda items: self._upload_datas(user, namespace, items), on_idle=idle)
        return queue

    async def _upload_one(self, user: str, namespace: str, blob_id: str, source: BinaryIO, size: int) -> BlobRow:
        """A PUT's upload: a small blob joins the namespace's PutQueue (packed with
        others that arrive meanwhile), any other goes on its own."""
        if not packs.packable(size):
            return await self._upload(user, namespace, blob_id, source, size)
        data = source.read(size)
        if len(data) != size:
            raise BlobStoreError(f"the request body ended {size - len(data)} bytes early")
        return await self._put_queue(user, namespace).add(blob_id, data)

    async def store(self, user: str, blob_id: str, source: BinaryIO, size: int, namespace: str = "") -> BlobRow:
        """Store `size` bytes of `source` (from its current position) as a new blob."""
        namespace = self._names(user, blob_id, namespace)
        index = await self._user(user)
        key = (user, namespace, blob_id)
        self._reserve(index, user, [key], size)
        try:
            async with self._blob_locks.hold(key):
                # the directory the entry goes to (made, with an RSA key and a publish, if
                # new) is found while the blob uploads: an empty directory on the grid is
                # harmless if the upload then fails, and the entry is linked only after it
                where = defer.ensureDeferred(self._entry_dir(index, user, namespace, blob_id))
                try:
                    row = await self._upload_one(user, namespace, blob_id, source, size)
                except BaseException:
                    where.addErrback(lambda _: None)
                    raise
                await self._link(await where, {blob_id: entry_spec(row)})
                index.put(row)
                return row
        finally:
            self._unreserve(user, [key], size)

    async def store_many(self, user: str, items: Sequence[tuple[str, int]], source: BinaryIO,
                         namespace: str = "") -> list[BlobRow]:
        """Store several blobs whose bytes follow each other in `source` (a /stream
        upload): all or nothing, one directory write for all of them."""
        namespace = self._names(user, None, namespace)
        for blob_id, _ in items:
            check_name("blob id", blob_id)
        index = await self._user(user)
        keys = [(user, namespace, blob_id) for blob_id, _ in items]
        total = sum(size for _, size in items)
        self._reserve(index, user, keys, total)
        try:
            async with self._blob_locks.hold_all(keys):
                limiter = defer.DeferredSemaphore(STREAM_PARALLEL)
                groups = packs.plan([size for _, size in items])
                group_of = {i: g for g, members in enumerate(groups) for i in members}
                spools: list[BinaryIO] = [
                    tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) for _ in groups]  # type: ignore[misc]
                starts: list[int] = []
                for i, (_, size) in enumerate(items):  # the body in order, each blob into its upload
                    spool = spools[group_of[i]]
                    starts.append(spool.tell())
                    _copy(source, spool, size)
                jobs = [_limited(limiter, self._upload_group(user, namespace, [items[i] for i in members],
                                                             [starts[i] for i in members], spools[g]))
                        for g, members in enumerate(groups)]
                uploaded: list[list[BlobRow]] = await defer.gatherResults(jobs, consumeErrors=True)
                by_index = {i: row for members, rows_of in zip(groups, uploaded, strict=True)
                            for i, row in zip(members, rows_of, strict=True)}
                rows = [by_index[i] for i in range(len(items))]
                previous = {k[2]: index.get(*k) for k in keys}
                await self._link_rows(index, user, namespace, rows, previous)
                index.put_many(rows)
                return rows
        except defer.FirstError as e:
            failure: Any = e.subFailure
            raise failure.value from None
        finally:
            self._unreserve(user, keys, total)

    async def delete(self, user: str, blob_id: str, namespace: str = "") -> None:
        namespace = self._names(user, blob_id, namespace)
        key = (user, namespace, blob_id)
        async with self._blob_locks.hold(key):
            row = await self._live(user, blob_id, namespace)
            index = await self._user(user)
            tombstone = BlobRow(user, namespace, blob_id, "URI:LIT:", 0, "", (), row.created, self._clock())
            await self._link(await self._entry_dir(index, user, namespace, blob_id), {blob_id: entry_spec(tombstone)})
            index.put(tombstone)

    async def set_flags_of(self, user: str, blob_id: str, flags: object, namespace: str = "") -> None:
        namespace = self._names(user, blob_id, namespace)
        key = (user, namespace, blob_id)
        async with self._blob_locks.hold(key):
            row = await self._live(user, blob_id, namespace)
            checked = tuple(check_flags(flags))
            index = await self._user(user)
            new = attrs.evolve(row, flags=checked)
            await self._link(await self._entry_dir(index, user, namespace, blob_id), {blob_id: entry_spec(new)})
            index.put(new)

    # --- reading -------------------------------------------------------------------

    async def row(self, user: str, blob_id: str, namespace: str = "") -> BlobRow:
        """The live blob's record (BlobNotFound if none)."""
        namespace = self._names(user, blob_id, namespace)
        return await self._live(user, blob_id, namespace)

    async def rows(self, user: str, blob_ids: Sequence[str], namespace: str = "") -> list[BlobRow]:
        namespace = self._names(user, None, namespace)
        return [await self._live(user, check_name("blob id", b), namespace) for b in blob_ids]

    async def read(self, row: BlobRow, write: Callable[[bytes], Awaitable[None] | None], offset: int = 0,
                   length: int | None = None) -> None:
        async with self._blob_locks.hold((row.user, row.namespace, row.blob_id)):
            cap = parse_cap(row.cap)
            if row.offset is None:
                await self._files.download(cap, write, offset, length)
                return
            # a packed blob: its own bytes of the pack, never a neighbour's
            offset = min(max(offset, 0), row.size)
            left = row.size - offset if length is None else max(0, min(length, row.size - offset))
            if left:
                await self._files.download(cap, write, row.offset + offset, left)

    async def fetch(self, row: BlobRow) -> bytes:
        parts: list[bytes] = []
        await self.read(row, parts.append)
        return b"".join(parts)

    async def listing(self, user: str, namespace: str = "", order_by: str | None = None, deleted: bool = False,
                      filter_flag: str | None = None) -> list[str]:
        namespace = self._names(user, None, namespace)
        order = newest_first(order_by)
        index = await self._user(user)
        return index.list_ids(user, namespace, deleted=bool(deleted), filter_flag=filter_flag or None,
                              newest_first=order)

    async def live_count(self, user: str, namespace: str = "") -> int:
        namespace = self._names(user, None, namespace)
        return (await self._user(user)).count(user, namespace)

    async def usage(self, user: str) -> int:
        check_name("user", user)
        return (await self._user(user)).usage(user)

    async def _fetch_run(self, run: Sequence[BlobRow]) -> list[bytes]:
        """The bytes of each row of a run: one blob, or neighbours in one pack read at once."""
        if len(run) == 1:
            return [await self.fetch(run[0])]
        first = run[0]
        assert first.offset is not None
        async with self._blob_locks.hold_all([(r.user, r.namespace, r.blob_id) for r in run]):
            parts: list[bytes] = []
            await self._files.download(parse_cap(first.cap), parts.append, first.offset, sum(r.size for r in run))
        data = b"".join(parts)
        out, pos = [], 0
        for r in run:
            out.append(data[pos: pos + r.size])
            pos += r.size
        return out

    async def stream_out(self, rows: Sequence[BlobRow], writer: ConsumerWriter, frame: Callable[[BlobRow], bytes]
                         ) -> None:
        """Write `frame(row)` then each blob's bytes, in order; small blobs are fetched
        a few at a time ahead of the one being written, neighbours in a pack with one
        read of the pack."""
        runs = _pack_runs(rows)
        limiter = defer.DeferredSemaphore(STREAM_PARALLEL)
        window = STREAM_PARALLEL * 2
        pending: dict[int, defer.Deferred[list[bytes]]] = {}

        def start(i: int) -> None:
            if i < len(runs) and i not in pending and sum(r.size for r in runs[i]) <= PREFETCH_LIMIT:
                pending[i] = _limited(limiter, self._fetch_run(runs[i]))

        for i in range(min(window, len(runs))):
            start(i)
        try:
            for i, run in enumerate(runs):
                start(i + window)
                if i in pending:
                    datas = await pending.pop(i)
                    for row, data in zip(run, datas, strict=True):
                        await writer.write(frame(row))
                        await writer.write(data)
                else:
                    for row in run:
                        await writer.write(frame(row))
                        await self.read(row, writer.write)
        finally:
            for d in pending.values():
                d.addErrback(lambda _: None)
                d.cancel()

    # --- Soledad's IBlobsBackend (Deferreds) ----------------------------------------

    def read_blob(self, user: str, blob_id: str, consumer: Any, namespace: str = "",
                  range: tuple[int, int] | None = None) -> defer.Deferred[None]:
        """Write the blob (or bytes [start, end) of it) to an IConsumer."""
        async def run() -> None:
            row = await self.row(user, blob_id, namespace)
            offset, length = (0, None) if range is None else (range[0], range[1] - range[0])
            with ConsumerWriter(consumer) as writer:
                await self.read(row, writer.write, offset, length)
        return defer.ensureDeferred(run())

    def write_blob(self, user: str, blob_id: str, producer: Any, namespace: str = "") -> defer.Deferred[BlobRow]:
        """Store what an IBodyProducer produces (a FileBodyProducer over a request body)."""
        async def run() -> BlobRow:
            source = getattr(producer, "source", None)
            if source is not None and getattr(producer, "length", None) is not None:
                return await self.store(user, blob_id, source, producer.length, namespace)
            consumer = _SpoolConsumer()
            await producer.startProducing(consumer)
            consumer.file.seek(0)
            return await self.store(user, blob_id, consumer.file, consumer.size, namespace)
        return defer.ensureDeferred(run())

    def delete_blob(self, user: str, blob_id: str, namespace: str = "") -> defer.Deferred[None]:
        return defer.ensureDeferred(self.delete(user, blob_id, namespace))

    def get_blob_size(self, user: str, blob_id: str, namespace: str = "") -> defer.Deferred[int]:
        async def run() -> int:
            return (await self.row(user, blob_id, namespace)).size
        return defer.ensureDeferred(run())

    def count(self, user: str, namespace: str = "") -> defer.Deferred[int]:
        return defer.ensureDeferred(self.live_count(user, namespace))

    def list_blobs(self, user: str, namespace: str = "", order_by: str | None = None, deleted: bool = False,
                   filter_flag: str | None = None) -> defer.Deferred[list[str]]:
        return defer.ensureDeferred(self.listing(user, namespace, order_by, deleted, filter_flag))

    def get_total_storage(self, user: str) -> defer.Deferred[int]:
        """Usage in units of 1024 bytes, rounded up (the interface's unit; `usage` gives bytes)."""
        async def run() -> int:
            return -(-(await self.usage(user)) // 1024)
        return defer.ensureDeferred(run())

    def get_tag(self, user: str, blob_id: str, namespace: str = "") -> defer.Deferred[str]:
        async def run() -> str:
            return (await self.row(user, blob_id, namespace)).tag
        return defer.ensureDeferred(run())

    def get_flags(self, user: str, blob_id: str, namespace: str = "") -> defer.Deferred[list[str]]:
        async def run() -> list[str]:
            return list((await self.row(user, blob_id, namespace)).flags)
        return defer.ensureDeferred(run())

    def set_flags(self, user: str, blob_id: str, flags: object, namespace: str = "") -> defer.Deferred[None]:
        return defer.ensureDeferred(self.set_flags_of(user, blob_id, flags, namespace))


def _pack_runs(rows: Sequence[BlobRow]) -> list[list[BlobRow]]:
    """Rows in order, grouped into runs: neighbours that lie one after another in
    the same pack (up to PREFETCH_LIMIT bytes a run) form one; any other row is a
    run of its own."""
    runs: list[list[BlobRow]] = []
    run_bytes = 0
    for row in rows:
        last = runs[-1][-1] if runs else None
        if (row.offset is not None and last is not None and last.offset is not None and last.cap == row.cap
                and last.offset + last.size == row.offset and run_bytes + row.size <= PREFETCH_LIMIT):
            runs[-1].append(row)
            run_bytes += row.size
        else:
            runs.append([row])
            run_bytes = row.size
    return runs


def _limited(limiter: defer.DeferredSemaphore, work: Coroutine[Any, Any, T]) -> defer.Deferred[T]:
    """Run a coroutine once the semaphore lets it (at most `limiter.limit` at once)."""
    async def run() -> T:
        await limiter.acquire()
        try:
            return await work
        finally:
            limiter.release()
    return defer.ensureDeferred(run())


def _copy(source: BinaryIO, dest: BinaryIO, size: int, chunk: int = 64 * 1024) -> None:
    left = size
    while left > 0:
        data = source.read(min(chunk, left))
        if not data:
            raise BlobStoreError(f"the request body ended {left} bytes early")
        dest.write(data)
        left -= len(data)

