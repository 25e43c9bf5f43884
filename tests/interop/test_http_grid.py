"""A shoal client on a grid of Tahoe-LAFS 1.20 storage nodes, over HTTPS where they offer it.

A Tahoe introducer; three Tahoe storage nodes that announce NURLs (1.20's
default) and one with `[storage] force_foolscap = true` (a FURL only). The
shoal client's welcome JSON says HTTP for the three and Foolscap for the
fourth; immutable files, mutable files and directories go up and come back
through the shoal client, and a Tahoe client reads what shoal wrote. A second
shoal client with `[client] force_foolscap = true` uses Foolscap for all four.
"""

import json
import os
import urllib.parse

import pytest

from shoal.testing.grid import wait_for_servers, web_json
from shoal.testing.processes import set_config, shoal_command, start_node
from tests.integration.test_updown import get, put
from tests.interop.conftest import TahoeNode, free_port, tahoe, tahoe_node_url
from tests.interop.test_dirnode_interop import quoted, web

PARAMS = ("--shares-needed", "2", "--shares-happy", "3", "--shares-total", "4")

pytestmark = pytest.mark.timeout(400)


def protocols(url: str) -> dict[str, str]:
    return {s["nickname"]: s["protocol"] for s in web_json(url)["servers"]}


def shoal_client(tmp_path, name: str, furl: str, *extra_config: tuple[str, str, str]):
    d = str(tmp_path / name)
    shoal_command("create-client", "--webport", "tcp:0:interface=127.0.0.1", "--introducer", furl, *PARAMS, d)
    for section, key, value in extra_config:
        set_config(d, section, key, value)
    node = start_node(d)
    return node, open(os.path.join(d, "node.url")).read().strip()


@pytest.fixture(scope="module")
def tahoe_grid(peer, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http-grid")
    intro_dir = tmp / "tintro"
    tahoe(peer, "create-introducer", "--hostname", "127.0.0.1", str(intro_dir))
    nodes = [TahoeNode(peer, intro_dir, wait_for="private/introducer.furl")]
    try:
        furl = (intro_dir / "private" / "introducer.furl").read_text().strip()
        for i in range(1, 5):
            d = tmp / f"t{i}"
            tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--webport", "none", "--nickname", f"t{i}",
                  "--introducer", furl, str(d))
        set_config(str(tmp / "t4"), "storage", "force_foolscap", "true")  # announces a FURL only
        nodes += [TahoeNode(peer, tmp / f"t{i}") for i in range(1, 5)]
        yield tmp, furl, nodes
    finally:
        for n in reversed(nodes):
            n.stop()


def test_shoal_client_uses_http_where_announced(peer, tahoe_grid):
    tmp, furl, nodes = tahoe_grid
    client, url = shoal_client(tmp, "shoal-http", furl)
    tclient = None
    try:
        wait_for_servers(url, 4, timeout=90)
        assert protocols(url) == {"t1": "HTTP", "t2": "HTTP", "t3": "HTTP", "t4": "Foolscap"}
        status = web_json(url)
        http_rows = [s for s in status["servers"] if s["protocol"] == "HTTP"]
        assert all(s["connection_status"].startswith("Connected to 127.0.0.1:") for s in http_rows)
        assert all(s["version"].startswith("tahoe-lafs/1.20") for s in http_rows)

        small = os.urandom(3000)
        big = os.urandom(1_500_000)
        caps = {put(url, small): small, put(url, big): big}
        for cap, data in caps.items():
            assert get(url, cap)[1] == data

        # mutable: create, read, replace
        mcap = web(url, "PUT", "/uri", b"version one", format="MDMF").strip()
        assert web(url, "GET", quoted(mcap)) == "version one"
        web(url, "PUT", quoted(mcap), b"version two, longer")
        assert web(url, "GET", quoted(mcap)) == "version two, longer"

        # a directory with a child
        dircap = web(url, "POST", "/uri", t="mkdir").strip()
        web(url, "PUT", quoted(dircap, "hello.txt"), b"hi from shoal over HTTPS")
        kind, info = json.loads(web(url, "GET", quoted(dircap), t="json"))
        assert kind == "dirnode" and set(info["children"]) == {"hello.txt"}
        assert web(url, "GET", quoted(dircap, "hello.txt")) == "hi from shoal over HTTPS"

        # a Tahoe client reads what shoal wrote through HTTP
        tdir = tmp / "tclient"
        tahoe(peer, "create-client", "--introducer", furl, *PARAMS,
              "--webport", f"tcp:{free_port()}:interface=127.0.0.1", str(tdir))
        tclient = TahoeNode(peer, tdir, wait_for="node.url")
        turl = tahoe_node_url(tdir)
        wait_for_servers(turl, 4, timeout=90)
        for cap, data in caps.items():
            assert get(turl, cap)[1] == data
        assert web(turl, "GET", "/uri/" + urllib.parse.quote(mcap, safe="")) == "version two, longer"
        assert web(turl, "GET", quoted(dircap, "hello.txt")) == "hi from shoal over HTTPS"
    finally:
        if tclient is not None:
            tclient.stop()
        client.stop()


def test_force_foolscap_client_uses_foolscap_everywhere(tahoe_grid):
    tmp, furl, _ = tahoe_grid
    client, url = shoal_client(tmp, "shoal-foolscap", furl, ("client", "force_foolscap", "true"))
    try:
        wait_for_servers(url, 4, timeout=90)
        assert set(protocols(url).values()) == {"Foolscap"}
        data = os.urandom(100_000)
        assert get(url, put(url, data))[1] == data
    finally:
        client.stop()
