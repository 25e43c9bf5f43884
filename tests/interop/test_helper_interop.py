"""The upload helper across implementations, on the mixed grid (2 shoal and 2 Tahoe 1.20
storage nodes): a Tahoe 1.20 client uploads through a shoal helper, a shoal client
through a Tahoe 1.20 helper; each file is read back by both implementations, and each
helper's own counters say it fetched the ciphertext."""

import os
import urllib.request

import pytest

from shoal.testing.grid import shares_args, wait_for_servers, web_json
from shoal.testing.processes import create, set_config, start_node
from shoal.testing.wait import wait_until
from tests.integration.test_updown import get, put
from tests.interop.conftest import (
    MIXED_SHARES,
    TahoeNode,
    free_port,
    tahoe,
    tahoe_client_args,
    tahoe_node_url,
)

SERVERS = 4


def tahoe_welcome(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def helpers(peer, mixed_grid, tmp_path_factory):
    """A shoal helper node and a Tahoe helper node (no storage) on the mixed grid."""
    tmp = tmp_path_factory.mktemp("helpers")
    sdir = str(tmp / "shelper")
    create("create-node", "--hostname", "127.0.0.1", "--webport", "tcp:0:interface=127.0.0.1", "--no-storage",
           "--nickname", "shelper", "--introducer", mixed_grid.furl, sdir)
    set_config(sdir, "helper", "enabled", "true")
    tdir = tmp / "thelper"
    tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--webport", f"tcp:{free_port()}:interface=127.0.0.1",
          "--no-storage", "--helper", "--nickname", "thelper", "--introducer", mixed_grid.furl, str(tdir))
    shoal_helper = start_node(sdir)
    tahoe_helper = None
    try:
        tahoe_helper = TahoeNode(peer, tdir, wait_for="private/helper.furl")
        wait_for_servers(shoal_helper.web_url, SERVERS, timeout=90)
        wait_for_servers(tahoe_node_url(tdir), SERVERS, timeout=90)
        yield tmp, shoal_helper, tahoe_helper, tahoe_node_url(tdir)
    finally:
        shoal_helper.stop()
        if tahoe_helper is not None:
            tahoe_helper.stop()


def test_a_tahoe_client_through_a_shoal_helper(peer, mixed_grid, helpers):
    tmp, shoal_helper, _, _ = helpers
    k, happy, n = MIXED_SHARES
    cdir = tmp / "tclient-helped"
    tahoe(peer, *tahoe_client_args(cdir, mixed_grid.furl, *shares_args(k, happy, n)))
    set_config(str(cdir), "client", "helper.furl", shoal_helper.read_private("helper.furl"))
    tclient = TahoeNode(peer, cdir, wait_for="node.url")
    try:
        turl = tahoe_node_url(cdir)
        wait_for_servers(turl, SERVERS, timeout=90)
        wait_until(lambda: "Helper not connected" not in tahoe_welcome(turl), 60, "the Tahoe client's helper")
        before = web_json(shoal_helper.web_url, "helper_status?t=json")
        data = os.urandom(1_500_000)
        cap = put(turl, data)
        after = web_json(shoal_helper.web_url, "helper_status?t=json")
        assert after["chk_upload_helper.fetched_bytes"] - before["chk_upload_helper.fetched_bytes"] == len(data)
        assert after["chk_upload_helper.upload_need_upload"] == before["chk_upload_helper.upload_need_upload"] + 1
        shoal_client = mixed_grid.grid.add_client("sreader-helper", *shares_args(k, happy, n), servers=SERVERS)
        assert get(shoal_client.web_url, cap)[1] == data  # shoal reads what Tahoe uploaded via shoal's helper
        assert get(mixed_grid.turl, cap)[1] == data  # and so does another Tahoe client
        # the same file again: the shoal helper finds it in the grid and fetches nothing
        assert put(turl, data) == cap
        again = web_json(shoal_helper.web_url, "helper_status?t=json")
        assert again["chk_upload_helper.fetched_bytes"] == after["chk_upload_helper.fetched_bytes"]
        assert again["chk_upload_helper.upload_already_present"] == after["chk_upload_helper.upload_already_present"] + 1
    finally:
        tclient.stop()


def test_a_shoal_client_through_a_tahoe_helper(peer, mixed_grid, helpers):
    _, _, tahoe_helper, tahoe_helper_url = helpers
    k, happy, n = MIXED_SHARES
    furl = (tahoe_helper.nodedir / "private" / "helper.furl").read_text().strip()
    client = mixed_grid.grid.add_client("shelped", *shares_args(k, happy, n), config={("client", "helper.furl"): furl},
                                        servers=SERVERS)
    try:
        wait_until(lambda: web_json(client.web_url)["helper"]["connected"] == "yes", 60, "the shoal client's helper")
        before = web_json(tahoe_helper_url, "helper_status?t=json")
        data = os.urandom(1_200_000)
        cap = put(client.web_url, data)
        after = web_json(tahoe_helper_url, "helper_status?t=json")
        assert after["chk_upload_helper.fetched_bytes"] - before.get("chk_upload_helper.fetched_bytes", 0) == len(data)
        assert get(mixed_grid.turl, cap)[1] == data  # Tahoe reads what shoal uploaded via Tahoe's helper
        assert get(client.web_url, cap)[1] == data
        # the same file again: Tahoe's helper says it is in the grid, the cap is the same
        assert put(client.web_url, data) == cap
        assert web_json(tahoe_helper_url, "helper_status?t=json")["chk_upload_helper.upload_already_present"] >= 1
    finally:
        client.stop()
