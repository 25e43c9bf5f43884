"""Writing a version of a mutable file to the servers (Tahoe-LAFS 1.20's Publish).

Every share is written with a test-and-set (slot_testv_and_readv_and_writev):
a share the server map saw must still start with the checkstring seen (`eq`),
a bad share with the bytes seen, and a new share must not exist. All of one
server's shares go in one call, which the server applies atomically.

Placement: every share found by the server map is updated where it is; the
others ("homeless") go round the permuted ring, servers with the fewest
shares first, then in ring order, so each server gets one share when there
are enough servers. A server that fails loses its shares to others.

Any failed test, or a share the map did not know that holds another version,
means another writer was at work: the publish completes what it can and then
raises UncoordinatedWriteError. Fewer than k shares placed raises
NotEnoughServersError: MutableFullError when every server that failed said
it had no room. Each error keeps the server's own reason.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import checkstring_size, header_size, unpack_header
from shoal.grid.storage_client import ServerError, ServerFull, SlotWrite, TestVector
from shoal.mutable import remote
from shoal.mutable.encoder import EncodedVersion, WriteKeys
from shoal.mutable.errors import MutableFullError, NotEnoughServersError, UncoordinatedWriteError
from shoal.mutable.servermap import MODE_WRITE, ServerMap, ShareHints, ShareInfo

_log = Logger()
MUST_NOT_EXIST: TestVector = [(0, 1, b"eq", b"")]


class Publisher:
    def __init__(
        self,
        broker: Any,
        storage_index: bytes,
        smap: ServerMap,
        keys: WriteKeys,
        lease_secret: bytes,
        *,
        only_shares: set[tuple[bytes, int]] | None = None,
        hints: ShareHints | None = None,
    ) -> None:
        self.broker = broker
        self.si = storage_index
        self.smap = smap
        self.keys = keys
        self.lease_secret = lease_secret
        self.only_shares = only_shares
        self.only_known = only_shares is not None
        self.hints = hints  # told where the shares were placed (and how big they are)
        self.share_size = 0  # bytes of a whole share (full publishes only)
        self.surprises: list[str] = []
        self.errors: list[str] = []
        self.full: list[bool] = []  # per error: whether the server said it had no room
        self.placed: dict[int, set[bytes]] = defaultdict(set)  # shnum -> server ids
        self._servers: dict[bytes, Any] = {}  # server id -> the server written to
        self._heads: dict[int, bytes] = {}  # shnum -> the share's header as written
        self.servers_connected: frozenset[bytes] = frozenset()  # when the publish started

    def _tests(self, server_id: bytes, shnum: int) -> TestVector:
        key = (server_id, shnum)
        info = self.smap.shares.get(key)
        if info is not None:
            cs = info.checkstring
            return [(0, len(cs), b"eq", cs)]
        bad = self.smap.bad_shares.get(key)
        if bad is not None and bad.checkstring:
            return [(0, len(bad.checkstring), b"eq", bad.checkstring)]
        return MUST_NOT_EXIST

    def _initial_goal(self, n: int) -> dict[bytes, set[int]]:
        goal: dict[bytes, set[int]] = defaultdict(set)
        if self.only_shares is not None:
            for sid, shnum in self.only_shares:
                goal[sid].add(shnum)
            return goal
        for (sid, shnum), _info in self.smap.shares.items():
            if shnum < n:
                goal[sid].add(shnum)
        if not self.only_known:
            for (sid, shnum), _bad in self.smap.bad_shares.items():
                if shnum < n:
                    goal[sid].add(shnum)
        return goal

    def _place_homeless(
        self, goal: dict[bytes, set[int]], n: int, servers: list[Any], bad: set[bytes]
    ) -> None:
        homed = {sh for shs in goal.values() for sh in shs} | set(self.placed)
        homeless = sorted(set(range(n)) - homed)
        if not homeless:
            return
        load: dict[bytes, int] = defaultdict(int)
        for sid, shs in goal.items():
            load[sid] += len(shs)
        for sids in self.placed.values():
            for sid in sids:
                load[sid] += 1
        ring = [(load[s.server_id], i, s) for i, s in enumerate(servers) if s.server_id not in bad]
        if not ring:
            return
        ring.sort(key=lambda t: (t[0], t[1]))
        for j, shnum in enumerate(homeless):
            goal[ring[j % len(ring)][2].server_id].add(shnum)

    async def publish(self, encoded: EncodedVersion) -> None:
        try:
            await self._publish(encoded)
        finally:
            if self.hints is not None:
                self.hints.from_placement(self.si, self.placed, self.share_size or None)

    async def _publish(self, encoded: EncodedVersion) -> None:
        prefix = encoded.prefix
        n, k = prefix.n, prefix.k
        servers = list(self.broker.get_servers_for_psi(self.si))
        self.servers_connected = frozenset(s.server_id for s in servers)
        by_id = {s.server_id: s for s in servers}
        for info in self.smap.shares.values():
            by_id.setdefault(info.server.server_id, info.server)
        for b in self.smap.bad_shares.values():
            by_id.setdefault(b.server.server_id, b.server)
        bad: set[bytes] = set()
        goal = self._initial_goal(n)
        if not self.only_known:
            self._place_homeless(goal, n, servers, bad)
        new_cs = prefix.checkstring()
        while goal:
            calls = []
            for sid, shnums in goal.items():
                server = by_id.get(sid)
                if server is None:
                    continue
                calls.append((server, sorted(shnums)))
            results: list[Any] = await defer.DeferredList(
                [defer.ensureDeferred(self._write(server, shnums, encoded, new_cs)) for server, shnums in calls],
                consumeErrors=True,
            )
            goal = defaultdict(set)
            for (server, _shnums), (ok, value) in zip(calls, results, strict=True):
                if not ok:
                    err = value.value
                    if not isinstance(err, ServerError):
                        value.raiseException()
                    self.errors.append(str(err))
                    self.full.append(isinstance(err, ServerFull))
                    bad.add(server.server_id)
            if self.surprises or self.only_known:
                break  # another writer is at work: do not spread our version further
            self._place_homeless(goal, n, servers, bad)
        if self.surprises:
            raise UncoordinatedWriteError(
                f"another writer changed the file during our write of seqnum {prefix.seqnum}: "
                + "; ".join(self.surprises)
            )
        if len(self.placed) < k:
            cls = MutableFullError if self.full and all(self.full) else NotEnoughServersError
            raise cls(
                f"published only {len(self.placed)} shares of seqnum {prefix.seqnum}, "
                f"{k} are needed; errors: {'; '.join(self.errors + self.surprises) or 'no servers'}"
            )

    def settled_map(self, encoded: EncodedVersion) -> ServerMap | None:
        """What the servers hold after a clean full publish of `encoded`: a map with
        every share of the new version where it was placed, as a MODE_WRITE map
        would find it, so the next write may skip the query. None unless the map
        published from had no bad share and no server error, every one of the N
        shares was placed, and no server failed or surprised us."""
        prefix = encoded.prefix
        if (self.only_known or self.errors or self.surprises or self.smap.bad_shares
                or self.smap.server_errors or len(self.placed) != prefix.n):
            return None
        settled = ServerMap(MODE_WRITE)
        for shnum, sids in self.placed.items():
            try:
                _, offsets = unpack_header(self._heads.get(shnum, b""))
            except FormatError:
                return None
            for sid in sids:
                server = self._servers[sid]
                settled.servers_queried[sid] = server
                settled.shares[(sid, shnum)] = ShareInfo(server, shnum, prefix, offsets, self._heads[shnum])
        return settled

    async def _write(self, server: Any, shnums: list[int], encoded: EncodedVersion, new_cs: bytes) -> None:
        sid = server.server_id
        vectors = {sh: SlotWrite(self._tests(sid, sh), encoded.share_writes(sh, self.keys)) for sh in shnums}
        if not self.only_known:
            end = max((o + len(d) for v in vectors.values() for o, d in v.writes), default=0)
            self.share_size = max(self.share_size, end)
        self._servers[sid] = server
        keep = header_size(encoded.prefix.version)  # the checkstring and the offsets table
        for sh, vector in vectors.items():
            head = next((data for offset, data in vector.writes if offset == 0), b"")
            self._heads[sh] = head[:keep]
        secrets = remote.write_secrets(self.keys.writekey, self.lease_secret, self.si, server)
        cs_len = checkstring_size(encoded.prefix.version)
        result = await remote.test_and_write(server, self.si, secrets, vectors, [(0, cs_len)])
        if not result.success:
            self.surprises.append(
                f"server {server.name} refused shares {shnums}: they changed since we read them"
            )
            return
        for sh in shnums:
            self.placed[sh].add(sid)
        for sh, got in result.reads.items():
            if sh in vectors or (sid, sh) in self.smap.shares or (sid, sh) in self.smap.bad_shares:
                continue
            if got and got[0] and got[0] != new_cs:
                self.surprises.append(f"server {server.name} holds share {sh} of a version we did not see")
