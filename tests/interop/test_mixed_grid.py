"""Process-level mixed grids of shoal and Tahoe-LAFS 1.20 nodes.

1. A shoal introducer with 2 shoal and 2 Tahoe storage nodes (the shared mixed
   grid): a shoal client and a Tahoe client each list all four as connected.
2. A Tahoe introducer with shoal storage nodes: a Tahoe client lists them.
"""

import functools

from shoal.testing.grid import wait_for_servers
from shoal.testing.processes import shoal_command, start_all, start_node, stop_all
from tests.interop.conftest import TahoeNode, tahoe, tahoe_client_args, tahoe_node_url


def nicknames(status: dict) -> set[str]:
    return {s["nickname"] for s in status["servers"] if s["connection_status"].lower().startswith("connected")}


def test_shoal_introducer_mixed_grid(mixed_grid):
    sclient = mixed_grid.grid.add_client("sclient", servers=len(mixed_grid.storage))
    try:
        assert nicknames(wait_for_servers(sclient.web_url, 4, timeout=90)) == mixed_grid.storage
        assert nicknames(wait_for_servers(mixed_grid.turl, 4, timeout=90)) == mixed_grid.storage
    finally:
        sclient.stop()


def test_tahoe_introducer_with_shoal_storage(peer, tmp_path):
    intro_dir = tmp_path / "tintro"
    tahoe(peer, "create-introducer", "--hostname", "127.0.0.1", str(intro_dir))
    intro = TahoeNode(peer, intro_dir, wait_for="private/introducer.furl")
    nodes: list = []
    try:
        furl = (intro_dir / "private" / "introducer.furl").read_text().strip()
        tahoe(peer, *tahoe_client_args(tmp_path / "tclient", furl))
        starters = []
        for i in (1, 2):
            d = str(tmp_path / f"s{i}")
            shoal_command("create-node", "--hostname", "127.0.0.1", "--webport", "none",
                          "--nickname", f"shoal{i}", "--introducer", furl, d)
            starters.append(functools.partial(start_node, d))
        nodes += start_all([*starters, functools.partial(TahoeNode, peer, tmp_path / "tclient", "node.url")])
        status = wait_for_servers(tahoe_node_url(tmp_path / "tclient"), 2, timeout=90)
        assert nicknames(status) == {"shoal1", "shoal2"}
        assert all(s["version"].startswith("shoal/") for s in status["servers"])
    finally:
        stop_all([*nodes, intro])
