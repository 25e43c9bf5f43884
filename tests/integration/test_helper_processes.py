"""The upload helper with real node processes: a client on the shared grid reaches a shoal
helper node through a relay (shoal.testing.tcp_relay) that counts and paces the client's link.

An upload through the helper sends about the file's size over that link (a direct
3-of-10 upload sends 3.3x); the same file again sends nothing; a link cut mid-upload
fails the upload and the retry sends only the rest; a helper that is gone mid-upload
fails the upload clearly (and, restarted, resumes from what it kept); a helper that is unreachable
makes the client upload directly.
"""

import glob
import os
import threading
import types
import urllib.error
import urllib.request

import pytest

from shoal.crypto import hashes
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import a2b, b2a
from shoal.immutable.params import EncodingParams
from shoal.testing.grid import Grid, shares_args, wait_for_servers, web_json
from shoal.testing.processes import NodeProcess, create, set_config, start_node
from shoal.testing.tcp_relay import Relay, relay_furl
from shoal.testing.wait import wait_until
from tests.conftest import SHARED_STORAGE_NODES

MiB = 1024 * 1024
K, HAPPY, N = 3, 5, 10


def put(url: str, data: bytes, timeout: float = 120) -> str:
    req = urllib.request.Request(url.rstrip("/") + "/uri", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode().strip()


def get(url: str, cap: str) -> bytes:
    with urllib.request.urlopen(url.rstrip("/") + "/uri/" + cap, timeout=120) as r:
        return r.read()


def tub_port(node: NodeProcess) -> int:
    with open(os.path.join(node.nodedir, "tahoe.cfg"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("tub.port"):
                return int(line.split("=", 1)[1].strip().split(":")[1])
    raise AssertionError("no tub.port")


def start_helper_node(grid: Grid, name: str) -> NodeProcess:
    d = os.path.join(grid.base, name)
    if not os.path.exists(d):
        create("create-node", "--hostname", "127.0.0.1", "--webport", "tcp:0:interface=127.0.0.1",
               "--no-storage", "--nickname", name, "--introducer", grid.introducer_furl, d)
        set_config(d, "helper", "enabled", "true")
    node = start_node(d)
    wait_for_servers(node.web_url, SHARED_STORAGE_NODES)
    return node


def storage_index_of(client: NodeProcess, data: bytes) -> str:
    """The base32 storage index `client` gives `data` (its convergence secret, K-of-N)."""
    secret = a2b(client.read_private("convergence"))
    segment_size = EncodingParams(K, HAPPY, N).segment_size_for(len(data))
    return b2a(hashes.storage_index_hash(convergent_key([data], secret, K, N, segment_size)))


def helper_connected(client: NodeProcess) -> str:
    return web_json(client.web_url)["helper"]["connected"]


@pytest.fixture(scope="module")
def setup(shared_grid):
    helper = start_helper_node(shared_grid, "helper")
    relay = Relay(tub_port(helper))
    furl = relay_furl(helper.read_private("helper.furl"), relay.port)
    client = shared_grid.add_client("helped", *shares_args(K, HAPPY, N), config={("client", "helper.furl"): furl})
    wait_until(lambda: helper_connected(client) == "yes", 30, "the client connected to its helper")
    env = types.SimpleNamespace(grid=shared_grid, helper=helper, relay=relay, client=client)
    yield env
    client.stop()
    env.helper.stop()  # the one running now (a test restarts it)
    relay.close()


def helper_stats(helper: NodeProcess) -> dict:
    return web_json(helper.web_url, "helper_status?t=json")


def test_helper_furl_is_private_and_the_welcome_page_shows_the_connection(setup):
    helper, client = setup.helper, setup.client
    assert os.stat(helper.private("helper.furl")).st_mode & 0o777 == 0o600
    shown = web_json(client.web_url)["helper"]
    assert shown["connected"] == "yes" and shown["furl"].endswith("/[censored]")
    assert helper.read_private("helper.furl").rsplit("/", 1)[1] not in str(shown)
    assert web_json(helper.web_url)["helper"]["active_uploads"] == 0


def test_upload_through_the_helper_sends_about_the_file_size(setup):
    grid, helper, relay, client = setup.grid, setup.helper, setup.relay, setup.client
    data = os.urandom(2 * MiB)
    before = relay.up
    cap = put(client.web_url, data)
    sent = relay.up - before
    assert len(data) <= sent < 1.05 * len(data), sent  # a direct 3-of-10 upload sends 3.3x
    assert get(grid.client_url, cap) == data  # another client reads it from the storage servers
    stats = helper_stats(helper)
    assert stats["chk_upload_helper.fetched_bytes"] >= len(data)
    assert stats["chk_upload_helper.active_uploads"] == 0
    assert stats["chk_upload_helper.incoming_count"] == stats["chk_upload_helper.encoding_count"] == 0

    # the same file again: the helper finds it in the grid, no ciphertext crosses the link
    before = relay.up
    assert put(client.web_url, data) == cap
    assert relay.up - before < 20_000
    assert helper_stats(helper)["chk_upload_helper.upload_already_present"] >= 1


def test_a_cut_link_fails_the_upload_and_the_retry_sends_only_the_rest(setup):
    grid, helper, relay, client = setup.grid, setup.helper, setup.relay, setup.client
    data = os.urandom(3 * MiB)
    outcome: dict = {}
    relay.rate = 1.5 * MiB  # a slow uplink, so the cut comes mid-upload
    fetched0 = helper_stats(helper)["chk_upload_helper.fetched_bytes"]

    def upload() -> None:
        try:
            outcome["cap"] = put(client.web_url, data)
        except urllib.error.HTTPError as e:
            outcome["error"] = (e.code, e.read().decode())

    t = threading.Thread(target=upload)
    t.start()
    try:
        wait_until(lambda: helper_stats(helper)["chk_upload_helper.fetched_bytes"] - fetched0 >= MiB, 30,
                   "a third of the file at the helper")
        relay.cut()
        t.join(60)
    finally:
        relay.rate = None
    code, text = outcome["error"]
    assert code >= 500 and "resumes" in text, outcome
    held = helper_stats(helper)["chk_upload_helper.incoming_size"]
    assert MiB <= held < len(data)

    wait_until(lambda: helper_connected(client) == "yes", 60, "the client reconnected to its helper")
    before = relay.up
    cap = put(client.web_url, data)
    sent = relay.up - before
    assert len(data) - held <= sent < len(data) - held + 100_000, (sent, held)
    assert get(grid.client_url, cap) == data
    stats = helper_stats(helper)
    assert stats["chk_upload_helper.resumes"] >= 1 and stats["chk_upload_helper.incoming_count"] == 0


def test_an_unreachable_helper_makes_the_client_upload_directly(setup):
    grid, relay, client = setup.grid, setup.relay, setup.client
    relay.refuse = True
    relay.cut()
    try:
        wait_until(lambda: helper_connected(client) == "no", 30, "the client lost its helper")
        data = os.urandom(300_000)
        before = relay.up
        cap = put(client.web_url, data)
        assert relay.up == before
        assert get(grid.client_url, cap) == data
    finally:
        relay.refuse = False
    wait_until(lambda: helper_connected(client) == "yes", 60, "the client reconnected to its helper")


def test_a_helper_killed_mid_upload_fails_it_clearly_and_its_restart_resumes(setup):
    grid, helper, relay, client = setup.grid, setup.helper, setup.relay, setup.client
    data = os.urandom(2 * MiB)
    outcome: dict = {}
    relay.rate = 1 * MiB
    fetched0 = helper_stats(helper)["chk_upload_helper.fetched_bytes"]

    def upload() -> None:
        try:
            outcome["cap"] = put(client.web_url, data)
        except urllib.error.HTTPError as e:
            outcome["error"] = (e.code, e.read().decode())

    t = threading.Thread(target=upload)
    t.start()
    try:
        wait_until(lambda: helper_stats(helper)["chk_upload_helper.fetched_bytes"] - fetched0 >= 512 * 1024, 30,
                   "part of the file at the helper")
        helper.kill9()
        t.join(60)
    finally:
        relay.rate = None
    code, text = outcome["error"]
    assert code >= 500 and "upload helper" in text and "URI:" not in text, outcome
    # nothing half-written counts as uploaded: no storage server holds a share of it
    si = storage_index_of(client, data)
    assert not [p for node in grid.storage for p in glob.glob(os.path.join(node.nodedir, "storage", "shares",
                                                                            "*", si))]
    held = os.stat(os.path.join(helper.nodedir, "helper", "CHK_incoming", si)).st_size
    assert 512 * 1024 <= held < len(data)

    # the helper comes back on its port; the client reconnects; the same file sends only the rest
    setup.helper = helper = start_node(helper.nodedir)
    wait_for_servers(helper.web_url, SHARED_STORAGE_NODES)
    wait_until(lambda: helper_connected(client) == "yes", 60, "the client reconnected to its helper")
    before = relay.up
    cap = put(client.web_url, data)
    sent = relay.up - before
    assert len(data) - held <= sent < len(data) - held + 100_000, (sent, held)
    assert get(grid.client_url, cap) == data
    assert helper_stats(helper)["chk_upload_helper.resumes"] == 1
