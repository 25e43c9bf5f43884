"""A mutable file (SDMF or MDMF) seen through one cap: read, overwrite, modify, update.

Each operation maps the servers afresh (MODE_READ to read, MODE_WRITE to
write), so it acts on the newest version the grid holds. Writes to one file
from one MutableClient are serialised by a per-storage-index lock; writes
from elsewhere are caught by the test-and-set writes (UncoordinatedWriteError).

A modify of a file this client itself last published starts from that
version (shoal.mutable.own_versions: contents, keys and where each share
went), or from a read's map made just before, so it costs only the
test-and-set writes; if anyone wrote the file since, the servers refuse
those writes and it goes on as below. Such a start is tentative: when the
edit refuses the remembered contents (raises) or leaves them unchanged, that
is decided again on the current version, from a fresh map.

modify() re-reads and retries after an uncoordinated write (so a modifier
may be called more than once, each time with the contents it should change).
When the race left no recoverable version as new as the one we had written
(each writer won on some servers), it republishes its own last contents
instead of building on an older version, so its change cannot be lost (and
when its raced write is the best version, it does not apply the change
again, it only settles the servers that refused it); when
several versions share the highest seqnum it republishes even if the
modifier has nothing to add, so the grid converges on one version.

MDMF update(offset, data) re-encodes only the segments the write touches,
keeping every share's other block hashes (Tahoe's in-place update): it reads
at most the first and last touched segments, and holds the new data's
encoding. It needs all N shares of the current version in the server map;
otherwise, and for SDMF, it rewrites the whole file.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from twisted.internet import defer
from twisted.internet import reactor as _reactor

from shoal import cpu
from shoal.caps.ssk import (
    MDMFReadCap,
    MDMFVerifierCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKVerifierCap,
    SSKWriteCap,
)
from shoal.encoding.base32 import b2a
from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import (
    MDMF_VERSION,
    SDMF_VERSION,
    SignedPrefix,
    unpack_hashes,
    unpack_share_hash_chain,
)
from shoal.grid.storage_client import ServerError
from shoal.mutable import remote
from shoal.mutable.decoder import ShareCheckError, check_block_tree_root
from shoal.mutable.encoder import WriteKeys, encode_update, encode_version, tree_leaves
from shoal.mutable.errors import (
    MutableUsageError,
    NotEnoughSharesError,
    ReadOnlyError,
    UncoordinatedWriteError,
    VersionChangedError,
)
from shoal.mutable.retrieve import Retriever
from shoal.mutable.servermap import (
    MODE_READ,
    MODE_WRITE,
    ServerMap,
    find_private_key,
    update_servermap,
)

if TYPE_CHECKING:
    from shoal.mutable.client import MutableClient

reactor: Any = _reactor
MutableCap = SSKWriteCap | SSKReadCap | SSKVerifierCap | MDMFWriteCap | MDMFReadCap | MDMFVerifierCap
MAX_MODIFY_ATTEMPTS = 8
REUSE_MAP_SECONDS = 5.0  # how old a read's map a modify may write from


def _sleep(seconds: float) -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class MutableFileNode:
    """One mutable file, as far as its cap allows. It answers what every node of
    shoal.dirnode.NodeMaker answers (kind, caps, format, sizes, read)."""

    kind: ClassVar[str] = "file"

    def __init__(self, client: MutableClient, cap: MutableCap) -> None:
        self._client = client
        self.cap = cap
        self.readonly_cap = cap.readonly()
        self.verifier_cap = cap.verifier()
        self.storage_index: bytes = cap.storage_index
        self.fingerprint: bytes = cap.fingerprint
        self.format = cap.format
        self._version = MDMF_VERSION if self.format == "MDMF" else SDMF_VERSION
        self._writekey: bytes | None = cap.writekey if isinstance(cap, (SSKWriteCap, MDMFWriteCap)) else None
        self._readkey: bytes | None = (
            None if isinstance(cap, (SSKVerifierCap, MDMFVerifierCap)) else cap.readkey  # type: ignore[union-attr]
        )
        self._keys: WriteKeys | None = None
        # the last read's map when it found every share of one version (a modify may write from it)
        # (when, publishes then, servers connected then, map)
        self._last_map: tuple[float, int, frozenset[bytes], ServerMap] | None = None

    def __repr__(self) -> str:
        return f"<MutableFileNode {self.format} {self.verifier_cap!r}>"

    def is_readonly(self) -> bool:
        return self._writekey is None

    def is_mutable(self) -> bool:
        return True

    # -- reading --

    async def servermap(self, mode: str = MODE_READ) -> ServerMap:
        return await self._map(mode, self._writekey)

    async def _map(self, mode: str, writekey: bytes | None) -> ServerMap:
        hints = self._client.share_hints
        smap = await update_servermap(
            self._client.broker, self.storage_index, self.fingerprint, mode=mode,
            batch=self._client.n, writekey=writekey, hints=hints.get(self.storage_index),
            read_size=hints.read_size(self.storage_index),
        )
        hints.from_map(self.storage_index, smap)
        return smap

    def _need_readkey(self) -> bytes:
        if self._readkey is None:
            raise MutableUsageError(f"{self!r}: a verify cap cannot read the file's contents")
        return self._readkey

    async def _best(self, mode: str = MODE_READ) -> tuple[ServerMap, SignedPrefix]:
        smap = await self.servermap(mode)
        best = smap.best_recoverable_version()
        if best is None:
            raise NotEnoughSharesError(_no_version(self, smap))
        if self._writekey is not None and _complete(smap, best):
            self._last_map = (reactor.seconds(), self._client.share_hints.publishes(self.storage_index),
                              self._connected(), smap)
        return smap, best

    async def read(
        self, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None,
        on_version: Callable[[SignedPrefix], None] | None = None,
    ) -> None:
        """Write the bytes of the newest version; on_version(version) is called before
        its first byte (again if the read restarts on a newer version)."""
        readkey = self._need_readkey()
        for attempt in range(3):
            smap, best = await self._best()
            if on_version is not None:
                on_version(best)
            retriever = Retriever(smap, best, self.storage_index, readkey)
            try:
                await retriever.read(write, offset, length)
                return
            except NotEnoughSharesError:
                # a writer replaced the shares under us: start again on the new
                # version, unless bytes of the old one went out already
                if not retriever.changed or attempt == 2:
                    raise
                if retriever.written:
                    raise UncoordinatedWriteError(
                        f"{self!r} was rewritten while it was being read "
                        f"(after {retriever.written} bytes); read it again"
                    ) from None

    async def best_readable_version(self) -> MutableVersion:
        """The newest recoverable version, mapped once: its size and tag, and a
        read that uses the same server map (the bytes the map read are reused,
        so a small file is read in the map's one round trip)."""
        smap, best = await self._best()
        return MutableVersion(self, smap, best)

    async def download_best_version(self) -> bytes:
        parts: list[bytes] = []
        await self.read(parts.append)
        return b"".join(parts)

    async def get_size_of_best_version(self) -> int:
        _, best = await self._best()
        return best.data_length

    def get_size(self) -> None:
        """Unknown without asking the grid (shoal caches no version)."""
        return None

    async def get_current_size(self) -> int:
        """The size of the newest recoverable version."""
        return await self.get_size_of_best_version()

    async def _read_version(self, smap: ServerMap, version: SignedPrefix, offset: int = 0,
                            length: int | None = None) -> bytes:
        parts: list[bytes] = []
        await Retriever(smap, version, self.storage_index, self._need_readkey()).read(parts.append, offset, length)
        return b"".join(parts)

    # -- writing --

    def _need_writekey(self) -> bytes:
        if self._writekey is None:
            raise ReadOnlyError(f"{self!r} was opened from a read-only cap: it cannot be written")
        return self._writekey

    def _write_keys(self, smap: ServerMap) -> WriteKeys:
        if self._keys is None:
            if smap.private_key is None:
                raise NotEnoughSharesError(
                    f"{self!r}: no share with a good encrypted private key was found; "
                    + _no_version(self, smap)
                )
            self._keys = WriteKeys.from_private_key(smap.private_key)
        return self._keys

    async def _write_map(self) -> ServerMap:
        return await self._map(MODE_WRITE, None if self._keys is not None else self._writekey)

    async def _publish(self, contents: bytes, smap: ServerMap) -> SignedPrefix:
        keys = self._write_keys(smap)
        best = smap.best_recoverable_version() or smap.newest_version()
        k, n = (best.k, best.n) if best is not None else (self._client.k, self._client.n)
        encoded = await cpu.run(
            encode_version, contents, version=self._version, seqnum=smap.highest_seqnum() + 1,
            k=k, n=n, keys=keys, max_segment_size=self._client.mdmf_segment_size,
        )
        await self._client.publish(self.storage_index, smap, keys, encoded, contents)
        return encoded.prefix

    async def overwrite(self, contents: bytes) -> SignedPrefix:
        """Replace the contents (a new version, seqnum one above any seen); the new version."""
        self._need_writekey()
        async with self._client.lock(self.storage_index):
            return await self._publish(bytes(contents), await self._write_map())

    async def overwrite_if(self, contents: bytes, expected: str) -> SignedPrefix:
        """Compare-and-swap: replace the contents only if the current version's tag
        (version_tag) is `expected` ("*": any version); else VersionChangedError. A
        writer elsewhere that wins the servers' test-and-set meanwhile also makes
        this a VersionChangedError, so two conditional writers from one version
        never both succeed."""
        self._need_writekey()
        want = normalize_tag(expected)
        async with self._client.lock(self.storage_index):
            smap = await self._write_map()
            best = smap.best_recoverable_version()
            current = version_tag(best) if best is not None else None
            if current is None or (want != "*" and normalize_tag(current) != want):
                raise VersionChangedError(f"{self!r}: the current version is {current or 'none'}, not {expected}")
            try:
                return await self._publish(bytes(contents), smap)
            except UncoordinatedWriteError as e:
                raise VersionChangedError(f"{self!r}: another writer replaced version {current}: {e}") from None

    async def modify(self, modifier: Callable[[bytes], bytes | None]) -> None:
        """Read-modify-write; re-reads and retries after an uncoordinated write."""
        await self.edit(lambda old, retry: modifier(old))

    async def edit(self, edit: Callable[[bytes, bool], bytes | None]) -> None:
        """As modify, with `edit(contents, retry)`: retry is true once an earlier
        attempt of this edit was written and refused by some server (so it may have
        landed on others); a call on contents that turn out stale is not one."""
        self._need_writekey()
        async with self._client.lock(self.storage_index):
            await self._modify_locked(edit)

    async def _tentative(self, edit: Callable[[bytes, bool], bytes | None]) -> tuple[ServerMap, bytes] | None:
        """A start that asks the servers nothing: the version this client published
        last, or a read's recent map. (map, new contents) when the edit
        changes them; None (ask the servers) when there is no such start or the
        edit refuses or leaves them as they are, which only the current version
        may decide."""
        own = self._client.own_versions.get(self.storage_index, self._connected())
        if own is not None:
            self._keys = own.keys
            smap, current = own.smap, own.contents
        else:
            recent = await self._recent_map()
            if recent is None:
                return None
            best = recent.best_recoverable_version()
            if best is None:
                return None
            smap, current = recent, await self._read_version(recent, best)
        try:
            new = edit(current, False)
        except Exception:  # noqa: BLE001 - decided again on the current version
            return None
        if new is None or new == current:
            return None
        return smap, new

    async def _modify_locked(self, edit: Callable[[bytes, bool], bytes | None]) -> None:
        ours: tuple[int, bytes] | None = None  # (seqnum, contents) of our last raced write
        last_error: UncoordinatedWriteError | None = None
        for attempt in range(MAX_MODIFY_ATTEMPTS):
            start = await self._tentative(edit) if attempt == 0 else None
            if start is not None:
                # every share is still written with a test of the checkstring that start saw
                smap, changed = start
                top = smap.highest_seqnum()
            else:
                smap = await self._write_map()
                best = smap.best_recoverable_version()
                top = smap.highest_seqnum()
                if ours is not None and (best is None or best.seqnum < ours[0]):
                    # neither raced version survived whole: ours already holds our change
                    changed = ours[1]
                elif best is None:
                    raise NotEnoughSharesError(_no_version(self, smap))
                else:
                    current = await self._read_version(smap, best)
                    contested = len([v for v in smap.versions() if v.seqnum == top]) > 1
                    if ours is not None and (best.seqnum, current) == ours:
                        # our raced write is the best version: our change is in (do not apply
                        # it twice); settle the servers that refused it on that version
                        if _complete(smap, best):
                            return
                        changed = current
                    else:
                        heal = ours is not None and (contested or best.seqnum < top)
                        edited = edit(current, ours is not None)
                        if edited is None or edited == current:
                            if not heal:
                                return
                            edited = current  # settle the grid on one version
                        changed = edited
            try:
                await self._publish(bytes(changed), smap)
                return
            except UncoordinatedWriteError as e:
                # someone else wrote it since: ask the servers again (a partial write is healed there)
                last_error = e
                ours = (top + 1, bytes(changed))
            if start is None:
                await _sleep(random.uniform(0.05, 0.3) * (attempt + 1))
        assert last_error is not None
        raise last_error

    def _connected(self) -> frozenset[bytes]:
        return frozenset(s.server_id for s in self._client.broker.get_servers_for_psi(self.storage_index))

    async def _recent_map(self) -> ServerMap | None:
        """The map of a read made just before (REUSE_MAP_SECONDS), if it found all N
        shares of one version and nothing newer, with the private key at hand, and
        this client has not written the file since: a modify may write from it. Every share is still written with a test of the
        checkstring that map saw, so a change since makes the write fail
        (UncoordinatedWriteError) and modify retries on a fresh MODE_WRITE map."""
        last, self._last_map = self._last_map, None
        if last is None:
            return None
        when, publishes, servers, smap = last
        if reactor.seconds() - when > REUSE_MAP_SECONDS:
            return None
        if publishes != self._client.share_hints.publishes(self.storage_index):
            return None  # this client wrote the file since
        if not self._connected() <= servers:
            return None  # a server came back since: it may hold an older share to overwrite
        if self._keys is None:
            assert self._writekey is not None
            await find_private_key(smap, self.storage_index, self._writekey)
            if smap.private_key is None:
                return None
        return smap

    async def update(self, offset: int, data: bytes) -> None:
        """Write data at offset (offset <= size; the file may grow)."""
        self._need_writekey()
        if offset < 0:
            raise MutableUsageError(f"update offset {offset} is negative")
        data = bytes(data)
        if self._version == SDMF_VERSION:
            await self.modify(_splicer(offset, data))
            return
        async with self._client.lock(self.storage_index):
            smap = await self._write_map()
            best = smap.best_recoverable_version()
            if best is None:
                raise NotEnoughSharesError(_no_version(self, smap))
            if offset > best.data_length:
                raise MutableUsageError(
                    f"update at offset {offset} is past the end of the file ({best.data_length} bytes)"
                )
            if not data:
                return
            if not await self._update_in_place(smap, best, offset, data):
                current = await self._read_version(smap, best)
                await self._publish(_splicer(offset, data)(current) or current, smap)

    async def _old_leaves(self, smap: ServerMap, best: SignedPrefix) -> dict[int, list[bytes]] | None:
        """Every share's proven block hash tree leaves, or None if some share is missing or bad."""
        by_sh = smap.shares_of(best)
        if len(by_sh) < best.n:
            return None

        async def one(shnum: int) -> list[bytes] | None:
            for info in by_sh[shnum]:
                o = info.offsets
                spans = [o.span("share_hash_chain"), o.span("block_hash_tree")]
                try:
                    if all(info.covers(*s) for s in spans):
                        raw = [info.data[s: s + n] for s, n in spans]
                    else:
                        got = await remote.readv(info.server, self.storage_index, [shnum], spans)
                        raw = got.get(shnum, [])
                        if len(raw) != 2:
                            continue
                    tree = unpack_hashes(raw[1])
                    check_block_tree_root(best, shnum, unpack_share_hash_chain(raw[0]), tree)
                    return tree_leaves(tree, best.num_segments)
                except (ServerError, ShareCheckError, FormatError):
                    continue
            return None

        results = await defer.gatherResults(
            [defer.ensureDeferred(one(sh)) for sh in range(best.n)], consumeErrors=True
        )
        if any(r is None for r in results):
            return None
        return {sh: r for sh, r in enumerate(results) if r is not None}

    async def _update_in_place(self, smap: ServerMap, best: SignedPrefix, offset: int, data: bytes) -> bool:
        if smap.highest_seqnum() != best.seqnum:
            return False
        keys = self._write_keys(smap)
        leaves = await self._old_leaves(smap, best)
        if leaves is None:
            return False
        segsize = best.segment_size
        old_len = best.data_length
        end = offset + len(data)
        new_len = max(old_len, end)
        first, last = offset // segsize, (end - 1) // segsize
        segments: dict[int, bytes] = {}
        for segnum in range(first, last + 1):
            seg_start = segnum * segsize
            seg_end = min(seg_start + segsize, new_len)
            lo, hi = max(offset, seg_start), min(end, seg_end)
            if lo == seg_start and hi == seg_end:
                segments[segnum] = data[lo - offset: hi - offset]
                continue
            old = b""
            if seg_start < old_len:
                old = await self._read_version(smap, best, seg_start, min(seg_end, old_len) - seg_start)
            piece = bytearray(old.ljust(seg_end - seg_start, b"\x00"))
            piece[lo - seg_start: hi - seg_start] = data[lo - offset: hi - offset]
            segments[segnum] = bytes(piece)
        encoded = await cpu.run(
            encode_update, best, leaves, segments, data_length=new_len,
            seqnum=best.seqnum + 1, keys=keys,
        )
        wanted = {(i.server.server_id, sh) for sh, infos in smap.shares_of(best).items() for i in infos}
        await self._client.publish(self.storage_index, smap, keys, encoded, None, only_shares=wanted)
        return True


class MutableVersion:
    """One version of a mutable file, as one server map found it."""

    def __init__(self, node: MutableFileNode, smap: ServerMap, version: SignedPrefix) -> None:
        self.node = node
        self.servermap = smap
        self.version = version

    @property
    def size(self) -> int:
        return self.version.data_length

    @property
    def tag(self) -> str:
        return version_tag(self.version)

    async def read(self, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None) -> None:
        """Write bytes of this version (every one checked); UncoordinatedWriteError if a
        writer replaced it meanwhile, so that fewer than k of its shares are left."""
        node = self.node
        retriever = Retriever(self.servermap, self.version, node.storage_index, node._need_readkey())
        try:
            await retriever.read(write, offset, length)
        except NotEnoughSharesError:
            if not retriever.changed:
                raise
            raise UncoordinatedWriteError(
                f"{node!r} was rewritten while it was being read (after {retriever.written} bytes); read it again"
            ) from None


def _complete(smap: ServerMap, best: SignedPrefix) -> bool:
    """Whether the map saw all N shares of `best`, no other version and no bad share."""
    return (len(smap.versions()) == 1 and not smap.bad_shares and not smap.server_errors
            and len(smap.shares_of(best)) == best.n)


def version_tag(version: SignedPrefix) -> str:
    """A version's entity tag (quoted, as in an HTTP ETag): seqnum and root hash,
    which together name one version of one file."""
    return f'"{version.seqnum}-{b2a(version.root_hash)}"'


def normalize_tag(tag: str) -> str:
    """A tag without its quotes or weak prefix, for comparing."""
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def _splicer(offset: int, data: bytes) -> Callable[[bytes], bytes | None]:
    def splice(old: bytes) -> bytes | None:
        if offset > len(old):
            raise MutableUsageError(f"update at offset {offset} is past the end of the file ({len(old)} bytes)")
        new = old[:offset] + data + old[offset + len(data):]
        return None if new == old else new

    return splice


def _no_version(node: MutableFileNode, smap: ServerMap) -> str:
    problems = smap.problems()
    found = f"{len(smap.shares)} good shares in {len(smap.versions())} versions"
    return (
        f"no recoverable version of {node.verifier_cap.to_string()}: {found}, "
        f"{len(smap.servers_queried)} servers answered"
        + (f"; problems: {'; '.join(problems[:5])}" if problems else "")
    )
