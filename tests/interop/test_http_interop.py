"""Tahoe-LAFS 1.20 speaking its HTTP storage protocol to shoal storage nodes.

1. Tahoe's own HTTP storage client (allmydata.storage.http_client, run by the
   reference peer's Python) drives every endpoint of a node found by its
   NURL: the same script, the same answers and status codes from a shoal
   node and from a Tahoe 1.20 node.
2. A Tahoe 1.20 client node on a shoal grid uploads and downloads immutable
   files, a mutable file and a directory. It is proven to have used HTTP:
   every shoal storage node counted HTTPS connections and HTTP writes and
   reads, and its Foolscap storage service took no upload, read, mutable or
   lease call (the other storage nodes' brokers ask it only for its version).
"""

import base64
import json
import os
import pathlib
import time
import urllib.error
import urllib.request

import pytest

from shoal.protocol.nurl import Nurl, spki_hash
from shoal.testing.grid import Grid, wait_for_servers, web_json
from shoal.testing.processes import create_storage_node, start_node
from tests.integration.test_updown import get, put
from tests.interop.conftest import PEER_HTTP_CLIENT, PeerClient, TahoeNode
from tests.interop.test_mixed_grid import free_port, tahoe, tahoe_node_url

PARAMS = ("--shares-needed", "2", "--shares-happy", "3", "--shares-total", "4")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def nurl_of(nodedir: str) -> str:
    """The NURL a node (shoal or Tahoe) announces, from its storage FURL and certificate."""
    with open(os.path.join(nodedir, "private", "storage.furl")) as f:
        furl = f.read().strip()
    port = int(furl.split("@")[1].split("/")[0].split(":")[-1])
    with open(os.path.join(nodedir, "private", "node.pem"), "rb") as f:
        pin = spki_hash(f.read())
    return Nurl(pin, "127.0.0.1", port, furl.rsplit("/", 1)[1]).to_text()


@pytest.fixture(scope="module", params=["shoal", "tahoe"])
def http_peer(request, peer, tmp_path_factory):
    nodedir = str(tmp_path_factory.mktemp(f"http-{request.param}") / "node")
    if request.param == "shoal":
        create_storage_node(nodedir)
        node = start_node(nodedir)
        # these tests store bytes that are not real shares: let the scrubber's first
        # cycle (over the empty store, within a second of start) pass before, or it
        # would quarantine them; the next one is a week away
        scrubbed = os.path.join(nodedir, "storage", "scrubber.state.json")
        deadline = time.monotonic() + 30
        while not os.path.exists(scrubbed):
            assert time.monotonic() < deadline, "the scrubber never ran"
            time.sleep(0.1)
    else:
        tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--webport", "none", nodedir)
        node = TahoeNode(peer, pathlib.Path(nodedir))
    client = PeerClient(peer, nurl_of(nodedir), script=PEER_HTTP_CLIENT)
    client.server = request.param
    yield client
    client.close()
    node.stop()


SI, SLOT = b64(b"\x01" * 16), b64(b"\x02" * 16)
UP, OTHER = b64(b"u" * 32), b64(b"o" * 32)
RENEW, CANCEL, WE = b64(b"r" * 32), b64(b"c" * 32), b64(b"w" * 32)


def test_tahoes_http_client_uploads_reads_and_aborts(http_peer):
    version = http_peer(op="version")
    assert version["application-version"].startswith(f"{http_peer.server}")
    assert version["available-space"] > 0
    created = http_peer(op="create", si=SI, shares=[0, 1, 2], size=10, upload=UP, renew=RENEW, cancel=CANCEL)
    assert created == {"already": [], "allocated": [0, 1, 2]}
    first = http_peer(op="write", si=SI, shnum=0, upload=UP, offset=0, data=b64(b"01234"))
    assert first == {"finished": False, "required": [[5, 10]]}
    assert http_peer(op="write", si=SI, shnum=0, upload=UP, offset=3, data=b64(b"XX")) == {"status": 409}
    assert http_peer(op="write", si=SI, shnum=0, upload=OTHER, offset=5, data=b64(b"56789")) == {"status": 401}
    done = http_peer(op="write", si=SI, shnum=0, upload=UP, offset=5, data=b64(b"56789"))
    assert done == {"finished": True, "required": []}
    assert http_peer(op="abort", si=SI, shnum=1, upload=UP) == {}
    assert http_peer(op="write", si=SI, shnum=1, upload=UP, offset=0, data=b64(b"x")) == {"status": 404}
    assert http_peer(op="abort", si=SI, shnum=0, upload=UP) == {"status": 405}
    assert http_peer(op="list", si=SI) == {"shares": [0]}
    assert base64.b64decode(http_peer(op="read", si=SI, shnum=0, offset=2, length=3)["data"]) == b"234"
    assert base64.b64decode(http_peer(op="read", si=SI, shnum=0, offset=8, length=50)["data"]) == b"89"
    assert http_peer(op="read", si=SI, shnum=0, offset=10, length=5) == {"data": ""}
    assert http_peer(op="read", si=SI, shnum=7, offset=0, length=5) == {"status": 404}
    again = http_peer(op="create", si=SI, shares=[0, 1], size=10, upload=OTHER, renew=RENEW, cancel=CANCEL)
    assert again == {"already": [0], "allocated": [1]}
    assert http_peer(op="lease", si=SI, renew=b64(b"R" * 32), cancel=CANCEL) == {}
    assert http_peer(op="lease", si=b64(b"\x09" * 16), renew=RENEW, cancel=CANCEL) == {"status": 404}
    assert http_peer(op="advise", kind="immutable", si=SI, shnum=5, reason="bad") == {"status": 404}
    assert http_peer(op="advise", kind="immutable", si=SI, shnum=0, reason="block hash mismatch") == {}


def test_tahoes_http_client_mutable_round_trip(http_peer):
    write = {"0": {"test": [[0, 0, ""]], "write": [[0, b64(b"hello world")]]},
             "1": {"test": [], "write": [[0, b64(b"second")]]}}
    result = http_peer(op="rtw", si=SLOT, we=WE, renew=RENEW, cancel=CANCEL, tw=write, read=[[0, 5]])
    assert result == {"success": True, "reads": {}}
    assert http_peer(op="mutable_list", si=SLOT) == {"shares": [0, 1]}
    data = http_peer(op="mutable_read", si=SLOT, shnum=0, offset=6, length=100)["data"]
    assert base64.b64decode(data) == b"world"
    failed = http_peer(op="rtw", si=SLOT, we=WE, renew=RENEW, cancel=CANCEL, read=[[0, 5]],
                       tw={"0": {"test": [[0, 5, b64(b"HELLO")]], "write": [[0, b64(b"x")]]}})
    assert failed == {"success": False, "reads": {"0": [b64(b"hello")], "1": [b64(b"secon")]}}
    wrong_we = http_peer(op="rtw", si=SLOT, we=b64(b"v" * 32), renew=RENEW, cancel=CANCEL,
                         tw={"0": {"test": [], "write": [[0, b64(b"x")]]}})
    assert wrong_we == {"status": 401}
    assert http_peer(op="mutable_read", si=SLOT, shnum=5, offset=0, length=5) == {"status": 404}
    assert http_peer(op="advise", kind="mutable", si=SLOT, shnum=1, reason="bad signature") == {}


def stats(node) -> dict:
    with open(os.path.join(node.nodedir, "node.url")) as f:
        return web_json(f.read().strip(), "statistics?t=json")["stats"]


def request(url: str, method: str, data: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {url}: {e.code} {e.read()[:2000]!r}") from None


def test_tahoe_client_node_uses_http_to_shoal_storage(peer, tmp_path):
    grid = Grid(str(tmp_path / "shoal"))
    tclient = None
    try:
        grid.start_introducer()
        for i in range(1, 5):
            grid.add_storage(f"storage{i}", "--webport", "tcp:0:interface=127.0.0.1")
        tdir = tmp_path / "tclient"
        tahoe(peer, "create-client", "--introducer", grid.introducer_furl, *PARAMS,
              "--webport", f"tcp:{free_port()}:interface=127.0.0.1", str(tdir))
        tclient = TahoeNode(peer, tdir, wait_for="node.url")
        turl = tahoe_node_url(tdir).rstrip("/")
        wait_for_servers(turl, 4, timeout=90)

        data = os.urandom(1_500_000)
        cap = put(turl, data)
        assert get(turl, cap)[1] == data

        mutable = request(turl + "/uri?format=MDMF", "PUT", b"first version").decode().strip()
        assert mutable.startswith("URI:MDMF:")
        request(turl + "/uri/" + mutable, "PUT", b"second, longer version")
        assert get(turl, mutable)[1] == b"second, longer version"
        sdmf = request(turl + "/uri?format=SDMF", "PUT", b"small mutable").decode().strip()
        assert get(turl, sdmf)[1] == b"small mutable"

        dircap = request(turl + "/uri?t=mkdir", "POST").decode().strip()
        request(f"{turl}/uri/{dircap}/hello.txt", "PUT", b"hello from tahoe")
        listing = json.loads(request(f"{turl}/uri/{dircap}?t=json", "GET"))
        assert list(listing[1]["children"]) == ["hello.txt"]
        assert get(turl, f"{dircap}/hello.txt")[1] == b"hello from tahoe"

        totals = {"immutable_write": 0, "immutable_read": 0, "mutable_read_test_write": 0, "mutable_read": 0}
        for node in grid.storage:
            s = stats(node)
            foolscap = {k: v for k, v in s.items() if k.startswith("storage_server.foolscap.")}
            assert set(foolscap) <= {"storage_server.foolscap.get_version"}, foolscap  # no fallback
            assert s["storage_server.http.connections_https"] >= 1
            assert s["storage_server.http.version"] >= 1
            for name in totals:
                totals[name] += s.get(f"storage_server.http.{name}", 0)
        assert all(count > 0 for count in totals.values()), totals
    finally:
        if tclient:
            tclient.stop()
        grid.stop()
