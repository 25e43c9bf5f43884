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

import cbor2
import pytest

from shoal.encoding.base32 import b2a
from shoal.protocol.nurl import Nurl, spki_hash
from shoal.testing.grid import Grid, wait_for_servers, web_json
from shoal.testing.processes import create_storage_node, start_node
from tests.integration.test_http_storage_node import auth_header, https_request
from tests.integration.test_updown import get, put
from tests.interop.conftest import (
    PEER_HTTP_CLIENT,
    PeerClient,
    TahoeNode,
    free_port,
    tahoe,
    tahoe_node_url,
)

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


def wait_for_first_scrub(nodedir: str) -> None:
    """These tests store bytes that are not real shares: let shoal's scrubber finish its first
    cycle (over the empty store, a second after start) first, or it would quarantine them;
    its next cycle is a week away."""
    scrubbed = os.path.join(nodedir, "storage", "scrubber.state.json")
    deadline = time.monotonic() + 30
    while not os.path.exists(scrubbed):
        assert time.monotonic() < deadline, "the scrubber never ran"
        time.sleep(0.1)


@pytest.fixture(scope="module", params=["shoal", "tahoe"])
def http_peer(request, peer, tmp_path_factory):
    nodedir = str(tmp_path_factory.mktemp(f"http-{request.param}") / "node")
    if request.param == "shoal":
        create_storage_node(nodedir)
        node = start_node(nodedir)
        wait_for_first_scrub(nodedir)
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


def status_script(port: int, swissnum: bytes) -> list[tuple[str, int]]:
    """Raw requests a careless or hostile client might send, and the status each gets."""
    si, other = b2a(b"\x03" * 16), b2a(b"\x04" * 16)
    auth = auth_header(swissnum)
    cbor = (b"Content-Type", b"application/cbor")
    secrets = [(b"X-Tahoe-Authorization", b"lease-renew-secret " + base64.b64encode(b"r" * 32)),
               (b"X-Tahoe-Authorization", b"lease-cancel-secret " + base64.b64encode(b"c" * 32))]
    upload = [(b"X-Tahoe-Authorization", b"upload-secret " + base64.b64encode(b"u" * 32))]
    allocate = cbor2.dumps({"share-numbers": {0, 1, 9}, "allocated-size": 4})
    imm = f"/storage/v1/immutable/{si}".encode()
    cases = [
        ("no auth", b"GET", b"/storage/v1/version", [], None),
        ("wrong auth", b"GET", b"/storage/v1/version", [auth_header(b"nope")], None),
        ("unknown path", b"GET", b"/storage/v1/nothing", [auth], None),
        ("wrong method", b"POST", b"/storage/v1/version", [auth], None),
        ("not cbor accepted", b"GET", b"/storage/v1/version", [auth, (b"Accept", b"application/json")], None),
        ("bad storage index", b"GET", f"/storage/v1/immutable/{si.upper()}/shares".encode(), [auth], None),
        ("share number 256", b"GET", imm + b"/256", [auth], None),
        ("lease without secrets", b"PUT", f"/storage/v1/lease/{si}".encode(), [auth], None),
        ("short lease secret", b"PUT", f"/storage/v1/lease/{si}".encode(),
         [auth, (b"X-Tahoe-Authorization", b"lease-renew-secret " + base64.b64encode(b"r")), secrets[1]], None),
        ("lease on nothing", b"PUT", f"/storage/v1/lease/{si}".encode(), [auth, *secrets], None),
        ("garbage allocate", b"POST", imm, [auth, cbor, *secrets, *upload], b"\xff\xfe"),
        ("allocate as json", b"POST", imm, [auth, (b"Content-Type", b"application/json"), *secrets, *upload],
         allocate),
        ("allocate too big", b"POST", imm, [auth, cbor, *secrets, *upload], b"\x00" * 9000),
        ("allocate", b"POST", imm, [auth, cbor, *secrets, *upload], allocate),
        ("write without range", b"PATCH", imm + b"/0", [auth, *upload], b"ab"),
        ("write wrong secret", b"PATCH", imm + b"/0",
         [auth, (b"X-Tahoe-Authorization", b"upload-secret " + base64.b64encode(b"x" * 32)),
          (b"Content-Range", b"bytes 0-1/*")], b"ab"),
        ("write first half", b"PATCH", imm + b"/0", [auth, *upload, (b"Content-Range", b"bytes 0-1/*")], b"ab"),
        ("write conflict", b"PATCH", imm + b"/0", [auth, *upload, (b"Content-Range", b"bytes 1-2/*")], b"XY"),
        ("write rest", b"PATCH", imm + b"/0", [auth, *upload, (b"Content-Range", b"bytes 2-3/*")], b"cd"),
        ("write unallocated", b"PATCH", imm + b"/5", [auth, *upload, (b"Content-Range", b"bytes 0-1/*")], b"ab"),
        ("abort finished", b"PUT", imm + b"/0/abort", [auth, *upload], None),
        ("abort nothing", b"PUT", imm + b"/7/abort", [auth, *upload], None),
        ("abort", b"PUT", imm + b"/1/abort", [auth, *upload], None),
        ("list", b"GET", imm + b"/shares", [auth], None),
        ("read all", b"GET", imm + b"/0", [auth], None),
        ("read range", b"GET", imm + b"/0", [auth, (b"Range", b"bytes=1-2")], None),
        ("read past end", b"GET", imm + b"/0", [auth, (b"Range", b"bytes=4-9")], None),
        ("read open range", b"GET", imm + b"/0", [auth, (b"Range", b"bytes=1-")], None),
        ("read two ranges", b"GET", imm + b"/0", [auth, (b"Range", b"bytes=0-0,2-3")], None),
        ("read missing share", b"GET", imm + b"/3", [auth, (b"Range", b"bytes=0-1")], None),
        ("advise missing", b"POST", imm + b"/3/corrupt", [auth, cbor], cbor2.dumps({"reason": "x"})),
        ("advise empty reason", b"POST", imm + b"/0/corrupt", [auth, cbor], cbor2.dumps({"reason": ""})),
        ("rtw bad body", b"POST", f"/storage/v1/mutable/{si}/read-test-write".encode(),
         [auth, cbor, *secrets, (b"X-Tahoe-Authorization", b"write-enabler " + base64.b64encode(b"w" * 32))],
         cbor2.dumps({"test-write-vectors": [], "read-vector": []})),
        ("mutable read missing", b"GET", f"/storage/v1/mutable/{other}/0".encode(), [auth], None),
        # where Tahoe fails with 500 on a client's mistake and shoal does not (KNOWN_BETTER)
        ("mutable read of an immutable bucket", b"GET", f"/storage/v1/mutable/{si}/0".encode(), [auth], None),
        ("write past the allocated size", b"PATCH", imm + b"/9",
         [auth, *upload, (b"Content-Range", b"bytes 2-5/*")], b"abcd"),
        ("write body shorter than range", b"PATCH", imm + b"/9",
         [auth, *upload, (b"Content-Range", b"bytes 0-3/*")], b"ab"),
    ]
    return [(name, https_request(port, method, path, headers, body)[1]) for name, method, path, headers, body in cases]


# (shoal, Tahoe 1.20): a client's mistake that Tahoe answers with 500
KNOWN_BETTER = {
    "mutable read of an immutable bucket": (400, 500),
    "write past the allocated size": (416, 500),
    "write body shorter than range": (400, 500),
}


def test_status_codes_are_tahoes(peer, tmp_path):
    shoal_dir, tahoe_dir = str(tmp_path / "shoal"), str(tmp_path / "tahoe")
    create_storage_node(shoal_dir)
    tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--webport", "none", tahoe_dir)
    shoal_node = start_node(shoal_dir)
    tahoe_node = TahoeNode(peer, pathlib.Path(tahoe_dir))
    try:
        wait_for_first_scrub(shoal_dir)
        answers = {}
        for name, nodedir in (("shoal", shoal_dir), ("tahoe", tahoe_dir)):
            nurl = Nurl.parse(nurl_of(nodedir))
            answers[name] = status_script(nurl.port, nurl.swissnum.encode())
        shoal, tahoe_ = dict(answers["shoal"]), dict(answers["tahoe"])
        assert [name for name, _ in answers["shoal"]] == [name for name, _ in answers["tahoe"]]
        differ = {name: (shoal[name], tahoe_[name]) for name in shoal if shoal[name] != tahoe_[name]}
        assert differ == KNOWN_BETTER
        assert shoal["write conflict"] == 409 and shoal["abort finished"] == 405
    finally:
        shoal_node.stop()
        tahoe_node.stop()
