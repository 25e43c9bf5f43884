"""An in-process grid over real sockets, for interop tests: N real StorageServers,
each behind shoal's Foolscap adapter in its own Tub on 127.0.0.1, and a client
Tub with a StorageBroker that knows them (static announcements, no introducer).

Real Tahoe-LAFS nodes can reach these servers over Foolscap (their
announcements carry real FURLs). Every other grid test uses the socket-free
LocalGrid, which also has the fault injection this one lacks.
"""

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

from foolscap.api import Tub
from twisted.internet import defer

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import a2b, b2a
from shoal.grid.storage_broker import StorageBroker, foolscap_connector
from shoal.introducer.files import StaticServer
from shoal.protocol.announcement import storage_announcement
from shoal.storage.foolscap_adapter import FoolscapStorageServer
from shoal.storage.server import StorageServer
from shoal.testing import reactor_thread


class SocketServer:
    def __init__(self, base: str, index: int) -> None:
        self.index = index
        self.base = base
        self.key = SigningKey.generate()
        self.server_id = self.key.verifying_key().server_id()
        self.tub: Any = None
        self.storage: StorageServer | None = None
        self.furl = ""

    def start(self) -> None:
        """(reactor thread) Serve storage on a port of its own."""
        self.tub = Tub(certFile=os.path.join(self.base, "node.pem"))
        self.tub.setOption("expose-remote-exception-types", False)
        self.tub.startService()
        port = self.tub.listenOn("tcp:0:interface=127.0.0.1").getPortnum()
        self.tub.setLocation(f"tcp:127.0.0.1:{port}")
        self.storage = StorageServer(os.path.join(self.base, "storage"), a2b(self.tub.getTubID()))
        self.furl = self.tub.registerReference(FoolscapStorageServer(self.storage), "storage")

    def stop(self) -> Any:
        """(reactor thread) Drop every connection and stop serving."""
        if self.storage is not None:
            self.storage.shutdown()
            self.storage = None
        tub, self.tub = self.tub, None
        return tub.stopService() if tub is not None else None

    def announcement(self) -> dict[str, Any]:
        ann = storage_announcement(self.furl, b2a(self.key.verifying_key().raw()))
        ann["nickname"] = f"sock{self.index}"
        return ann


class SocketGrid:
    """`SocketGrid(n)`; use as a context manager or call close()."""

    def __init__(self, num_servers: int) -> None:
        self.base = tempfile.mkdtemp(prefix="shoal-socketgrid-")
        self.servers = []
        for i in range(num_servers):
            d = os.path.join(self.base, f"server{i}")
            os.makedirs(d)
            self.servers.append(SocketServer(d, i))
        self.client_tub: Any = None
        self.broker: StorageBroker | None = None
        self.call(self._start)
        self.wait_connected(num_servers)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return reactor_thread.call(fn, *args, **kwargs)

    def _start(self) -> None:
        for s in self.servers:
            s.start()
        self.client_tub = Tub()
        self.client_tub.startService()
        self.broker = StorageBroker(foolscap_connector(self.client_tub))
        self.broker.set_static_servers([StaticServer(s.server_id, s.announcement()) for s in self.servers])
        self.broker.startService()

    def wait_connected(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            n = self.call(lambda: len(self.broker.get_connected_servers()))  # type: ignore[union-attr]
            if n >= count:
                return
            time.sleep(0.05)
        raise TimeoutError(f"only {n} of {count} servers connected")

    def close(self) -> None:
        def _stop() -> Any:
            ds = []
            if self.broker is not None:
                ds.append(defer.maybeDeferred(self.broker.stopService))
            if self.client_tub is not None:
                ds.append(defer.maybeDeferred(self.client_tub.stopService))
            ds += [defer.maybeDeferred(s.stop) for s in self.servers]
            return defer.DeferredList(ds)

        self.call(_stop)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "SocketGrid":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
