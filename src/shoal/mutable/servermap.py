"""Finding a mutable file's shares: the server map (Tahoe-LAFS 1.20's servermap update).

Servers are asked in permuted-ring order, a batch of N at a time, for the
first INITIAL_READ bytes of every share they hold (one slot_readv each). A
share counts only once its verification key matches the cap's fingerprint
and its signature verifies; anything else is a *bad share* (remembered with
its current leading bytes so a writer can replace it with a test-and-set).
A *version* is a signed prefix (seqnum, root hash, IV, k, N, sizes).

Modes, as in Tahoe: MODE_READ stops once the newest version seen is
recoverable (k distinct shares); MODE_ANYTHING once any version is;
MODE_WRITE, MODE_CHECK and MODE_REPAIR go on until a whole batch finds no
share (so a writer finds every share it must update); MODE_WRITE and
MODE_REPAIR also fetch and check the encrypted private key when a writekey
is known. The best version is the recoverable one with the highest
(seqnum, root hash): an old version served by some servers (a rollback)
loses to a newer one as soon as k good shares of it answer.

Share hints (which shares this client last saw on which servers, see
ShareHints) save a round trip where listing a slot's shares is a request of
its own (Tahoe's HTTP storage API): MODE_READ and MODE_ANYTHING first ask
only the hinted servers for the hinted shares, and fall back to the full
search when that does not satisfy the mode; MODE_WRITE, MODE_CHECK and
MODE_REPAIR read the hinted shares and list each server's shares in the
same round, then read any share the list adds, so they still find every
share. A hint only picks what to ask first: every share is checked the same.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Mapping
from typing import Any

import attrs
from twisted.internet import defer

from shoal.crypto import rsa
from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import (
    Offsets,
    SignedPrefix,
    checkstring_size,
    field,
    unpack_header,
)
from shoal.grid.storage_client import ServerError
from shoal.mutable import remote
from shoal.mutable.decoder import (
    ShareCheckError,
    check_signature,
    check_verification_key,
    decrypt_private_key,
)

MODE_CHECK = "MODE_CHECK"  # query every server (until a batch finds nothing)
MODE_ANYTHING = "MODE_ANYTHING"  # one recoverable version is enough
MODE_WRITE = "MODE_WRITE"  # find every share, and the private key
MODE_READ = "MODE_READ"  # the newest recoverable version
MODE_REPAIR = "MODE_REPAIR"  # as MODE_CHECK, and the private key
MODES = (MODE_CHECK, MODE_ANYTHING, MODE_WRITE, MODE_READ, MODE_REPAIR)

INITIAL_READ = 4096  # covers a small SDMF share whole, and an MDMF share's fields up to its data
MAX_HINTED_READ = 32 * 1024  # the most of each share a hinted first read asks for
Hints = Mapping[bytes, frozenset[int]]  # server id -> share numbers last seen there


class ShareHints:
    """Where this client last saw each file's shares (a bounded LRU by storage index)."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._by_si: OrderedDict[bytes, dict[bytes, frozenset[int]]] = OrderedDict()
        self._sizes: dict[bytes, int] = {}  # storage index -> bytes of a share a read needs
        self._publishes: dict[bytes, int] = {}  # storage index -> publishes this client made

    def publishes(self, storage_index: bytes) -> int:
        """How many times this client published the file (while it is remembered)."""
        return self._publishes.get(storage_index, 0)

    def get(self, storage_index: bytes) -> Hints | None:
        hints = self._by_si.get(storage_index)
        if hints is not None:
            self._by_si.move_to_end(storage_index)
        return hints

    def read_size(self, storage_index: bytes) -> int:
        """How much of each share the first read should ask for: the whole share
        of the last version seen (a writer also needs the private key), within
        INITIAL_READ..MAX_HINTED_READ."""
        return max(INITIAL_READ, min(MAX_HINTED_READ, self._sizes.get(storage_index, 0)))

    def put(self, storage_index: bytes, hints: Mapping[bytes, frozenset[int]], read_size: int | None = None) -> None:
        if read_size is not None:
            self._sizes[storage_index] = read_size
        if not hints:
            self._by_si.pop(storage_index, None)
            self._sizes.pop(storage_index, None)
            return
        self._by_si[storage_index] = dict(hints)
        self._by_si.move_to_end(storage_index)
        while len(self._by_si) > self.capacity:
            old, _ = self._by_si.popitem(last=False)
            self._sizes.pop(old, None)
            self._publishes.pop(old, None)

    def from_map(self, storage_index: bytes, smap: ServerMap) -> None:
        """Remember the shares a server map found (good ones and bad ones)."""
        found: dict[bytes, set[int]] = defaultdict(set)
        for sid, shnum in (*smap.shares, *smap.bad_shares):
            found[sid].add(shnum)
        best = smap.best_recoverable_version()
        sizes = [i.offsets.eof for i in smap.shares.values() if i.prefix == best]
        self.put(storage_index, {sid: frozenset(shs) for sid, shs in found.items()},
                 max(sizes) if sizes else None)

    def from_placement(
        self, storage_index: bytes, placed: Mapping[int, set[bytes]], read_size: int | None = None
    ) -> None:
        """Add the shares a publish placed (and what a reader needs of each)."""
        self._publishes[storage_index] = self._publishes.get(storage_index, 0) + 1
        old = self._by_si.get(storage_index, {})
        found: dict[bytes, set[int]] = defaultdict(set, {sid: set(shs) for sid, shs in old.items()})
        for shnum, sids in placed.items():
            for sid in sids:
                found[sid].add(shnum)
        self.put(storage_index, {sid: frozenset(shs) for sid, shs in found.items()}, read_size)


@attrs.define
class ShareInfo:
    """One good share: where it is, which version, and the bytes read so far."""

    server: Any  # GridServer
    shnum: int
    prefix: SignedPrefix
    offsets: Offsets
    data: bytes  # the share's first bytes, as read

    @property
    def checkstring(self) -> bytes:
        return self.data[: checkstring_size(self.prefix.version)]

    def covers(self, start: int, length: int) -> bool:
        return start + length <= len(self.data)


@attrs.define
class BadShare:
    server: Any
    shnum: int
    checkstring: bytes  # the leading bytes it had (a writer tests them)
    reason: str


class ServerMap:
    """What the servers hold of one mutable file, as last seen."""

    def __init__(self, mode: str = MODE_READ) -> None:
        self.mode = mode
        self.shares: dict[tuple[bytes, int], ShareInfo] = {}
        self.bad_shares: dict[tuple[bytes, int], BadShare] = {}
        self.servers_queried: dict[bytes, Any] = {}  # server id -> server (answered)
        self.server_errors: dict[bytes, str] = {}  # server id -> what went wrong
        self.servers_without_shares: set[bytes] = set()
        self.private_key: rsa.PrivateKey | None = None

    # -- versions --

    def versions(self) -> dict[SignedPrefix, dict[int, list[ShareInfo]]]:
        out: dict[SignedPrefix, dict[int, list[ShareInfo]]] = defaultdict(lambda: defaultdict(list))
        for info in self.shares.values():
            out[info.prefix][info.shnum].append(info)
        return {v: dict(by_sh) for v, by_sh in out.items()}

    def recoverable_versions(self) -> list[SignedPrefix]:
        return sorted(
            (v for v, by_sh in self.versions().items() if len(by_sh) >= v.k),
            key=lambda v: (v.seqnum, v.root_hash),
        )

    def unrecoverable_versions(self) -> list[SignedPrefix]:
        rec = set(self.recoverable_versions())
        return sorted((v for v in self.versions() if v not in rec), key=lambda v: (v.seqnum, v.root_hash))

    def best_recoverable_version(self) -> SignedPrefix | None:
        rec = self.recoverable_versions()
        return rec[-1] if rec else None

    def newest_version(self) -> SignedPrefix | None:
        vs = sorted(self.versions(), key=lambda v: (v.seqnum, v.root_hash))
        return vs[-1] if vs else None

    def highest_seqnum(self) -> int:
        return max((info.prefix.seqnum for info in self.shares.values()), default=0)

    def shares_of(self, version: SignedPrefix) -> dict[int, list[ShareInfo]]:
        return self.versions().get(version, {})

    def shares_on(self, server_id: bytes) -> list[ShareInfo]:
        return [info for (sid, _), info in self.shares.items() if sid == server_id]

    def is_recoverable(self) -> bool:
        return bool(self.recoverable_versions())

    def problems(self) -> list[str]:
        return [f"server {sid!r}: {why}" for sid, why in self.server_errors.items()] + [
            f"share {b.shnum} on server {b.server.name}: {b.reason}" for b in self.bad_shares.values()
        ]

    def __repr__(self) -> str:
        return (
            f"<ServerMap {self.mode}: {len(self.shares)} shares in {len(self.versions())} versions, "
            f"{len(self.bad_shares)} bad, {len(self.server_errors)} server errors>"
        )


class _Checker:
    """Checks shares against the cap (caching what repeats across shares)."""

    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint
        self._keys: dict[bytes, rsa.PublicKey] = {}
        self._signed: set[tuple[bytes, bytes]] = set()

    def check(self, data: bytes) -> tuple[SignedPrefix, Offsets]:
        try:
            prefix, offsets = unpack_header(data)
            vk = field(data, offsets, "verification_key")
            signature = field(data, offsets, "signature")
        except FormatError as e:
            raise ShareCheckError(str(e)) from None
        key = self._keys.get(vk)
        if key is None:
            key = check_verification_key(vk, self.fingerprint)
            self._keys[vk] = key
        signed = (prefix.signable(), signature)
        if signed not in self._signed:
            check_signature(key, prefix, signature)
            self._signed.add(signed)
        return prefix, offsets


def _stop(smap: ServerMap, mode: str, found_in_batch: int) -> bool:
    if mode == MODE_ANYTHING:
        return smap.is_recoverable()
    if mode == MODE_READ:
        newest = smap.newest_version()
        return newest is not None and newest == smap.best_recoverable_version()
    return found_in_batch == 0


async def update_servermap(
    broker: Any,
    storage_index: bytes,
    fingerprint: bytes,
    *,
    mode: str = MODE_READ,
    batch: int = 10,
    writekey: bytes | None = None,
    hints: Hints | None = None,
    read_size: int = INITIAL_READ,
) -> ServerMap:
    """A fresh ServerMap of the file with this storage index, in `mode` (hints:
    the shares last seen on each server, asked first; read_size: how much of
    each share to read at first, INITIAL_READ..MAX_HINTED_READ)."""
    if mode not in MODES:
        raise ValueError(f"unknown servermap mode {mode!r}")
    smap = ServerMap(mode)
    checker = _Checker(fingerprint)
    servers = list(broker.get_servers_for_psi(storage_index))
    length = max(INITIAL_READ, min(MAX_HINTED_READ, read_size))
    hinted = [(s, sorted(hints[s.server_id])) for s in servers if hints and hints.get(s.server_id)]
    known: dict[Any, list[int]] = {}
    first_batch = {s.server_id for s in servers[: max(1, batch)]}
    covered = first_batch <= {s.server_id for s, _ in hinted}
    # hinted-only first round: only when every server of the first batch held shares
    # (else a server that was away when we last looked may hold a newer version)
    if hinted and covered and mode in (MODE_READ, MODE_ANYTHING):
        await defer.gatherResults(
            [defer.ensureDeferred(_query(smap, checker, s, storage_index, shnums, length))
             for s, shnums in hinted],
            consumeErrors=True,
        )
        if _stop(smap, mode, len(smap.shares) + len(smap.bad_shares)):
            servers = []
        else:  # not enough where we last saw it: search as without hints
            smap = ServerMap(mode)
    if hinted and mode not in (MODE_READ, MODE_ANYTHING):
        known = dict(hinted)
    pos = 0
    while pos < len(servers):
        group = servers[pos: pos + max(1, batch)]
        pos += len(group)
        before = len(smap.shares) + len(smap.bad_shares)
        await defer.gatherResults(
            [defer.ensureDeferred(_query_listing(smap, checker, s, storage_index, known.get(s), length))
             for s in group],
            consumeErrors=True,
        )
        found = len(smap.shares) + len(smap.bad_shares) - before
        if _stop(smap, mode, found):
            break
    if writekey is not None and mode in (MODE_WRITE, MODE_REPAIR):
        await find_private_key(smap, storage_index, writekey)
    return smap


async def _query_listing(
    smap: ServerMap, checker: _Checker, server: Any, storage_index: bytes, hinted: list[int] | None, length: int
) -> None:
    """Every share on the server: with hinted share numbers, their reads and the
    list of the server's shares in one round (then the shares the list adds)."""
    if not hinted:
        await _query(smap, checker, server, storage_index, [], length)
        return
    listed = defer.ensureDeferred(remote.readv(server, storage_index, [], []))
    await _query(smap, checker, server, storage_index, hinted, length)
    try:
        listing = await listed
    except ServerError as e:
        smap.server_errors[server.server_id] = str(e)
        return
    missing = sorted(set(listing) - set(hinted))
    smap.servers_without_shares.discard(server.server_id)
    if missing:
        await _query(smap, checker, server, storage_index, missing, length)
    elif not listing:
        smap.servers_without_shares.add(server.server_id)


async def _query(
    smap: ServerMap, checker: _Checker, server: Any, storage_index: bytes, shnums: list[int], length: int
) -> None:
    try:
        answer = await remote.readv(server, storage_index, shnums, [(0, length)])
    except ServerError as e:
        smap.server_errors[server.server_id] = str(e)
        return
    smap.servers_queried[server.server_id] = server
    if not answer and not shnums:
        smap.servers_without_shares.add(server.server_id)
    for shnum, reads in sorted(answer.items()):
        data = reads[0] if reads else b""
        record_share(smap, checker, server, shnum, data)


def record_share(smap: ServerMap, checker: _Checker, server: Any, shnum: int, data: bytes) -> None:
    key = (server.server_id, shnum)
    try:
        prefix, offsets = checker.check(data)
        if shnum >= prefix.n:
            raise ShareCheckError(f"share number {shnum} is not below N={prefix.n}")
    except ShareCheckError as e:
        smap.bad_shares[key] = BadShare(server, shnum, data[:57], str(e))
        smap.shares.pop(key, None)
        return
    smap.shares[key] = ShareInfo(server, shnum, prefix, offsets, data)


async def find_private_key(smap: ServerMap, storage_index: bytes, writekey: bytes) -> None:
    """Fill smap.private_key from any good share (reading the field if not yet read)."""
    if smap.private_key is not None:
        return
    best = smap.best_recoverable_version()
    infos = sorted(
        smap.shares.values(),
        key=lambda i: (i.prefix != best, not i.covers(*i.offsets.span("enc_privkey"))),
    )
    for info in infos:
        start, length = info.offsets.span("enc_privkey")
        if info.covers(start, length):
            enc = info.data[start: start + length]
        else:
            try:
                answer = await remote.readv(info.server, storage_index, [info.shnum], [(start, length)])
                enc = answer.get(info.shnum, [b""])[0]
            except ServerError:
                continue
        try:
            smap.private_key = decrypt_private_key(writekey, enc)
            return
        except ShareCheckError:
            continue
