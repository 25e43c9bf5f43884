"""Process-level mixed grids of shoal and Tahoe-LAFS 1.20 nodes.

1. A shoal introducer with 2 shoal and 2 Tahoe storage nodes: a shoal client
   and a Tahoe client each list all four as connected.
2. A Tahoe introducer with shoal storage nodes: a Tahoe client lists them.
"""

import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from shoal.testing.grid import Grid, wait_for_servers
from shoal.testing.processes import shoal_command, start_node
from tests.interop.conftest import TahoeNode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tahoe(peer, *args: str) -> None:
    subprocess.run([str(peer / "tahoe"), *args], check=True, capture_output=True, timeout=120)


def tahoe_node_url(nodedir) -> str:
    path = os.path.join(str(nodedir), "node.url")
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "tahoe client never wrote node.url"
        time.sleep(0.2)
    with open(path) as f:
        return f.read().strip()


def start_tahoe_client(peer, nodedir, introducer_furl: str) -> TahoeNode:
    tahoe(peer, "create-client", "--introducer", introducer_furl,
          "--webport", f"tcp:{free_port()}:interface=127.0.0.1", str(nodedir))
    return TahoeNode(peer, nodedir, wait_for="node.url")


def nicknames(status: dict) -> set[str]:
    return {s["nickname"] for s in status["servers"] if s["connection_status"].lower().startswith("connected")}


def test_shoal_introducer_mixed_grid(peer, tmp_path):
    grid = Grid(str(tmp_path / "shoal"))
    tahoes: list[TahoeNode] = []
    try:
        grid.start_introducer()
        furl = grid.introducer_furl
        for name in ("tstore1", "tstore2"):
            tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--webport", "none",
                  "--nickname", name, "--introducer", furl, str(tmp_path / name))
        with ThreadPoolExecutor(4) as pool:
            shoal_nodes = [pool.submit(grid.add_storage, f"sstore{i}") for i in (1, 2)]
            t_nodes = [pool.submit(TahoeNode, peer, tmp_path / n) for n in ("tstore1", "tstore2")]
            tahoes += [f.result() for f in t_nodes]
            for f in shoal_nodes:
                f.result()
        grid.start_client("sclient")
        tclient = start_tahoe_client(peer, tmp_path / "tclient", furl)
        tahoes.append(tclient)
        everyone = {"sstore1", "sstore2", "tstore1", "tstore2"}
        assert nicknames(wait_for_servers(grid.client_url, 4, timeout=90)) == everyone
        assert nicknames(wait_for_servers(tahoe_node_url(tmp_path / "tclient"), 4, timeout=90)) == everyone
    finally:
        for t in tahoes:
            t.stop()
        grid.stop()


def test_tahoe_introducer_with_shoal_storage(peer, tmp_path):
    intro_dir = tmp_path / "tintro"
    tahoe(peer, "create-introducer", "--hostname", "127.0.0.1", str(intro_dir))
    intro = TahoeNode(peer, intro_dir, wait_for="private/introducer.furl")
    nodes = []
    tclient = None
    try:
        furl = (intro_dir / "private" / "introducer.furl").read_text().strip()
        for i in (1, 2):
            d = str(tmp_path / f"s{i}")
            shoal_command("create-node", "--hostname", "127.0.0.1", "--webport", "none",
                          "--nickname", f"shoal{i}", "--introducer", furl, d)
            nodes.append(start_node(d))
        tclient = start_tahoe_client(peer, tmp_path / "tclient", furl)
        status = wait_for_servers(tahoe_node_url(tmp_path / "tclient"), 2, timeout=90)
        assert nicknames(status) == {"shoal1", "shoal2"}
        assert all(s["version"].startswith("shoal/") for s in status["servers"])
    finally:
        if tclient:
            tclient.stop()
        for n in nodes:
            n.stop()
        intro.stop()
