"""The Soledad-compatible blob service on the shared real grid of node processes
(introducer, storage nodes; a client node of this module's own with
``[blobs] enabled = true``):
the HTTP contract route by route with every error code, the /stream framing
both ways, authentication failures, quota under concurrent uploads, and a
second gateway started on an empty disk that rebuilds its index from the
grid and serves every blob."""

import http.client
import json
import os
import time
import types
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from shoal.apps.blobs import parse_download_stream, tag_of, token_header, upload_body
from shoal.testing.grid import Grid, shares_args
from shoal.testing.processes import (
    NodeProcess,
    NodeProcessError,
    set_config,
    shoal_command,
    start_node,
    stop_all,
)
from shoal.testing.wait import wait_until

QUOTA = 2_000_000
TOKENS = {"alice": "alice-token", "bob": "bob-token", "quota": "quota-token", "streamer": "s-token"}


class BlobHTTP:
    """A tiny synchronous client of the blob service: a new connection per request,
    or one kept-alive connection (persistent=True; one thread per client then)."""

    def __init__(self, url: str, user: str, token: str | None = None, persistent: bool = False) -> None:
        self.url = urllib.parse.urlsplit(url)
        self.user = user
        self.token = TOKENS.get(user) if token is None else token
        self.persistent = persistent
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                auth: bool = True) -> tuple[int, dict, bytes]:
        conn = self._conn or http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=600)
        try:
            h = dict(headers or {})
            if auth:
                h["Authorization"] = token_header(self.user, self.token)
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            result = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            self._conn = conn if self.persistent and not r.will_close else None
            return result
        finally:
            if self._conn is None:
                conn.close()

    def blob(self, method: str, blob_id: str = "", query: str = "", **kw) -> tuple[int, dict, bytes]:
        return self.request(method, f"/blobs/{self.user}/{blob_id}" + (f"?{query}" if query else ""), **kw)

    def stream(self, direction: str, body: bytes, query: str = "", **kw) -> tuple[int, dict, bytes]:
        return self.request("POST", f"/stream/{self.user}?direction={direction}" + (f"&{query}" if query else ""),
                            body=body, **kw)

    def ids(self, query: str = "") -> list[str]:
        status, _, body = self.blob("GET", query=query)
        assert status == 200, body
        return json.loads(body)


def start_blob_client(grid: Grid, name: str, shares: tuple[int, int, int] = (2, 3, 4), *,
                      config: dict[tuple[str, str], str] | None = None, **blobs: str) -> tuple[NodeProcess, str]:
    """A client node with the blob service on its own port ([blobs] keys given
    override the defaults here; `config`: more tahoe.cfg settings); (process, blob URL)."""
    settings = {"enabled": "true", "port": "tcp:0:interface=127.0.0.1", "quota": str(QUOTA), **blobs}
    node = grid.add_client(name, *shares_args(*shares),
                           config={**{("blobs", k): v for k, v in settings.items()}, **(config or {})},
                           files={os.path.join("private", "blobs.tokens"):
                                  "".join(f"{user}:{token}\n" for user, token in TOKENS.items())})
    url_file = node.private("blobs.url")
    wait_until(lambda: os.path.exists(url_file), 10, "the blob service to write private/blobs.url")
    with open(url_file) as f:
        return node, f.read().strip()


@pytest.fixture(scope="module")
def grid(shared_grid):
    """The shared grid with a blob client of this module's own (and any more it starts)."""
    started: list[NodeProcess] = []

    def start(name: str, **blobs: str) -> str:
        node, url = start_blob_client(shared_grid, name, **blobs)
        started.append(node)
        return url

    try:
        client, url = start_blob_client(shared_grid, "blobs-client")
        started.append(client)
        yield types.SimpleNamespace(grid=shared_grid, client=client, blob_url=url, start=start)
    finally:
        stop_all(started)


@pytest.fixture(scope="module")
def alice(grid):
    return BlobHTTP(grid.blob_url, "alice")


def test_server_info_and_robots_are_anonymous(grid):
    anon = BlobHTTP(grid.blob_url, "nobody", "")
    status, headers, body = anon.request("GET", "/", auth=False)
    assert status == 200 and json.loads(body)["blobs"] is True and "version" in json.loads(body)
    status, _, body = anon.request("GET", "/robots.txt", auth=False)
    assert status == 200 and b"Disallow: /" in body


def test_authentication_failures_are_401(grid):
    for client, auth in [(BlobHTTP(grid.blob_url, "alice"), False),  # no header
                         (BlobHTTP(grid.blob_url, "alice", "wrong"), True),
                         (BlobHTTP(grid.blob_url, "mallory", "x"), True)]:
        status, headers, _ = client.blob("GET", auth=auth)
        assert status == 401 and headers["www-authenticate"].startswith("Token")
        assert client.stream("download", b"[]", auth=auth)[0] == 401
        assert client.blob("PUT", "x", body=b"data", auth=auth)[0] == 401
    bob_as_alice = BlobHTTP(grid.blob_url, "alice")
    status, _, _ = bob_as_alice.request("GET", "/blobs/bob/", headers={"Authorization": token_header("alice", "x")},
                                        auth=False)
    assert status == 401
    status, _, _ = bob_as_alice.request("GET", "/blobs/bob/")  # alice's valid token, bob's URL
    assert status == 401
    status, _, _ = bob_as_alice.request("GET", "/blobs/alice/", headers={"Authorization": "Basic YWxpY2U6eA=="},
                                        auth=False)
    assert status == 401


def test_put_get_ranges_and_errors(alice):
    data = os.urandom(70_000)
    assert alice.blob("PUT", "doc1", body=data)[:3:2] == (200, b"")
    status, _, body = alice.blob("PUT", "doc1", body=b"other")
    assert status == 409 and b"doc1" in body
    status, headers, body = alice.blob("GET", "doc1")
    assert status == 200 and body == data
    assert headers["tag"] == tag_of(data) and headers["content-length"] == str(len(data))
    status, headers, body = alice.blob("GET", "doc1", headers={"Range": "bytes=100-300"})  # Soledad's form
    assert status == 206 and body == data[100:300] and headers["content-range"] == f"bytes 100-300/{len(data)}"
    status, headers, body = alice.blob("GET", "doc1", headers={"Range": "bytes=69990-"})  # RFC forms
    assert status == 206 and body == data[69990:] and headers["content-range"] == f"bytes 69990-69999/{len(data)}"
    status, headers, body = alice.blob("GET", "doc1", headers={"Range": "bytes=-7"})
    assert status == 206 and body == data[-7:]
    for bad in ("bytes=70000-", "bytes=5-5", "lines=1-2", "bytes=1-2,4-5"):
        status, headers, _ = alice.blob("GET", "doc1", headers={"Range": bad})
        assert status == 416 and headers["content-range"] == f"bytes */{len(data)}", bad
    assert alice.blob("GET", "missing")[0] == 404
    assert alice.blob("GET", "missing", query="only_flags=true")[0] == 404
    assert alice.blob("GET", "bad.id")[0] == 500  # Soledad's answer to an invalid id
    assert alice.blob("PUT", "x", query="namespace=bad%20ns", body=b"x")[0] == 500
    # a tiny blob (a literal cap on the grid) gets a padded Tag
    assert alice.blob("PUT", "tiny", body=b"abc")[0] == 200
    status, headers, body = alice.blob("GET", "tiny")
    assert body == b"abc" and headers["tag"] == tag_of(b"abc")


def test_flags_listing_namespaces_and_tombstones(alice):
    for i in range(3):
        assert alice.blob("PUT", f"m{i}", body=os.urandom(300 + i), query="namespace=mail")[0] == 200
        time.sleep(0.01)
    assert alice.ids("namespace=mail") == ["m0", "m1", "m2"]
    assert alice.ids("namespace=mail&order_by=date") == ["m0", "m1", "m2"]
    assert alice.ids("namespace=mail&order_by=%2Bdate") == ["m0", "m1", "m2"]
    assert alice.ids("namespace=mail&order_by=-date") == ["m2", "m1", "m0"]
    assert alice.blob("GET", query="namespace=mail&order_by=size")[0] == 400
    assert "m0" not in alice.ids()  # namespaces are separate
    status, _, body = alice.blob("GET", "m1", query="namespace=mail&only_flags=true")
    assert status == 200 and json.loads(body) == []
    assert alice.blob("POST", "m1", query="namespace=mail", body=b'["PENDING", "PROCESSING"]')[0] == 200
    status, _, body = alice.blob("GET", "m1", query="namespace=mail&only_flags=true")
    assert json.loads(body) == ["PENDING", "PROCESSING"]
    assert alice.blob("POST", "m1", query="namespace=mail", body=b'["PROCESSED"]')[0] == 200  # replaces the set
    assert alice.ids("namespace=mail&filter_flag=PROCESSED") == ["m1"]
    assert alice.ids("namespace=mail&filter_flag=PENDING") == []
    assert alice.blob("POST", "m1", query="namespace=mail", body=b'["DONE"]')[0] == 406
    assert alice.blob("POST", "nope", query="namespace=mail", body=b'["PENDING"]')[0] == 404
    assert alice.blob("POST", "m1", query="namespace=mail", body=b"not json")[0] == 500
    assert json.loads(alice.blob("GET", query="namespace=mail&only_count=true")[2]) == {"count": 3}
    assert alice.blob("DELETE", "m0", query="namespace=mail")[0] == 200
    assert alice.blob("DELETE", "m0", query="namespace=mail")[0] == 404
    assert alice.blob("GET", "m0", query="namespace=mail")[0] == 404
    assert alice.ids("namespace=mail") == ["m1", "m2"]
    assert alice.ids("namespace=mail&deleted=true") == ["m0"]
    assert json.loads(alice.blob("GET", query="namespace=mail&only_count=true")[2]) == {"count": 2}


def test_stream_both_directions(grid):
    s = BlobHTTP(grid.blob_url, "streamer")
    blobs = [(f"s{i:03d}", os.urandom(1 + 997 * i % 7000)) for i in range(40)]
    blobs[20] = ("s020", os.urandom(1_300_000))  # above the prefetch size: streamed straight from the grid
    blobs[21] = ("s021", b"")
    status, _, body = s.stream("upload", upload_body(blobs))
    assert status == 200, body
    assert s.ids() == [blob_id for blob_id, _ in blobs]
    assert s.blob("GET", "s007")[2] == blobs[7][1]
    wanted = [blobs[i] for i in (5, 0, 20, 39, 21, 17)]
    status, _, body = s.stream("download", json.dumps([b for b, _ in wanted]).encode())
    assert status == 200
    frames = parse_download_stream(body)
    assert [f.data for f in frames] == [d for _, d in wanted]
    assert [f.tag for f in frames] == [tag_of(d) for _, d in wanted]
    assert body[:8] == b"%08x" % len(wanted[0][1])
    # create-only and all-or-nothing on uploads; errors before any byte on downloads
    status, _, body = s.stream("upload", upload_body([("fresh", b"f" * 100), ("s001", b"again")]))
    assert status == 409 and b"s001" in body
    assert "fresh" not in s.ids()
    bad = upload_body([("short", b"x" * 10)])[:-1]
    assert s.stream("upload", bad)[0] == 400
    assert s.stream("download", json.dumps(["s000", "missing"]).encode())[0] == 404
    assert s.stream("sideways", b"[]")[0] == 500
    # namespaces apply to streams too
    assert s.stream("upload", upload_body([("n1", b"n" * 64)]), query="namespace=other")[0] == 200
    assert s.ids("namespace=other") == ["n1"]
    frames = parse_download_stream(s.stream("download", b'["n1"]', query="namespace=other")[2])
    assert frames[0].data == b"n" * 64


def test_quota_under_concurrent_uploads(grid):
    q = BlobHTTP(grid.blob_url, "quota")
    size = 100_000
    payloads = {f"q{i:02d}": os.urandom(size) for i in range(30)}
    with ThreadPoolExecutor(15) as pool:
        statuses = dict(zip(payloads, pool.map(lambda kv: q.blob("PUT", kv[0], body=kv[1])[0], payloads.items()),
                            strict=True))
    stored = sorted(b for b, st in statuses.items() if st == 200)
    assert set(statuses.values()) == {200, 507}
    assert len(stored) == QUOTA // size  # exactly up to the quota: nobody passed it, nothing lost
    assert q.ids() == stored
    frames = parse_download_stream(q.stream("download", json.dumps(stored).encode())[2])
    assert [f.data for f in frames] == [payloads[b] for b in stored]  # every accepted blob is there
    status, _, body = q.stream("upload", upload_body([("over", b"o" * 10)]))
    assert status == 507 and b"Quota" in body
    assert q.blob("DELETE", stored[0])[0] == 200  # a delete frees its bytes (tombstones count nothing)
    assert q.blob("PUT", "after-delete", body=os.urandom(size))[0] == 200


def test_a_bad_blobs_section_stops_the_node_with_one_line(grid, tmp_path):
    d = str(tmp_path / "misconfigured")
    shoal_command("create-client", "--webport", "none", "--introducer", grid.grid.introducer_furl, d)
    set_config(d, "blobs", "enabled", "true")
    set_config(d, "blobs", "root_cap", "URI:LIT:aaaa")
    with pytest.raises(NodeProcessError) as e:
        start_node(d)
    assert "root_cap" in str(e.value) and "Traceback" not in str(e.value)


def test_gateway_on_an_empty_disk_rebuilds_from_the_grid(grid, alice):
    with open(os.path.join(grid.client.nodedir, "private", "blobs.rootcap")) as f:
        root_cap = f.read().strip()
    before = {
        (user, q): BlobHTTP(grid.blob_url, user).ids(q)
        for user in ("alice", "streamer", "quota")
        for q in ("", "namespace=mail", "namespace=mail&deleted=true", "namespace=mail&order_by=-date",
                  "namespace=mail&filter_flag=PROCESSED", "namespace=other")
    }
    doc1 = alice.blob("GET", "doc1")[2]
    url = grid.start("fresh-gateway", root_cap=root_cap)
    for (user, q), ids in before.items():
        assert BlobHTTP(url, user).ids(q) == ids, (user, q)
    fresh = BlobHTTP(url, "alice")
    status, headers, body = fresh.blob("GET", "doc1")
    assert status == 200 and body == doc1 and headers["tag"] == tag_of(doc1)
    assert json.loads(fresh.blob("GET", "m1", query="namespace=mail&only_flags=true")[2]) == ["PROCESSED"]
    s = BlobHTTP(url, "streamer")
    frames = parse_download_stream(s.stream("download", json.dumps(before[("streamer", "")]).encode())[2])
    assert len(frames) == len(before[("streamer", "")])
    assert fresh.blob("PUT", "doc1", body=b"x")[0] == 409  # what the grid holds is known at once
