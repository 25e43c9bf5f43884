"""A real grid started through the CLI: introducer, 5 storage nodes, a client.

Membership through the introducer, the welcome page in Tahoe's JSON shape,
servers leaving and returning, forged announcements, the announcement cache
when the introducer is gone, and two introducers.
"""

import functools
import os
import urllib.request

import pytest
import yaml
from foolscap.api import Referenceable, RemoteException, Tub

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import b2a
from shoal.protocol.announcement import announcement_dict, sign, storage_announcement
from shoal.testing import reactor_thread
from shoal.testing.grid import Grid, start_grid, wait_for_servers, web_json
from shoal.testing.processes import shoal_command, start_all, start_node, stop_all
from shoal.testing.wait import wait_until

SERVER_KEYS = {"nodeid", "connection_status", "available_space", "nickname", "version", "last_received_data"}


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Grid:
    g = start_grid(str(tmp_path_factory.mktemp("grid")), storage_nodes=5)
    yield g
    g.stop()


def connected(status: dict) -> dict[str, dict]:
    return {s["nickname"]: s for s in status["servers"] if s["connection_status"].startswith("Connected")}


def test_client_sees_every_server_in_tahoes_json_shape(grid):
    status = web_json(grid.client_url)
    assert set(status) == {"introducers", "servers", "helper"}  # Tahoe's keys, and the helper connection
    assert status["helper"] == {"furl": None, "connected": "not-configured", "active_uploads": None}
    assert status["introducers"]["statuses"][0].startswith("Connected")
    assert len(status["servers"]) == 5
    for s in status["servers"]:
        assert set(s) == SERVER_KEYS | {"protocol"}  # Tahoe's keys, and which protocol carries it
        assert s["protocol"] in ("HTTP", "Foolscap")  # HTTP once shoal's servers announce NURLs
        assert s["nodeid"].startswith("v0-") and s["version"].startswith("shoal/")
        assert s["available_space"] > 0 and s["last_received_data"] > 0
    assert set(connected(status)) == {f"storage{i}" for i in range(1, 6)}
    with urllib.request.urlopen(grid.client_url) as r:
        page = r.read().decode()
    assert "5 of 5 connected" in page and "storage3" in page


def test_server_stops_and_comes_back(grid):
    node = grid.storage[0]
    name = os.path.basename(node.nodedir)
    node.stop()
    wait_until(lambda: name not in connected(web_json(grid.client_url)), 30, "the client to notice the server leave")
    grid.storage[0] = start_node(node.nodedir)
    wait_for_servers(grid.client_url, 5, timeout=60)


def announcement(nickname: str, seed: str = "abc") -> dict:
    return announcement_dict(
        "storage", storage_announcement("pb://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@tcp:127.0.0.1:1/x", seed),
        nickname=nickname, my_version="evil/1", seqnum=1, nonce="n",
    )


def test_forged_announcement_is_ignored(grid):
    honest, forger = SigningKey.generate(), SigningKey.generate()
    ann = announcement("forged")
    msg, _sig, _key = sign(ann, forger)
    _msg, _sig2, honest_key = sign(ann, honest)
    forged = (msg, sign(ann, forger)[1], honest_key)  # signed by one key, claiming another
    # a well-signed announcement published after the forged one: once the client lists it,
    # anything the introducer had accepted before it would have reached the client too
    marker = sign(announcement("published-after", b2a(os.urandom(32))), SigningKey.generate())

    tub = Tub()
    reactor_thread.call(tub.startService)
    try:
        rref = reactor_thread.call(tub.getReference, grid.introducer_furl)
        with pytest.raises(RemoteException):
            reactor_thread.call(rref.callRemote, "publish_v2", forged, Referenceable())
        reactor_thread.call(rref.callRemote, "publish_v2", marker, Referenceable())
    finally:
        reactor_thread.call(tub.stopService)

    def listed() -> set[str] | None:
        names = {s["nickname"] for s in web_json(grid.client_url)["servers"]}
        return names if "published-after" in names else None

    nicknames = wait_until(listed, 30, "the client to list the announcement published after the forged one")
    assert "forged" not in nicknames


def test_two_introducers(grid, tmp_path):
    second = os.path.join(str(tmp_path), "intro2")
    shoal_command("create-introducer", "--hostname", "127.0.0.1", second)
    intro2 = start_node(second)
    nodes = []
    try:
        furl2 = intro2.read_private("introducer.furl")
        both = os.path.join(str(tmp_path), "both")
        shoal_command("create-node", "--hostname", "127.0.0.1", "--webport", "none", "--nickname", "both", both)
        with open(os.path.join(both, "private", "introducers.yaml"), "w") as f:
            yaml.safe_dump({"introducers": {"one": {"furl": grid.introducer_furl}, "two": {"furl": furl2}}}, f)
        only2 = os.path.join(str(tmp_path), "only2")
        shoal_command("create-client", "--webport", "tcp:0:interface=127.0.0.1", "--introducer", furl2, only2)
        nodes += start_all([functools.partial(start_node, both), functools.partial(start_node, only2)])
        with open(os.path.join(only2, "node.url")) as f:
            url = f.read().strip()
        status = wait_for_servers(url, 1)
        assert [s["nickname"] for s in status["servers"]] == ["both"]  # it announced to both
        wait_for_servers(grid.client_url, 6)
    finally:
        stop_all([*nodes, intro2])


def test_restarted_client_uses_cache_when_introducer_is_down(grid):
    stop_all([grid.introducer, grid.client])
    cache = os.path.join(grid.client.nodedir, "private", "introducer_default_cache.yaml")
    assert os.path.exists(cache)
    grid.client = start_node(grid.client.nodedir)
    status = wait_for_servers(grid.client_url, 5, timeout=60)
    assert not status["introducers"]["statuses"][0].startswith("Connected")
    grid.introducer = start_node(grid.introducer.nodedir)
