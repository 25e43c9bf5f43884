"""Mutable files (SDMF and MDMF) cross between shoal and Tahoe-LAFS 1.20 on one grid.

Ten shoal storage servers (a SocketGrid in this process, over real Foolscap) are shared by a
shoal MutableClient and a real Tahoe 1.20 client node (configured with the
same servers in private/servers.yaml, so both see one permuted ring). Each
side creates files, reads the other's, and modifies them (whole overwrite,
and MDMF writes at an offset), and the other side reads the result.
"""

import json
import os
import random
import urllib.request

import pytest
from twisted.internet import defer

from shoal.caps import parse_cap
from shoal.mutable import MutableClient
from shoal.testing.grid import wait_for_servers
from shoal.testing.socket_grid import SocketGrid
from tests.interop.conftest import TahoeNode, free_port, tahoe, tahoe_node_url

K, N = 3, 10


@pytest.fixture(scope="module")
def mixed(peer, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mutable-interop")
    grid = SocketGrid(N)
    node = None
    try:
        tdir = tmp / "tclient"
        tahoe(peer, "create-client", "--shares-needed", str(K), "--shares-happy", "7",
              "--shares-total", str(N), "--webport", f"tcp:{free_port()}:interface=127.0.0.1", str(tdir))
        servers = {
            s.server_id.decode(): {"ann": s.announcement()} for s in grid.servers
        }
        (tdir / "private" / "servers.yaml").write_text(json.dumps({"storage": servers}))
        node = TahoeNode(peer, tdir, wait_for="node.url")
        url = tahoe_node_url(tdir)
        wait_for_servers(url, N, timeout=90)
        client = MutableClient(grid.broker, lease_secret=os.urandom(32), k=K, n=N)
        yield grid, client, url
    finally:
        if node:
            node.stop()
        grid.close()


def http(url: str, method: str = "GET", data: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


def run(grid, fn):
    return grid.call(lambda: defer.ensureDeferred(fn()))


def fresh(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("fmt,size", [("SDMF", 0), ("SDMF", 1000), ("SDMF", 70_000), ("MDMF", 1), ("MDMF", 300_000)])
def test_tahoe_creates_shoal_reads_and_modifies(mixed, fmt, size):
    grid, client, url = mixed
    data = fresh(size, size)
    cap = http(f"{url}/uri?format={fmt}", "PUT", data).decode().strip()
    assert cap.startswith("URI:SSK:" if fmt == "SDMF" else "URI:MDMF:")
    node = client.node_for(parse_cap(cap))
    assert run(grid, node.download_best_version) == data  # Tahoe wrote, shoal reads
    data2 = data[: size // 2] + b"shoal was here" + data[size // 2:]
    run(grid, lambda: node.overwrite(data2))
    assert http(f"{url}/uri/{cap}") == data2  # shoal modified, Tahoe reads
    if fmt == "MDMF":
        run(grid, lambda: node.update(5, b"<in place>"))
        data3 = data2[:5] + b"<in place>" + data2[15:]
        assert http(f"{url}/uri/{cap}") == data3
        ro = parse_cap(cap).readonly().to_string()
        assert http(f"{url}/uri/{ro}") == data3
    else:
        data3 = data2
    data4 = data3 + b"tahoe appended"
    http(f"{url}/uri/{cap}", "PUT", data4)  # Tahoe modifies shoal's version
    assert run(grid, node.download_best_version) == data4


@pytest.mark.parametrize("fmt,size", [("SDMF", 0), ("SDMF", 1024), ("MDMF", 0), ("MDMF", 400_000)])
def test_shoal_creates_tahoe_reads_and_modifies(mixed, fmt, size):
    grid, client, url = mixed
    data = fresh(size, size + 7)
    node = run(grid, lambda: client.create(data, format=fmt))
    cap = node.cap.to_string()
    assert http(f"{url}/uri/{cap}") == data  # shoal wrote, Tahoe reads
    assert http(f"{url}/uri/{node.readonly_cap.to_string()}") == data
    data2 = b"tahoe rewrote " + data
    http(f"{url}/uri/{cap}", "PUT", data2)
    assert run(grid, node.download_best_version) == data2  # Tahoe modified, shoal reads
    if fmt == "MDMF" and size:
        offset = 200_000
        http(f"{url}/uri/{cap}?offset={offset}", "PUT", b"tahoe in place")
        data3 = data2[:offset] + b"tahoe in place" + data2[offset + 14:]
        assert run(grid, node.download_best_version) == data3
        parts: list[bytes] = []
        run(grid, lambda: node.read(parts.append, offset - 3, 20))
        assert b"".join(parts) == data3[offset - 3: offset + 17]
        run(grid, lambda: node.update(len(data3), b"grown by shoal"))
        assert http(f"{url}/uri/{cap}") == data3 + b"grown by shoal"


def test_tahoe_sees_shoal_key_and_seqnum(mixed):
    """Tahoe's JSON view of a shoal file: same format, size, and one version."""
    grid, client, url = mixed
    node = run(grid, lambda: client.create(b"x" * 5000, format="MDMF"))
    run(grid, lambda: node.overwrite(b"y" * 6000))
    info = json.loads(http(f"{url}/uri/{node.cap.to_string()}?t=json"))
    assert info[0] == "filenode"
    assert info[1]["mutable"] is True
    assert info[1]["format"] == "MDMF"
    assert info[1]["size"] == 6000
    check = json.loads(http(f"{url}/uri/{node.cap.to_string()}?t=check&output=JSON", "POST"))
    assert check["results"]["healthy"] is True
    assert check["results"]["count-shares-good"] == N
