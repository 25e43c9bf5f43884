"""Files cross between shoal and Tahoe-LAFS 1.20 through their web APIs.

1. A shoal introducer and shoal storage nodes (the shared grid): a Tahoe client
   uploads, a shoal client downloads (and the other way round).
2. A Tahoe introducer and Tahoe storage nodes: a shoal client uploads, a
   Tahoe client downloads (and the other way round).
"""

import functools
import os

from shoal.testing.grid import wait_for_servers
from shoal.testing.processes import shoal_command, start_all, start_node, stop_all
from tests.integration.test_updown import get, put
from tests.interop.conftest import TahoeNode, tahoe, tahoe_all, tahoe_client_args, tahoe_node_url

PARAMS = ("--shares-needed", "2", "--shares-happy", "3", "--shares-total", "4")


def test_tahoe_client_and_shoal_storage(peer, shared_grid, tmp_path):
    tdir = tmp_path / "tclient"
    tahoe(peer, *tahoe_client_args(tdir, shared_grid.introducer_furl, *PARAMS))
    tclient = TahoeNode(peer, tdir, wait_for="node.url")
    try:
        turl = tahoe_node_url(tdir)
        wait_for_servers(turl, len(shared_grid.storage), timeout=90)
        data = os.urandom(3_000_000)
        cap = put(turl, data)
        assert get(shared_grid.client_url, cap)[1] == data  # Tahoe wrote, shoal reads
        data2 = os.urandom(1_234_567)
        cap2 = put(shared_grid.client_url, data2)
        assert get(turl, cap2)[1] == data2  # shoal wrote, Tahoe reads
    finally:
        tclient.stop()


def test_shoal_client_and_tahoe_storage(peer, tmp_path):
    intro_dir = tmp_path / "tintro"
    tahoe(peer, "create-introducer", "--hostname", "127.0.0.1", str(intro_dir))
    nodes: list = [TahoeNode(peer, intro_dir, wait_for="private/introducer.furl")]
    try:
        furl = (intro_dir / "private" / "introducer.furl").read_text().strip()
        tdir, sdir = tmp_path / "tclient", str(tmp_path / "sclient")
        tahoe_all(peer, *(("create-node", "--hostname", "127.0.0.1", "--webport", "none", "--introducer", furl,
                           str(tmp_path / f"t{i}")) for i in range(1, 5)),
                  tahoe_client_args(tdir, furl, *PARAMS))
        shoal_command("create-client", "--webport", "tcp:0:interface=127.0.0.1", "--introducer", furl, *PARAMS, sdir)
        nodes += start_all([*(functools.partial(TahoeNode, peer, tmp_path / f"t{i}") for i in range(1, 5)),
                            functools.partial(TahoeNode, peer, tdir, "node.url"),
                            functools.partial(start_node, sdir)])
        turl = tahoe_node_url(tdir)
        surl = nodes[-1].web_url
        wait_for_servers(surl, 4, timeout=90)
        wait_for_servers(turl, 4, timeout=90)
        data = os.urandom(2_500_000)
        cap = put(surl, data)
        assert get(turl, cap)[1] == data  # shoal wrote to Tahoe servers, Tahoe reads
        data2 = os.urandom(700_000)
        cap2 = put(turl, data2)
        assert get(surl, cap2)[1] == data2  # Tahoe wrote, shoal reads from Tahoe servers
    finally:
        stop_all(nodes)
