"""Reading one version of a mutable file from the servers that hold it (Tahoe's Retrieve).

k shares of the chosen version are read in parallel, a window of segments
at a time (so memory stays a few segments whatever the file size); only
the segments that overlap the wanted range are fetched. Before any byte is
decoded each share's block hash tree root is proven through its share
hash chain against the signed root hash, and each block (MDMF: salt ||
block) against that tree. A share that fails a check, or whose server
fails, is dropped (and reported to its server as corrupt when it lied) and
another share of the same version takes its place; with fewer than k good
shares the read fails with NotEnoughSharesError, having written nothing
that was not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from shoal import cpu
from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import (
    SALT_SIZE,
    SDMF_VERSION,
    MDMFGeometry,
    SignedPrefix,
    unpack_hashes,
    unpack_share_hash_chain,
)
from shoal.grid.storage_client import ServerError
from shoal.mutable import remote
from shoal.mutable.decoder import (
    ShareCheckError,
    check_block,
    check_block_tree_root,
    decode_segment,
)
from shoal.mutable.errors import NotEnoughSharesError
from shoal.mutable.servermap import BadShare, ServerMap, ShareInfo

_log = Logger()
WINDOW_BYTES = 512 * 1024  # plaintext per window of segments fetched together


class ShareChanged(ServerError):
    """The share now holds another version (a writer replaced it while we read)."""


class _Share:
    """One share being read: its proven block hash tree, then blocks on demand."""

    def __init__(self, info: ShareInfo, storage_index: bytes) -> None:
        self.info = info
        self.si = storage_index
        self.prefix = info.prefix
        self.tree: list[bytes] | None = None

    @property
    def name(self) -> str:
        return f"share {self.info.shnum} on server {self.info.server.name}"

    async def _read(self, spans: list[tuple[int, int]]) -> list[bytes]:
        info = self.info
        if all(info.covers(s, n) for s, n in spans):
            return [info.data[s: s + n] for s, n in spans]
        # the checkstring comes along, to tell a replaced share from a corrupt one
        cs = info.checkstring
        answer = await remote.readv(info.server, self.si, [info.shnum], [(0, len(cs)), *spans])
        got = answer.get(info.shnum)
        if not got or len(got) != len(spans) + 1 or got[0] != cs:
            raise ShareChanged(info.server.name, "slot_readv",
                               f"share {info.shnum} was replaced by another version while we read it")
        return list(got[1:])

    def _prove_tree(self, chain_raw: bytes, tree_raw: bytes) -> list[bytes]:
        try:
            chain = unpack_share_hash_chain(chain_raw)
            tree = unpack_hashes(tree_raw)
        except FormatError as e:
            raise ShareCheckError(str(e)) from None
        check_block_tree_root(self.prefix, self.info.shnum, chain, tree)
        self.tree = tree
        return tree

    def spans(self, segnums: list[int]) -> list[tuple[int, int]]:
        p = self.prefix
        if p.version == SDMF_VERSION:
            return [self.info.offsets.span("share_data")]
        geo = MDMFGeometry(p.k, p.segment_size, p.data_length)
        return [(geo.block_offset(s), geo.block_length(s)) for s in segnums]

    async def blocks(self, segnums: list[int]) -> dict[int, tuple[bytes, bytes]]:
        """Checked (salt, block) of each segment (the block hash tree, proven
        first, comes in the same read when it is not yet in hand)."""
        o = self.info.offsets
        tree_spans = [] if self.tree is not None else [o.span("share_hash_chain"), o.span("block_hash_tree")]
        raw = await self._read(tree_spans + self.spans(segnums))
        tree = self.tree if self.tree is not None else self._prove_tree(raw[0], raw[1])
        raw = raw[len(tree_spans):]
        out = {}
        for segnum, chunk in zip(segnums, raw, strict=True):
            if self.prefix.version == SDMF_VERSION:
                salt, block = self.prefix.salt or b"", chunk
            else:
                salt, block = chunk[:SALT_SIZE], chunk[SALT_SIZE:]
            check_block(self.prefix, tree, segnum, salt, block)
            out[segnum] = (salt, block)
        return out


async def _advise_corrupt(share: _Share, reason: str) -> None:
    await remote.advise_corrupt(share.info.server, share.si, share.info.shnum, reason)


class Retriever:
    """Reads ranges of one version."""

    def __init__(
        self, smap: ServerMap, version: SignedPrefix, storage_index: bytes, readkey: bytes
    ) -> None:
        self.smap = smap
        self.version = version
        self.si = storage_index
        self.readkey = readkey
        by_sh = smap.shares_of(version)
        # candidates: prefer shares whose bytes are already in hand, then ring order
        self._pool: list[ShareInfo] = sorted(
            (i for infos in by_sh.values() for i in infos),
            key=lambda i: (not i.covers(*i.offsets.span("enc_privkey")), i.shnum),
        )
        self._active: dict[int, _Share] = {}
        self._used: set[tuple[bytes, int]] = set()
        self.problems: list[str] = []
        self.changed = False  # some share was replaced by a newer version mid-read
        self.written = 0  # bytes handed to the consumer

    def _refill(self) -> None:
        busy_servers = {s.info.server.server_id for s in self._active.values()}
        for prefer_new_server in (True, False):
            for info in self._pool:
                if len(self._active) >= self.version.k:
                    return
                key = (info.server.server_id, info.shnum)
                if key in self._used or info.shnum in self._active:
                    continue
                if prefer_new_server and info.server.server_id in busy_servers:
                    continue
                self._used.add(key)
                self._active[info.shnum] = _Share(info, self.si)
                busy_servers.add(info.server.server_id)

    def _drop(self, share: _Share, error: Exception) -> None:
        self._active.pop(share.info.shnum, None)
        if isinstance(error, ShareChanged):
            self.changed = True
        text = f"{share.name}: {error}"
        self.problems.append(text)
        _log.info("mutable read: dropping {text}", text=text)
        if isinstance(error, ShareCheckError):
            self.smap.bad_shares[(share.info.server.server_id, share.info.shnum)] = BadShare(
                share.info.server, share.info.shnum, share.info.data[:57], str(error)
            )
            self.smap.shares.pop((share.info.server.server_id, share.info.shnum), None)
            defer.ensureDeferred(_advise_corrupt(share, str(error)))

    async def _window(self, segnums: list[int]) -> dict[int, dict[int, tuple[bytes, bytes]]]:
        """shnum -> segnum -> (salt, block) from k good shares."""
        got: dict[int, dict[int, tuple[bytes, bytes]]] = {}
        while True:
            self._refill()
            todo = [s for sh, s in self._active.items() if sh not in got]
            if len(got) >= self.version.k:
                return got
            if not todo:
                raise NotEnoughSharesError(
                    f"seqnum {self.version.seqnum}: only {len(got)} good shares of the "
                    f"{self.version.k} needed; problems: {'; '.join(self.problems) or 'no shares found'}"
                )
            results: list[Any] = await defer.DeferredList(
                [defer.ensureDeferred(s.blocks(segnums)) for s in todo], consumeErrors=True
            )
            for share, (ok, value) in zip(todo, results, strict=True):
                if ok:
                    got[share.info.shnum] = value
                else:
                    err = value.value
                    if not isinstance(err, (ShareCheckError, ServerError)):
                        value.raiseException()
                    self._drop(share, err)

    async def read(
        self, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None
    ) -> None:
        v = self.version
        size = v.data_length
        offset = max(0, min(offset, size))
        end = size if length is None else min(size, offset + max(0, length))
        if end <= offset:
            return
        segsize = v.segment_size
        first, last = offset // segsize, (end - 1) // segsize
        per_window = max(1, WINDOW_BYTES // segsize)
        segnum = first
        while segnum <= last:
            segnums = list(range(segnum, min(last, segnum + per_window - 1) + 1))
            got = await self._window(segnums)
            for s in segnums:
                blocks = {sh: got[sh][s][1] for sh in list(got)[: v.k]}
                salt = next(iter(got.values()))[s][0]
                plain = await cpu.run(decode_segment, v, self.readkey, s, salt, blocks)
                start = s * segsize
                lo, hi = max(offset, start) - start, min(end, start + len(plain)) - start
                self.written += hi - lo
                result = write(plain[lo:hi])
                if isinstance(result, defer.Deferred):
                    await result
            segnum = segnums[-1] + 1
