"""Issue #15 on a real grid (introducer, 2 storage nodes, a client node with the
blob service): hostile child names, client mistakes that were 500s, caps kept
out of the log, files holding caps kept private."""

import json
import os
import socket
import subprocess
import sys
import types
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from shoal.encoding.netstring import netstring
from shoal.formats.dirnode import pack_entry
from shoal.testing.grid import Grid
from tests.integration.test_blobs import BlobHTTP, start_blob_client
from tests.integration.test_web import request

HUGE = "9" * 5000  # past Python's 4,300-digit int limit


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    g = Grid(str(tmp_path_factory.mktemp("harden")))
    try:
        g.start_introducer()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(g.add_storage, ["storage1", "storage2"]))
        client, blob_url = start_blob_client(g, "client", shares=(1, 2, 2))
        with open(os.path.join(client.nodedir, "node.url")) as f:
            url = f.read().strip().rstrip("/")
        yield types.SimpleNamespace(grid=g, client=client, url=url, blob_url=blob_url, nodedir=client.nodedir)
    finally:
        g.stop()


def u(cap: str, *path: str) -> str:
    return "/uri/" + quote(cap, safe="") + "".join("/" + quote(p, safe="") for p in path)


def children(url: str, dircap: str) -> dict:
    kind, data = request(url, "GET", u(dircap) + "?t=json").json()
    return data["children"]


BAD = ["../x", "../../pwned", "/abs/path", "..", ".", "a\x00b"]


def test_names_that_are_not_one_path_component_are_refused(grid):
    url = grid.url
    dircap = request(url, "POST", "/uri?t=mkdir").text
    file_cap = request(url, "PUT", "/uri", b"hello " * 20).text
    assert request(url, "PUT", u(dircap, "good"), b"fine").status == 201
    for name in BAD:
        quoted = quote(name, safe="")
        assert request(url, "PUT", f"/uri/{quote(dircap, safe='')}/{quoted}", b"evil").status in (400, 404), name
        entry = json.dumps({name: ["filenode", {"ro_uri": file_cap}]}).encode()
        answer = request(url, "POST", u(dircap) + "?t=set_children", entry)
        assert answer.status == 400 and "bad child name" in answer.text, (name, answer.text)
        assert request(url, "POST", "/uri?t=mkdir-with-children", entry).status == 400
        assert request(url, "POST", u(dircap) + "?t=mkdir&name=" + quoted).status == 400
        assert request(url, "POST", u(dircap) + "?t=uri&name=" + quoted + "&uri=" + quote(file_cap)).status == 400
        assert request(url, "POST", u(dircap) + "?t=rename&from_name=good&to_name=" + quoted).status == 400
    assert request(url, "PUT", f"/uri/{quote(dircap, safe='')}/a%2Fb", b"evil").status == 400
    # intermediate directories are made only when every new name is good
    assert request(url, "PUT", f"/uri/{quote(dircap, safe='')}/new/deeper/..%2Fx", b"evil").status == 400
    assert request(url, "PUT", f"/uri/{quote(dircap, safe='')}/new/../x", b"evil").status == 400
    assert list(children(url, dircap)) == ["good"]
    assert request(url, "PUT", f"/uri/{quote(dircap, safe='')}/new/deeper/ok", b"fine").status == 201


def tahoe_made_directory(url: str) -> str:
    """An immutable directory whose children have names Tahoe allows and shoal refuses."""
    file_cap = request(url, "PUT", "/uri", b"payload " * 20).text.encode()
    names = ["../../pwned", "/tmp/shoal-abs-pwned", "..", "ok"]
    packed = b"".join(netstring(pack_entry(n, None, file_cap, {}, writekey=None)) for n in sorted(names))
    chk = request(url, "PUT", "/uri", packed).text
    assert chk.startswith("URI:CHK:")
    return "URI:DIR2-CHK:" + chk[len("URI:CHK:"):]


def test_a_directory_holding_such_names_lists_and_cp_refuses_them(grid, tmp_path):
    dircap = tahoe_made_directory(grid.url)
    assert sorted(children(grid.url, dircap)) == sorted(["../../pwned", "/tmp/shoal-abs-pwned", "..", "ok"])
    top = tmp_path / "top"
    dest = top / "a" / "dest"
    dest.mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "shoal.main", "-d", grid.nodedir, "cp", "-r", dircap, str(dest)],
                       capture_output=True, timeout=120)
    assert r.returncode == 1, r.stderr
    err = r.stderr.decode()
    assert "'../../pwned'" in err and "'/tmp/shoal-abs-pwned'" in err and "'..'" in err
    found = sorted(os.path.relpath(os.path.join(root, n), top) for root, ds, fs in os.walk(top) for n in ds + fs)
    assert found == ["a", "a/dest", "a/dest/ok"]
    assert not os.path.exists("/tmp/shoal-abs-pwned") and not (tmp_path / "pwned").exists()


def test_client_mistakes_are_4xx_not_500(grid):
    url = grid.url
    cap = request(url, "PUT", "/uri", b"0123456789" * 10).text
    assert request(url, "GET", u(cap), headers={"Range": f"bytes={HUGE}-"}).status == 416
    answer = request(url, "GET", u(cap), headers={"Range": f"bytes=10-{HUGE}"})
    assert answer.status == 206 and answer.body == (b"0123456789" * 10)[10:]
    assert request(url, "GET", u(cap), headers={"Range": f"bytes=-{HUGE}"}).status in (200, 206)
    deep = b'{"x": ["dirnode", {"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
    answer = request(url, "POST", "/uri?t=mkdir-with-children", deep)
    assert answer.status == 400, answer.text
    assert request(url, "GET", f"/status/{HUGE}").status == 404


def test_a_chk_cap_with_a_wrong_size_is_410_as_tahoe(grid):
    cap = request(grid.url, "PUT", "/uri", b"abcdefgh" * 100).text
    head, size = cap.rsplit(":", 1)
    for wrong in (int(size) + 1, int(size) - 1):
        answer = request(grid.url, "GET", u(f"{head}:{wrong}"))
        assert answer.status == 410, (answer.status, answer.text)


def test_blob_service_mistakes(grid):
    alice = BlobHTTP(grid.blob_url, "alice")
    assert alice.blob("PUT", "b1", body=b"blob data")[0] == 200
    status, headers, _ = alice.blob("GET", "b1", headers={"Range": f"bytes={HUGE}-"})
    assert status == 416
    status, _, body = alice.blob("POST", "b1", body=b"[" * 100_000 + b"]" * 100_000)
    assert b"internal error" not in body and status != 200
    # an unauthenticated 100 MB upload is answered from its headers
    parts = urllib.parse.urlsplit(grid.blob_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(b"PUT /blobs/alice/big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"z" * 65536)
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 ")


def test_no_cap_in_the_log_and_caps_kept_private(grid):
    url = grid.url
    dircap = request(url, "POST", "/uri?t=mkdir").text
    request(url, "PUT", u(dircap, "f"), b"secret file " * 10)
    request(url, "GET", u(dircap) + "?t=json")
    request(url, "POST", "/uri?t=mkdir&uri=" + quote(dircap))
    request(url, "GET", "/uri/" + quote(dircap, safe="") + "/nosuch")
    BlobHTTP(grid.blob_url, "bob").blob("PUT", "b2", body=b"bob's")
    with open(os.path.join(grid.nodedir, "logs", "shoal.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    secret = dircap.split(":")[2]
    assert "web: 127.0.0.1 GET /uri/[CENSORED]?t=json 200" in log
    assert secret not in log and "URI:DIR2:" not in log and "URI%3ADIR2%3A" not in log
    index = os.path.join(grid.nodedir, "private", "blobs", "index.sqlite")
    assert os.path.exists(index) and not os.path.exists(os.path.join(grid.nodedir, "blobs"))
    for node in [grid.grid.introducer, *grid.grid.storage]:  # the client is among the storage list
        private = os.path.join(node.nodedir, "private")
        assert os.stat(private).st_mode & 0o077 == 0
        for root, dirs, files in os.walk(private):
            for name in dirs + files:
                mode = os.stat(os.path.join(root, name)).st_mode
                assert mode & 0o077 == 0, (node.nodedir, name, oct(mode))


def test_a_url_over_16_kib_is_414_on_both_ports(grid):
    for base in (grid.url, grid.blob_url):
        parts = urllib.parse.urlsplit(base)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
            s.sendall(b"GET /uri/" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 414 "), (base, answer[:60])


def test_eight_concurrent_puts_of_one_file_all_succeed(grid):
    """Issue #9: one success and seven 507s, because the same shares were being uploaded
    at the same moment; now the client node makes them one upload."""
    body = os.urandom(3 * 1024 * 1024)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: request(grid.url, "PUT", "/uri", body), range(8)))
    assert [a.status for a in answers] == [200] * 8, [a.text for a in answers if a.status != 200]
    assert len({a.text for a in answers}) == 1
    assert request(grid.url, "GET", "/uri/" + quote(answers[0].text, safe="")).body == body


def test_a_stream_request_naming_too_many_blobs_is_400_before_its_body(grid):
    """Issue #4: 100,000 [id, 0] entries in one /stream upload; now at most 1,000."""
    alice = BlobHTTP(grid.blob_url, "alice")
    manifest = json.dumps([[f"z{i}", 0] for i in range(1001)]).encode() + b"\n"
    status, _, body = alice.stream("upload", manifest)
    assert status == 400 and b"at most 1000" in body
    status, _, body = alice.stream("download", json.dumps([f"z{i}" for i in range(1001)]).encode())
    assert status == 400
    status, _, _ = alice.blob("GET", "z0")
    assert status == 404  # nothing of the refused batch was stored
