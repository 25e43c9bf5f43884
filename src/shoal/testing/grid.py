"""A real local grid of processes: an introducer, storage nodes and a client.

Every node directory is made by the `shoal` CLI's create-* commands (run in
this process: the same code, without an interpreter start-up per node), every
node runs as its own `shoal run` process, listens on 127.0.0.1 on ports chosen
free, and is stopped by its pid. Used by the integration tests and
by `make run`.
"""

import functools
import json
import os
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from shoal.testing.processes import (
    NodeProcess,
    NodeProcessError,
    create,
    set_config,
    start_all,
    start_node,
    stop_all,
)
from shoal.testing.wait import WaitTimeout, wait_until


def web_json(node_url: str, path: str = "?t=json", timeout: float = 10) -> Any:
    with urllib.request.urlopen(node_url.rstrip("/") + "/" + path.lstrip("/"), timeout=timeout) as r:
        return json.loads(r.read().decode("utf-8"))


def connected_servers(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The servers of a welcome-page JSON that are connected and ready for an upload.

    shoal's JSON adds "connected": true only once the server's version has arrived
    (what an upload needs); Tahoe's has just the connection summary.
    """
    return [s for s in status["servers"]
            if s["connection_status"].lower().startswith("connected") and s.get("connected", True)]


def wait_for_servers(node_url: str, count: int, timeout: float = 60) -> dict[str, Any]:
    """Poll the welcome page JSON until `count` servers say Connected."""
    seen: dict[str, Any] = {}

    def enough() -> dict[str, Any] | None:
        status = seen["last"] = web_json(node_url)
        return status if len(connected_servers(status)) >= count else None

    try:
        return wait_until(enough, timeout, f"{count} connected servers", interval=0.1, ignore=(OSError,))
    except WaitTimeout:
        servers = seen.get("last", {}).get("servers", [])
        raise NodeProcessError(f"only saw {servers} after {timeout}s, wanted {count} connected") from None


def shares_args(k: int, happy: int, n: int) -> tuple[str, ...]:
    """The create-client flags for k-of-n encoding with `happy` servers of happiness."""
    return ("--shares-needed", str(k), "--shares-happy", str(happy), "--shares-total", str(n))


@attrs.define
class Grid:
    base: str
    introducer: NodeProcess | None = None
    storage: list[NodeProcess] = attrs.field(factory=list)
    client: NodeProcess | None = None
    clients: list[NodeProcess] = attrs.field(factory=list)  # more clients (add_client), stopped with the grid

    @property
    def introducer_furl(self) -> str:
        assert self.introducer is not None
        return self.introducer.read_private("introducer.furl")

    @property
    def client_url(self) -> str:
        assert self.client is not None
        return self.client.web_url

    def start_introducer(self) -> NodeProcess:
        d = os.path.join(self.base, "introducer")
        if not os.path.exists(d):
            create("create-introducer", "--hostname", "127.0.0.1", d)
        self.introducer = start_node(d)
        return self.introducer

    def add_storage(self, name: str, *extra: str, config: Mapping[tuple[str, str], str] | None = None) -> NodeProcess:
        """Create (once) and start a storage node; `config` sets tahoe.cfg keys before its first start."""
        d = os.path.join(self.base, name)
        if not os.path.exists(d):
            create("create-node", "--hostname", "127.0.0.1", "--webport", "none",
                          "--nickname", name, "--introducer", self.introducer_furl, *extra, d)
            for (section, key), value in (config or {}).items():
                set_config(d, section, key, value)
        node = start_node(d)
        self.storage.append(node)  # list.append is atomic: safe from the starter threads
        return node

    def add_storage_nodes(self, names: Iterable[str]) -> list[NodeProcess]:
        """Start storage nodes concurrently; returns once every one is listening."""
        return start_all(functools.partial(self.add_storage, name) for name in names)

    def _create_client(self, name: str, extra: tuple[str, ...], config: Mapping[tuple[str, str], str],
                       files: Mapping[str, str]) -> str:
        d = os.path.join(self.base, name)
        if not os.path.exists(d):
            create("create-client", "--webport", "tcp:0:interface=127.0.0.1",
                          "--nickname", name, "--introducer", self.introducer_furl, *extra, d)
            for (section, key), value in config.items():
                set_config(d, section, key, value)
            for relpath, text in files.items():
                with open(os.path.join(d, relpath), "w", encoding="utf-8") as f:
                    f.write(text)
        return d

    def start_client(self, name: str = "client", *extra: str) -> NodeProcess:
        self.client = start_node(self._create_client(name, extra, {}, {}))
        return self.client

    def add_client(self, name: str, *extra: str, config: Mapping[tuple[str, str], str] | None = None,
                   files: Mapping[str, str] | None = None, servers: int | None = None) -> NodeProcess:
        """One more client node on this grid (stopped with it, or earlier by its owner).

        `extra` are create-client flags (see shares_args), `config` tahoe.cfg keys and
        `files` node-directory files (relative path -> text) written before its first
        start. Returns once it sees `servers` storage servers (default: all of this grid's).
        """
        node = start_node(self._create_client(name, extra, config or {}, files or {}))
        self.clients.append(node)
        wait_for_servers(node.web_url, len(self.storage) if servers is None else servers)
        return node

    def stop(self) -> None:
        """Stop every node at once (clients, storage, introducer) by pid."""
        stop_all([*self.clients, self.client, *self.storage, self.introducer])


def start_grid(base: str, storage_nodes: int = 5, client_args: tuple[str, ...] = ()) -> Grid:
    """An introducer, then storage nodes and the client started concurrently; returns once
    the client sees every storage server."""
    grid = Grid(base)
    try:
        grid.start_introducer()
        start_all([*(functools.partial(grid.add_storage, f"storage{i + 1}") for i in range(storage_nodes)),
                   functools.partial(grid.start_client, "client", *client_args)])
        wait_for_servers(grid.client_url, storage_nodes)
    except BaseException:
        grid.stop()
        raise
    return grid
