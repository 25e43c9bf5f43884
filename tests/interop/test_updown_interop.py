"""Files cross between shoal and Tahoe-LAFS 1.20 through their web APIs.

1. A shoal introducer and shoal storage nodes: a Tahoe client uploads, a
   shoal client downloads (and the other way round).
2. A Tahoe introducer and Tahoe storage nodes: a shoal client uploads, a
   Tahoe client downloads (and the other way round).
"""

import os

from shoal.testing.grid import Grid, wait_for_servers
from shoal.testing.processes import shoal_command, start_node
from tests.integration.test_updown import get, put
from tests.interop.conftest import TahoeNode
from tests.interop.test_mixed_grid import free_port, tahoe, tahoe_node_url

PARAMS = ("--shares-needed", "2", "--shares-happy", "3", "--shares-total", "4")


def test_tahoe_client_and_shoal_storage(peer, tmp_path):
    grid = Grid(str(tmp_path / "shoal"))
    tclient = None
    try:
        grid.start_introducer()
        for i in range(1, 5):
            grid.add_storage(f"storage{i}")
        grid.start_client("client", *PARAMS)
        wait_for_servers(grid.client_url, 4)
        tdir = tmp_path / "tclient"
        tahoe(peer, "create-client", "--introducer", grid.introducer_furl, *PARAMS,
              "--webport", f"tcp:{free_port()}:interface=127.0.0.1", str(tdir))
        tclient = TahoeNode(peer, tdir, wait_for="node.url")
        turl = tahoe_node_url(tdir)
        wait_for_servers(turl, 4, timeout=90)
        data = os.urandom(3_000_000)
        cap = put(turl, data)
        assert get(grid.client_url, cap)[1] == data  # Tahoe wrote, shoal reads
        data2 = os.urandom(1_234_567)
        cap2 = put(grid.client_url, data2)
        assert get(turl, cap2)[1] == data2  # shoal wrote, Tahoe reads
    finally:
        if tclient:
            tclient.stop()
        grid.stop()


def test_shoal_client_and_tahoe_storage(peer, tmp_path):
    intro_dir = tmp_path / "tintro"
    tahoe(peer, "create-introducer", "--hostname", "127.0.0.1", str(intro_dir))
    nodes = [TahoeNode(peer, intro_dir, wait_for="private/introducer.furl")]
    shoal_client = None
    try:
        furl = (intro_dir / "private" / "introducer.furl").read_text().strip()
        for i in range(1, 5):
            d = tmp_path / f"t{i}"
            tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--webport", "none", "--introducer", furl, str(d))
        nodes += [TahoeNode(peer, tmp_path / f"t{i}") for i in range(1, 5)]
        tdir = tmp_path / "tclient"
        tahoe(peer, "create-client", "--introducer", furl, *PARAMS,
              "--webport", f"tcp:{free_port()}:interface=127.0.0.1", str(tdir))
        nodes.append(TahoeNode(peer, tdir, wait_for="node.url"))
        turl = tahoe_node_url(tdir)
        sdir = str(tmp_path / "sclient")
        shoal_command("create-client", "--webport", "tcp:0:interface=127.0.0.1", "--introducer", furl, *PARAMS, sdir)
        shoal_client = start_node(sdir)
        surl = open(os.path.join(sdir, "node.url")).read().strip()
        wait_for_servers(surl, 4, timeout=90)
        wait_for_servers(turl, 4, timeout=90)
        data = os.urandom(2_500_000)
        cap = put(surl, data)
        assert get(turl, cap)[1] == data  # shoal wrote to Tahoe servers, Tahoe reads
        data2 = os.urandom(700_000)
        cap2 = put(turl, data2)
        assert get(surl, cap2)[1] == data2  # Tahoe wrote, shoal reads from Tahoe servers
    finally:
        if shoal_client:
            shoal_client.stop()
        for n in reversed(nodes):
            n.stop()
