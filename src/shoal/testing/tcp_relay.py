"""A userspace TCP relay for tests and benchmarks: counts, rate-limits and cuts a link.

``Relay(port)`` listens on 127.0.0.1 (a free port, ``relay.port``) and pipes
every connection to 127.0.0.1:``port``. It counts the bytes each way
(``up``: client to target, ``down``: back), can limit the upstream rate
(``rate`` bytes per second, a token bucket: a metered uplink; one
``Limiter`` shared by several relays is one uplink to several servers), ``cut()``
every live connection (a broken link) and ``refuse`` new ones (the far end
gone). TLS passes through untouched, so a Foolscap FURL works through the
relay once its location hint names the relay's port (``relay_furl``).
Threads, not the reactor: the relay is independent of the code under test.
"""

import os
import re
import socket
import threading
import time
from typing import Any

from shoal.testing import ports

BUFFER = 64 * 1024


def relay_furl(furl: str, port: int) -> str:
    """The FURL with every location hint replaced by 127.0.0.1:port."""
    m = re.match(r"^pb://([^@]+)@([^/]*)/(.+)$", furl)
    if not m:
        raise ValueError("not a pb:// FURL")
    return f"pb://{m.group(1)}@tcp:127.0.0.1:{port}/{m.group(3)}"


class Limiter:
    """An upstream rate shared by any number of relays (one uplink to many servers):
    a token bucket of 0.1 s; `rate` None is unlimited."""

    def __init__(self, rate: float | None = None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._allowance = 0.0
        self._last = time.monotonic()

    def take(self, n: int) -> None:
        rate = self.rate
        if rate is None:
            return
        with self._lock:
            now = time.monotonic()
            self._allowance = min(self._allowance + (now - self._last) * rate, rate / 10) - n
            self._last = now
            deficit = -self._allowance
        if deficit > 0:
            time.sleep(deficit / rate)  # pacing the link, not waiting for a test condition


class Relay:
    def __init__(
        self, target_port: int, *, rate: float | None = None, limiter: Limiter | None = None,
        target_host: str = "127.0.0.1",
    ) -> None:
        self.target = (target_host, target_port)
        self.limiter = limiter if limiter is not None else Limiter(rate)
        self.refuse = False
        self.up = 0
        self.down = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, name=f"relay:{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._live.update((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    @property
    def rate(self) -> float | None:
        """The upstream rate (bytes per second) of this relay's limiter."""
        return self.limiter.rate

    @rate.setter
    def rate(self, value: float | None) -> None:
        self.limiter.rate = value

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while True:
                data = src.recv(BUFFER if not (upstream and self.rate) else min(BUFFER, max(1024, int(self.rate) // 20)))
                if not data:
                    break
                if upstream:
                    self.limiter.take(len(data))
                dst.sendall(data)
                with self._lock:
                    if upstream:
                        self.up += len(data)
                    else:
                        self.down += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self._lock:
            self._live.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        """Break every live connection (both ends see the link drop)."""
        with self._lock:
            live = list(self._live)
        for s in live:
            self._close(s)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()


def free_port() -> int:
    """A port of this xdist worker's own block (shoal.testing.ports): no other worker's pick."""
    return ports.free_port()


def add_relayed_storage(grid: Any, name: str, limiter: Limiter) -> tuple[Any, Relay, int]:
    """Start a storage node on `grid` (a shoal.testing.grid.Grid) whose announced address (its
    tub.location, so also its HTTPS NURLs) is a relay on `limiter`: every client's traffic to it
    crosses the relay. Returns (node, relay, the node's real port)."""
    from shoal.testing.processes import create, start_node

    real = free_port()
    relay = Relay(real, limiter=limiter)
    d = os.path.join(grid.base, name)
    create("create-node", "--port", f"tcp:{real}", "--location", f"tcp:127.0.0.1:{relay.port}",
           "--webport", "none", "--nickname", name, "--introducer", grid.introducer_furl, d)
    node = start_node(d)
    grid.storage.append(node)
    return node, relay, real
