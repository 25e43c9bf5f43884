"""Upload and download through a client node's web API on a real grid started
through the CLI (the shared grid: introducer, 7 storage nodes; clients of this
module's own), with faults. Tests that kill servers, or need a full one, start
their own grid."""

import functools
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request

import pytest

from shoal.encoding.base32 import b2a
from shoal.testing.grid import Grid, shares_args, start_grid, wait_for_servers
from shoal.testing.processes import NodeProcess, start_all, stop_all
from tests.conftest import vector_plaintext

STORAGE_NODES = 7
VECTOR_SECRET = b"shoal-test-vectors-convergence!!"


def put(url: str, data: bytes, timeout: float = 300) -> str:
    req = urllib.request.Request(url.rstrip("/") + "/uri", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode().strip()


def get(url: str, cap: str, headers: dict | None = None, timeout: float = 300) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url.rstrip("/") + "/uri/" + cap, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read(), dict(r.headers)


def make_client(grid: Grid, name: str, k: int, happy: int, n: int, segsize: int | None = None) -> NodeProcess:
    """A client with the vectors' convergence secret (and segment size) on `grid`."""
    config = {("client", "shares._max_immutable_segment_size_for_testing"): str(segsize)} if segsize else {}
    return grid.add_client(name, *shares_args(k, happy, n), config=config,
                           files={os.path.join("private", "convergence"): b2a(VECTOR_SECRET) + "\n"})


@pytest.fixture(scope="module")
def grid(shared_grid) -> Grid:
    """The shared grid, with this module's 3-of-7 client as its client."""
    assert len(shared_grid.storage) == STORAGE_NODES
    node = shared_grid.add_client("updown-client", *shares_args(3, 5, 7))
    yield Grid(shared_grid.base, shared_grid.introducer, shared_grid.storage, node)
    node.stop()


@pytest.mark.parametrize("size", [0, 1, 55, 56, 1000, 131073, 3 * 1024 * 1024 + 7])
def test_round_trip_sizes(grid, size):
    data = os.urandom(size)
    cap = put(grid.client_url, data)
    assert cap.startswith("URI:LIT:" if size <= 55 else "URI:CHK:")
    status, body, _ = get(grid.client_url, cap)
    assert status == 200 and body == data


def test_100_mib(grid):
    data = os.urandom(100 * 1024 * 1024)
    cap = put(grid.client_url, data)
    status, body, _ = get(grid.client_url, cap)
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def test_ranges(grid):
    data = os.urandom(2 * 1024 * 1024 + 5)
    cap = put(grid.client_url, data)
    for first, last in [(0, 0), (10, 1_048_600), (1_048_575, 1_048_578), (len(data) - 3, len(data) - 1)]:
        status, body, headers = get(grid.client_url, cap, {"Range": f"bytes={first}-{last}"})
        assert status == 206 and body == data[first : last + 1]
        assert headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    status, body, _ = get(grid.client_url, cap, {"Range": "bytes=-100"})
    assert body == data[-100:]
    with pytest.raises(urllib.error.HTTPError) as e:
        get(grid.client_url, cap, {"Range": f"bytes={len(data)}-"})
    assert e.value.code == 416


def test_caps_match_tahoe_vectors_through_the_grid(grid, tahoe_vectors):
    wanted = {(3, 7, 10, 1048576), (2, 3, 5, 1048576), (1, 1, 1, 1048576), (3, 7, 10, 131072)}
    cases = [c for c in tahoe_vectors["immutable"]
             if (c["k"], c["happy"], c["n"], c["max_segment_size"]) in wanted and c["plaintext"]["size"] <= 1_000_000]
    clients = start_all(
        functools.partial(make_client, grid, f"vec{p[0]}-{p[2]}-{p[3]}", p[0], min(p[1], STORAGE_NODES), p[2],
                          p[3] if p[3] != 1048576 else None)
        for p in sorted(wanted))
    try:
        urls = {p: c.web_url for p, c in zip(sorted(wanted), clients, strict=True)}
        for c in cases:
            url = urls[(c["k"], c["happy"], c["n"], c["max_segment_size"])]
            data = vector_plaintext(c["plaintext"]["seed"], c["plaintext"]["size"])
            assert put(url, data) == c["cap"], c["plaintext"]
            assert get(url, c["cap"])[1] == data
    finally:
        stop_all(clients)


def test_reupload_sends_nothing(grid):
    data = os.urandom(500_000)
    cap = put(grid.client_url, data)
    mtimes = {p: os.stat(p).st_mtime_ns for p in share_files(grid)}
    t = time.monotonic()
    assert put(grid.client_url, data) == cap
    assert time.monotonic() - t < 10
    # the shares were not rewritten (leases may be renewed in place, which keeps files in place)
    assert {p for p in share_files(grid)} == set(mtimes)


def share_files(grid: Grid) -> list[str]:
    out = []
    for node in grid.storage:
        shares = os.path.join(node.nodedir, "storage", "shares")
        for root, dirs, files in os.walk(shares):
            dirs[:] = [d for d in dirs if d != "incoming"]
            out += [os.path.join(root, f) for f in files if f.isdigit()]
    return out


def shares_of(grid: Grid, cap: str) -> list[str]:
    from shoal.caps import parse_cap

    si = b2a(parse_cap(cap).storage_index)
    return [p for p in share_files(grid) if f"/{si}/" in p]


def test_deleted_and_corrupted_shares(grid):
    data = os.urandom(1_500_000)
    cap = put(grid.client_url, data)
    files = shares_of(grid, cap)
    assert len(files) == 7
    for p in files[:2]:
        os.unlink(p)
    for p in files[2:4]:
        raw = bytearray(open(p, "rb").read())
        raw[12 + 0x24 + 1000] ^= 0xFF  # inside the first block
        open(p, "wb").write(bytes(raw))
    assert get(grid.client_url, cap)[1] == data


def test_too_few_shares_is_410(grid):
    data = os.urandom(200_000)
    cap = put(grid.client_url, data)
    for p in shares_of(grid, cap)[:5]:
        os.unlink(p)
    with pytest.raises(urllib.error.HTTPError) as e:
        get(grid.client_url, cap)
    assert e.value.code == 410
    assert b"NotEnoughSharesError" in e.value.read()


def test_malformed_cap_is_400(grid):
    with pytest.raises(urllib.error.HTTPError) as e:
        get(grid.client_url, "URI:CHK:nonsense")
    assert e.value.code == 400


def test_kill_n_minus_k_servers_during_download(tmp_path):
    g = start_grid(str(tmp_path / "g"), storage_nodes=5,
                   client_args=("--shares-needed", "2", "--shares-happy", "5", "--shares-total", "5"))
    try:
        data = os.urandom(40 * 1024 * 1024)
        cap = put(g.client_url, data)
        host, port = g.client_url.split("//")[1].rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        conn.request("GET", "/uri/" + cap)
        resp = conn.getresponse()
        first = resp.read(1024 * 1024)
        for node in g.storage[:3]:
            node.kill9()
        rest = resp.read()
        assert first + rest == data
    finally:
        g.stop()


def test_unhappy_upload_fails_clearly_and_leaves_nothing(grid):
    # happiness one more than the grid has servers: no placement can satisfy it
    servers = len(grid.storage)
    node = grid.add_client("unhappy", *shares_args(2, servers + 1, servers + 2))
    try:
        before = set(share_files(grid))
        with pytest.raises(urllib.error.HTTPError) as e:
            put(node.web_url, os.urandom(300_000))
        text = e.value.read().decode()
        assert "UploadUnhappinessError" in text
        assert "storage1" in text or "v0-" in text  # names the servers it asked
        assert set(share_files(grid)) == before  # no share of the failed upload stayed behind
    finally:
        node.stop()


def test_full_server_is_replaced(tmp_path):
    g = Grid(str(tmp_path / "g"))
    try:
        g.start_introducer()
        start_all([*(functools.partial(g.add_storage, f"storage{i}") for i in range(1, 5)),
                   functools.partial(g.add_storage, "tiny", config={("storage", "max_space"): "50K"}),
                   functools.partial(g.start_client, "client", *shares_args(2, 4, 5))])
        wait_for_servers(g.client_url, 5)
        data = os.urandom(2_000_000)
        cap = put(g.client_url, data)
        assert get(g.client_url, cap)[1] == data
        tiny_shares = [p for p in share_files(g) if "/tiny/" in p]
        assert tiny_shares == []
    finally:
        g.stop()
