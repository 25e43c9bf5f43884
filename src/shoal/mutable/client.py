"""The entry point to mutable files: create them, and open them from caps."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from shoal import cpu
from shoal.caps.base import CapBase
from shoal.caps.mutable import mutable_caps_from_private_key
from shoal.crypto import rsa
from shoal.formats.mutable_share import MDMF_DEFAULT_SEGMENT_SIZE, MDMF_VERSION, SDMF_VERSION
from shoal.grid.locks import KeyedLocks
from shoal.mutable.encoder import EncodedVersion, WriteKeys, encode_version
from shoal.mutable.errors import MutableUsageError
from shoal.mutable.filenode import MutableCap, MutableFileNode
from shoal.mutable.keypool import KeyPool
from shoal.mutable.own_versions import OwnVersions
from shoal.mutable.publish import Publisher
from shoal.mutable.servermap import ServerMap, ShareHints

FORMATS = {"SDMF": SDMF_VERSION, "MDMF": MDMF_VERSION}


class MutableClient:
    """Creates and opens mutable files on the grid the broker knows."""

    def __init__(
        self, broker: Any, *, lease_secret: bytes, k: int = 3, n: int = 10, key_pool: KeyPool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= k <= n <= 255:
            raise MutableUsageError(f"bad encoding parameters k={k} n={n}")
        self.broker = broker
        self.lease_secret = lease_secret
        self.k = k
        self.n = n
        self.key_pool = key_pool if key_pool is not None else KeyPool(0)
        self._locks = KeyedLocks()
        # where this client last saw each file's shares (asked first by the next server map)
        self.share_hints = ShareHints()
        # the version this client last published of each file (its next edit starts there)
        self.own_versions = OwnVersions(clock)
        # segment size of new MDMF versions (Tahoe's 128 KiB; tests may lower it)
        self.mdmf_segment_size = MDMF_DEFAULT_SEGMENT_SIZE

    def lock(self, storage_index: bytes) -> AbstractAsyncContextManager[None]:
        """The lock that serialises this client's writes to one file
        (`async with client.lock(si):`); idle locks are forgotten."""
        return self._locks.hold(storage_index)

    def node_for(self, cap: MutableCap) -> MutableFileNode:
        if not (isinstance(cap, CapBase) and cap.is_mutable_file):
            raise MutableUsageError(f"not a mutable file cap: {cap!r}")
        return MutableFileNode(self, cap)

    async def create(
        self, contents: bytes = b"", *, format: str = "SDMF", private_key: rsa.PrivateKey | None = None
    ) -> MutableFileNode:
        """A new mutable file holding `contents` (seqnum 1)."""
        fmt = format.upper()
        if fmt not in FORMATS:
            raise MutableUsageError(f"unknown mutable format {format!r} (SDMF or MDMF)")
        key = private_key if private_key is not None else await self.key_pool.get()
        keys = await cpu.run(WriteKeys.from_private_key, key)
        write_cap, _, _ = mutable_caps_from_private_key(key, fmt == "MDMF")
        node = MutableFileNode(self, write_cap)
        node._keys = keys
        encoded = await cpu.run(
            encode_version, bytes(contents), version=FORMATS[fmt], seqnum=1, k=self.k, n=self.n, keys=keys,
            max_segment_size=self.mdmf_segment_size,
        )
        async with self.lock(node.storage_index):
            await self.publish(node.storage_index, ServerMap(), keys, encoded, bytes(contents))
        return node

    async def publish(self, storage_index: bytes, smap: ServerMap, keys: WriteKeys, encoded: EncodedVersion,
                      contents: bytes | None, *, only_shares: set[tuple[bytes, int]] | None = None) -> None:
        """Write `encoded` over what `smap` saw (test-and-set, shoal.mutable.publish);
        after a clean full publish, remember it as this client's own version of the
        file, holding `contents` (None: not known here, nothing remembered)."""
        self.own_versions.forget(storage_index)
        publisher = Publisher(self.broker, storage_index, smap, keys, self.lease_secret,
                              only_shares=only_shares, hints=self.share_hints)
        await publisher.publish(encoded)
        settled = publisher.settled_map(encoded)
        if settled is not None and contents is not None:
            self.own_versions.remember(storage_index, contents, settled, keys, publisher.servers_connected)
