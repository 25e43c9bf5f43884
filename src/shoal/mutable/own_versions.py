"""The versions this client itself last published, so its next edit of the same
file can skip reading it back.

A gateway that is the only writer of its directories (the blob service's
namespaces and shards, a Blockstack driver's index) otherwise pays, on every
edit, a MODE_WRITE server map (a read of every share), the private key's
decryption and a retrieve of the contents it wrote a moment ago. After a
clean publish (every one of the N shares placed, no server failed, the map
it started from had no bad share) the client knows exactly what each server
holds: the new version's checkstring on every share it wrote. The next
modify starts from that: the remembered contents, the map of the placed
shares and the write keys.

Nothing here is trusted blindly. Every share of the next publish is still
written with a test of the checkstring remembered, so if anyone else wrote
the file since (another gateway, a Tahoe client holding the write cap) the
servers refuse it, the modify forgets the entry and starts again from a fresh
MODE_WRITE map. An entry is dropped when any write of the file starts (and
replaced only after a clean one), after MAX_AGE seconds, when a server
connects that was not connected at the publish (it may hold an older share
of the file, which only a fresh map finds and overwrites), and oldest first
beyond MAX_ENTRIES files or MAX_BYTES of contents.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import attrs

from shoal.mutable.encoder import WriteKeys
from shoal.mutable.servermap import ServerMap

MAX_AGE = 300.0  # seconds an own version is written from without asking the servers
MAX_ENTRIES = 512
MAX_BYTES = 32 * 1024 * 1024  # contents kept in all, summed


@attrs.frozen
class OwnVersion:
    contents: bytes
    smap: ServerMap  # what the servers hold after the publish (do not mutate)
    keys: WriteKeys
    when: float
    servers: frozenset[bytes]  # the servers connected when it was published


class OwnVersions:
    """A bounded LRU of storage index -> the version this client last published."""

    def __init__(self, clock: Callable[[], float], *, max_age: float = MAX_AGE, max_entries: int = MAX_ENTRIES,
                 max_bytes: int = MAX_BYTES) -> None:
        self._clock = clock
        self.max_age = max_age
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._by_si: OrderedDict[bytes, OwnVersion] = OrderedDict()
        self._bytes = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._by_si)

    def remember(self, storage_index: bytes, contents: bytes, smap: ServerMap, keys: WriteKeys,
                 servers: frozenset[bytes] = frozenset()) -> None:
        self.forget(storage_index)
        if len(contents) > self.max_bytes or self.max_entries <= 0:
            return
        self._by_si[storage_index] = OwnVersion(bytes(contents), smap, keys, self._clock(), frozenset(servers))
        self._bytes += len(contents)
        while len(self._by_si) > self.max_entries or self._bytes > self.max_bytes:
            _, old = self._by_si.popitem(last=False)
            self._bytes -= len(old.contents)

    def forget(self, storage_index: bytes) -> None:
        old = self._by_si.pop(storage_index, None)
        if old is not None:
            self._bytes -= len(old.contents)

    def get(self, storage_index: bytes, servers: frozenset[bytes] | None = None) -> OwnVersion | None:
        """The version last published here, unless it is older than max_age or a
        server in `servers` (those connected now) was not connected then: it may
        hold an older share that only a fresh map would find and overwrite."""
        own = self._by_si.get(storage_index)
        if own is None:
            return None
        if self._clock() - own.when > self.max_age or (servers is not None and not servers <= own.servers):
            self.forget(storage_index)
            return None
        self._by_si.move_to_end(storage_index)
        self.hits += 1
        return own
