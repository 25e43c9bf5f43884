"""A Tahoe-LAFS 1.20 client (the reference peer) on its own namespace host, using the
shoal storage hosts of the namespace grid across 50 ms round trips: it uploads and
downloads, its shares land on the shoal servers, and a shoal client reads its file."""

import os
import pathlib
import subprocess

import pytest

from shoal.testing.grid import shares_args, wait_for_servers
from tests.netgrid.conftest import STORAGE, get, put, share_files

TAHOE = pathlib.Path(__file__).resolve().parents[2] / ".venv-peer" / "bin" / "tahoe"


@pytest.fixture
def tahoe_client(net):
    if not TAHOE.exists():
        if os.environ.get("SHOAL_REQUIRE_PEER") == "1":
            pytest.fail("the reference peer .venv-peer is missing (make peer)")
        pytest.skip("reference peer .venv-peer not installed (make peer)")
    name = "t1"
    if name not in net.hosts:
        net.add_host(name)
    nodedir = os.path.join(net.base, "tahoe-t1")
    if not os.path.exists(nodedir):
        subprocess.run([str(TAHOE), "create-client", *net.web_args(name), "--nickname", name,
                        "--introducer", net.introducer_furl, *shares_args(2, 3, 4), nodedir],
                       check=True, capture_output=True, timeout=120)
    node = net.start_tahoe(name, str(TAHOE), nodedir, "node.url")
    try:
        yield net.web_url(name)
    finally:
        node.stop()
        net.processes.remove(node)


def test_a_tahoe_client_uses_shoal_storage_hosts_across_50ms_links(net, tahoe_client):
    net.set_round_trip(0.05)  # every host, the Tahoe client's too
    wait_for_servers(tahoe_client, len(STORAGE), timeout=120)
    data = os.urandom(1_200_000)
    cap = put(tahoe_client, data)
    assert cap.startswith("URI:CHK:")
    assert get(tahoe_client, cap) == data
    assert len(share_files(net, cap=cap)) >= 3  # happy 3: on shoal storage hosts
    assert get(net.web_url("c1"), cap) == data  # and a shoal client reads what Tahoe wrote
