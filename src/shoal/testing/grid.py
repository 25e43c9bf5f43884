"""A real local grid of processes: an introducer, storage nodes and a client.

Every node is created through the `shoal` CLI (or any program with
Tahoe-compatible create-node/run commands), listens on 127.0.0.1 on ports
chosen free, and is stopped by its pid. Used by the integration tests and
by `make run`.
"""

import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from shoal.testing.processes import NodeProcess, NodeProcessError, shoal_command, start_node


def web_json(node_url: str, path: str = "?t=json", timeout: float = 10) -> Any:
    with urllib.request.urlopen(node_url.rstrip("/") + "/" + path.lstrip("/"), timeout=timeout) as r:
        return json.loads(r.read().decode("utf-8"))


def wait_for_servers(node_url: str, count: int, timeout: float = 60) -> dict[str, Any]:
    """Poll the welcome page JSON until `count` servers say Connected."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = web_json(node_url)
            # shoal's JSON adds "connected": true only once the server's version has arrived
            # (what an upload needs); Tahoe's has just the connection summary
            connected = [s for s in last["servers"]
                         if s["connection_status"].lower().startswith("connected") and s.get("connected", True)]
            if len(connected) >= count:
                return last
        except OSError:
            pass
        time.sleep(0.25)
    raise NodeProcessError(f"only saw {last.get('servers', [])} after {timeout}s, wanted {count} connected")


@attrs.define
class Grid:
    base: str
    introducer: NodeProcess | None = None
    storage: list[NodeProcess] = attrs.field(factory=list)
    client: NodeProcess | None = None

    @property
    def introducer_furl(self) -> str:
        assert self.introducer is not None
        return self.introducer.read_private("introducer.furl")

    @property
    def client_url(self) -> str:
        assert self.client is not None
        with open(os.path.join(self.client.nodedir, "node.url")) as f:
            return f.read().strip()

    def start_introducer(self) -> NodeProcess:
        d = os.path.join(self.base, "introducer")
        if not os.path.exists(d):
            shoal_command("create-introducer", "--hostname", "127.0.0.1", d)
        self.introducer = start_node(d)
        return self.introducer

    def add_storage(self, name: str, *extra: str) -> NodeProcess:
        d = os.path.join(self.base, name)
        if not os.path.exists(d):
            shoal_command("create-node", "--hostname", "127.0.0.1", "--webport", "none",
                          "--nickname", name, "--introducer", self.introducer_furl, *extra, d)
        node = start_node(d)
        self.storage.append(node)  # list.append is atomic: safe from the starter threads
        return node

    def start_client(self, name: str = "client", *extra: str) -> NodeProcess:
        d = os.path.join(self.base, name)
        if not os.path.exists(d):
            shoal_command("create-client", "--webport", "tcp:0:interface=127.0.0.1",
                          "--nickname", name, "--introducer", self.introducer_furl, *extra, d)
        self.client = start_node(d)
        return self.client

    def stop(self) -> None:
        for node in [self.client, *self.storage, self.introducer]:
            if node is not None:
                node.stop()


def start_grid(base: str, storage_nodes: int = 5, client_args: tuple[str, ...] = ()) -> Grid:
    grid = Grid(base)
    try:
        grid.start_introducer()
        with ThreadPoolExecutor(max_workers=storage_nodes + 1) as pool:
            started = [pool.submit(grid.add_storage, f"storage{i + 1}") for i in range(storage_nodes)]
            client = pool.submit(grid.start_client, "client", *client_args)
            for f in [*started, client]:
                f.result()
        wait_for_servers(grid.client_url, storage_nodes)
    except BaseException:
        grid.stop()
        raise
    return grid
