"""An in-process grid over real sockets: N real StorageServers, each behind shoal's
Foolscap adapter in its own Tub on 127.0.0.1, and a client Tub with a
StorageBroker that knows them (static announcements, no introducer).

For interop tests, where real Tahoe-LAFS nodes must reach the servers over
Foolscap; every other grid test uses the socket-free LocalGrid.

Everything runs in the reactor thread (see reactor_thread); tests drive it
synchronously with `grid.call(fn, ...)`. Faults: stop or restart a server,
corrupt or delete share files on disk, or make a server lie (serve real
shares with flipped bits).
"""

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from foolscap.api import Referenceable, Tub

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import a2b, b2a
from shoal.grid.storage_broker import StorageBroker, foolscap_connector
from shoal.introducer.files import StaticServer
from shoal.protocol.announcement import storage_announcement
from shoal.storage.foolscap_adapter import FoolscapBucketReader, FoolscapStorageServer
from shoal.storage.server import StorageServer
from shoal.testing import reactor_thread

PUT_CHUNK = 1_000_000  # bytes per remote write, as Tahoe 1.20's uploader


class LyingReader(FoolscapBucketReader):
    """Serves a real share but flips one bit of every read that covers `offset`."""

    def __init__(self, reader: Any, flip_at: int) -> None:
        super().__init__(reader)
        self._flip_at = flip_at

    def remote_read(self, offset: int, length: int) -> bytes:
        data = bytearray(super().remote_read(offset, length))
        if offset <= self._flip_at < offset + len(data):
            data[self._flip_at - offset] ^= 0x01
        return bytes(data)


class LyingStorageServer(FoolscapStorageServer):
    """A storage server whose bucket readers alter the bytes they return."""

    def __init__(self, server: StorageServer, flip_at: int) -> None:
        super().__init__(server)
        self.flip_at = flip_at

    def remote_get_buckets(self, storage_index: bytes) -> dict[int, FoolscapBucketReader]:
        return {sh: LyingReader(r, self.flip_at) for sh, r in self._server.get_buckets(storage_index).items()}


class SocketServer:
    def __init__(
        self, base: str, index: int, adapter_factory: Callable[[StorageServer], Referenceable],
        max_space: int | None = None,
    ) -> None:
        self.index = index
        self.max_space = max_space
        self.base = base
        self.key = SigningKey.generate()
        self.server_id = self.key.verifying_key().server_id()
        self.certfile = os.path.join(base, "node.pem")
        self.adapter_factory = adapter_factory
        self.tub: Any = None
        self.storage: StorageServer | None = None
        self.furl = ""
        self.port = 0

    @property
    def storage_dir(self) -> str:
        return os.path.join(self.base, "storage")

    def start(self) -> None:
        """(reactor thread) Serve storage on a fixed port (kept across restarts)."""
        self.tub = Tub(certFile=self.certfile)
        self.tub.setOption("expose-remote-exception-types", False)
        self.tub.startService()
        listener = self.tub.listenOn(f"tcp:{self.port}:interface=127.0.0.1")
        self.port = listener.getPortnum()
        self.tub.setLocation(f"tcp:127.0.0.1:{self.port}")
        self.storage = StorageServer(self.storage_dir, a2b(self.tub.getTubID()), max_space=self.max_space)
        self.furl = self.tub.registerReference(self.adapter_factory(self.storage), "storage")

    def stop(self) -> Any:
        """(reactor thread) Drop every connection and stop serving."""
        if self.storage is not None:
            self.storage.shutdown()
            self.storage = None
        tub, self.tub = self.tub, None
        return tub.stopService() if tub is not None else None

    def announcement(self) -> dict[str, Any]:
        seed = b2a(self.key.verifying_key().raw())
        ann = storage_announcement(self.furl, seed)
        ann["nickname"] = f"mem{self.index}"
        return ann

    def share_files(self) -> list[str]:
        out = []
        shares = os.path.join(self.storage_dir, "shares")
        for root, dirs, files in os.walk(shares):
            dirs[:] = [d for d in dirs if d != "incoming"]
            out += [os.path.join(root, f) for f in files if f.isdigit()]
        return sorted(out)


class SocketGrid:
    """`SocketGrid(n)`; use as a context manager or call close()."""

    def __init__(
        self, num_servers: int, lying: dict[int, int] | None = None, max_space: dict[int, int] | None = None
    ) -> None:
        """lying: server index -> offset whose bit its readers flip; max_space:
        server index -> bytes it may hold (its announced space and its limit)."""
        self.base = tempfile.mkdtemp(prefix="shoal-memgrid-")
        lying = lying or {}
        self.servers = []
        for i in range(num_servers):
            d = os.path.join(self.base, f"server{i}")
            os.makedirs(d)
            factory: Callable[[StorageServer], Referenceable] = FoolscapStorageServer
            if i in lying:
                factory = (lambda flip: (lambda s: LyingStorageServer(s, flip)))(lying[i])
            self.servers.append(SocketServer(d, i, factory, (max_space or {}).get(i)))
        self.client_tub: Any = None
        self.broker: StorageBroker | None = None
        reactor_thread.call(self._start)
        self.wait_connected(num_servers)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return reactor_thread.call(fn, *args, **kwargs)

    def _start(self) -> None:
        for s in self.servers:
            s.start()
        self.client_tub = Tub()
        self.client_tub.startService()
        self.broker = StorageBroker(foolscap_connector(self.client_tub))
        self.broker.set_static_servers(
            [StaticServer(s.server_id, s.announcement()) for s in self.servers]
        )
        self.broker.startService()

    def wait_connected(self, count: int, timeout: float = 30) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self.call(lambda: len(self.broker.get_connected_servers()))  # type: ignore[union-attr]
            if n >= count:
                return
            time.sleep(0.05)
        raise TimeoutError(f"only {n} of {count} servers connected")

    def server_for(self, i: int) -> Any:
        """The broker's GridServer for server i."""
        assert self.broker is not None
        return self.broker.servers[self.servers[i].server_id]

    def put_shares(
        self, storage_index: bytes, shares: Mapping[int, bytes], placement: Mapping[int, int] | None = None
    ) -> None:
        """Store whole share data through the storage protocol: share shnum goes to
        server placement[shnum] (default: server shnum modulo the grid size)."""
        from twisted.internet import defer

        async def put(shnum: int, data: bytes) -> None:
            index = placement[shnum] if placement is not None else shnum % len(self.servers)
            client = self.server_for(index).storage
            secret = b"%032d" % shnum
            allocation = await client.allocate_buckets(storage_index, secret, secret, frozenset({shnum}), len(data))
            writer = allocation.writers[shnum]
            for pos in range(0, len(data), PUT_CHUNK):
                await writer.write(pos, data[pos : pos + PUT_CHUNK])
            await writer.close()

        def run() -> Any:
            return defer.gatherResults(
                [defer.ensureDeferred(put(sh, d)) for sh, d in shares.items()], consumeErrors=True
            )

        self.call(run)

    def stop_server(self, i: int) -> None:
        self.call(self.servers[i].stop)

    def restart_server(self, i: int) -> None:
        self.call(self.servers[i].start)

    def close(self) -> None:
        def _stop() -> Any:
            from twisted.internet import defer

            ds = []
            if self.broker is not None:
                ds.append(defer.maybeDeferred(self.broker.stopService))
            if self.client_tub is not None:
                ds.append(defer.maybeDeferred(self.client_tub.stopService))
            for s in self.servers:
                ds.append(defer.maybeDeferred(s.stop))
            return defer.DeferredList(ds)

        self.call(_stop)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "SocketGrid":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
