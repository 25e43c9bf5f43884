"""The client node's web API (Tahoe-LAFS 1.20 webapi.rst) on the shared real grid of
node processes: immutable files, errors, status, statistics, the API token."""

import hashlib
import http.client
import json
import os
import re
from urllib.parse import quote, urlsplit

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.conftest import SHARED_STORAGE_NODES


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 120) -> Answer:
    """One HTTP request, no redirects followed, any status returned."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def multipart(fields: dict[str, bytes], filename: str = "f.bin") -> tuple[bytes, dict[str, str]]:
    boundary = "shoal-test-boundary-7d1f"
    out = b""
    for name, value in fields.items():
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if name == "file" else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture(scope="module")
def grid(shared_grid):
    return shared_grid


@pytest.fixture(scope="module")
def url(grid) -> str:
    return grid.client_url


@pytest.fixture(scope="module")
def stored(url) -> tuple[bytes, str]:
    data = os.urandom(300_001)
    r = request(url, "PUT", "/uri", data)
    assert r.status == 200, r.text
    return data, r.text.strip()


def test_put_get_sizes(url):
    for size in (0, 1, 55, 56, 70_000):
        data = os.urandom(size)
        r = request(url, "PUT", "/uri", data)
        assert r.status == 200
        cap = r.text.strip()
        assert cap.startswith("URI:LIT:" if size <= 55 else "URI:CHK:")
        got = request(url, "GET", "/uri/" + quote(cap))
        assert got.status == 200 and got.body == data
        assert got.headers["content-length"] == str(size)


def test_put_is_convergent_and_same_as_without_spool(url, stored):
    data, cap = stored
    # the key computed while the body arrived equals the key upload computes itself:
    # re-uploading the same bytes yields the same cap
    assert request(url, "PUT", "/uri", data).text.strip() == cap


def test_get_range_head_and_names(url, stored):
    data, cap = stored
    path = "/uri/" + quote(cap)
    r = request(url, "GET", path, headers={"Range": "bytes=1000-1999"})
    assert r.status == 206 and r.body == data[1000:2000]
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    r = request(url, "GET", path, headers={"Range": "bytes=-10"})
    assert r.status == 206 and r.body == data[-10:]
    r = request(url, "GET", path, headers={"Range": "bytes=5-2,junk"})
    assert r.status == 200 and len(r.body) == len(data)  # unparseable: ignored
    r = request(url, "GET", path, headers={"Range": f"bytes={len(data)}-{len(data) + 5}"})
    assert r.status == 416 and "First beyond end of file" in r.text
    r = request(url, "HEAD", path)
    assert r.status == 200 and r.body == b"" and r.headers["content-length"] == str(len(data))
    r = request(url, "GET", path + "?filename=photo.jpg&save=true", headers={"Range": "bytes=0-0"})
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"] == 'attachment; filename="photo.jpg"'
    r = request(url, "GET", "/named/" + quote(cap) + "/report.pdf", headers={"Range": "bytes=0-0"})
    assert r.status == 206 and r.headers["content-type"] == "application/pdf"
    r = request(url, "GET", "/file/" + quote(cap) + "/x.txt")
    assert r.status == 200 and r.body == data
    assert request(url, "PUT", "/file/" + quote(cap) + "/x.txt", b"x").status == 400
    r = request(url, "GET", "/cap/" + quote(cap), headers={"Range": "bytes=7-7"})
    assert r.body == data[7:8]


def test_t_json_uri_info(url, stored):
    data, cap = stored
    path = "/uri/" + quote(cap)
    kind, info = request(url, "GET", path + "?t=json").json()
    assert kind == "filenode"
    assert info == {
        "mutable": False, "format": "CHK", "size": len(data), "ro_uri": cap,
        "verify_uri": info["verify_uri"],
    }
    assert info["verify_uri"].startswith("URI:CHK-Verifier:")
    assert request(url, "GET", path + "?t=uri").text == cap
    assert request(url, "GET", path + "?t=readonly-uri").text == cap
    page = request(url, "GET", path + "?t=info")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert f"{len(data)} bytes" in page.text and info["verify_uri"] in page.text
    lit = request(url, "PUT", "/uri", b"tiny").text
    assert request(url, "GET", "/uri/" + quote(lit) + "?t=json").json() == [
        "filenode", {"mutable": False, "format": "CHK", "size": 4, "ro_uri": lit}]
    etag = request(url, "GET", path + "?t=json").headers["etag"]
    assert request(url, "GET", path + "?t=json", headers={"If-None-Match": etag}).status == 304


def test_uri_redirect(url, stored):
    _, cap = stored
    r = request(url, "GET", "/uri?uri=" + quote(cap) + "&t=json")
    assert r.status == 302
    assert r.headers["location"].endswith("/uri/" + quote(cap, safe="") + "?t=json")
    r = request(url, "GET", "/uri")
    assert r.status == 400 and "GET /uri requires uri=" in r.text


def test_post_upload_form(url):
    data = os.urandom(20_000)
    body, headers = multipart({"file": data})
    r = request(url, "POST", "/uri?t=upload", body, headers)
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    cap = re.search(r"id='uri'>([^<]+)<", r.text).group(1)
    assert request(url, "GET", "/uri/" + quote(cap)).body == data
    r = request(url, "POST", "/uri?t=upload&redirect_to_result=true", body, headers)
    assert r.status == 303 and r.headers["location"] == "/uri/" + quote(cap, safe="")
    r = request(url, "POST", "/uri?t=upload&when_done=/done/%25(uri)s", body, headers)
    assert r.status == 302 and r.headers["location"] == "/done/" + quote(cap, safe="")
    r = request(url, "POST", "/uri?t=upload", *multipart({"other": b"x"}))
    assert r.status == 400 and "'file'" in r.text


@pytest.mark.parametrize("method,path,body,status,text", [
    ("GET", "/uri/URI:CHK:nope", None, 400, "Invalid capability"),
    ("GET", "/uri/not-a-cap-at-all", None, 400, "not a valid file- or directory- cap"),
    ("PUT", "/uri?t=frobnicate", b"x", 400, "/uri accepts only PUT, PUT?t=mkdir, POST?t=upload"),
    ("POST", "/uri?t=frobnicate", b"", 400, "/uri accepts only PUT"),
    ("PUT", "/uri?format=QDMF", b"x", 400, "Unknown format: QDMF, I know CHK, SDMF, MDMF"),
    ("PUT", "/uri?mutable=maybe", b"x", 400, "invalid mutable= argument"),
    ("GET", "/nonexistent", None, 404, "no such page"),
    ("GET", "/operations/nothing-here", None, 404, "unknown/expired handle 'nothing-here'"),
    ("GET", "/uri/URI:LIT:mfrgg/child", None, 400, "Files have no children named 'child'"),
    ("GET", "/uri/URI:LIT:mfrgg?t=bogus", None, 400, "GET file: bad t=bogus"),
    ("HEAD", "/uri/URI:LIT:mfrgg?t=json", None, 400, ""),
    ("PUT", "/uri/URI:LIT:mfrgg", b"new", 400, "immutable"),
    ("DELETE", "/uri/URI:LIT:mfrgg", None, 400, "DELETE needs a directory"),
    ("GET", "/uri//x", None, 400, "double slash"),
    ("GET", "/statistics?t=yaml", None, 400, "bad t=yaml"),
])
def test_errors(url, method, path, body, status, text):
    r = request(url, method, path, body)
    assert r.status == status, r.body
    assert text in r.text
    assert "Traceback" not in r.text


def test_missing_file_is_410_with_what_was_found(url, stored):
    data, cap = stored
    # a cap whose storage index nobody holds: flip the key
    parts = cap.split(":")
    parts[2] = ("a" if parts[2][0] != "a" else "b") + parts[2][1:]
    r = request(url, "GET", "/uri/" + quote(":".join(parts)))
    assert r.status == 410, r.text
    assert "NotEnoughSharesError" in r.text and "found" in r.text


def test_status_and_statistics(url, stored):
    data, cap = stored
    request(url, "GET", "/uri/" + quote(cap))
    status = request(url, "GET", "/status?t=json").json()
    kinds = {(op["type"], op["total-size"]) for op in status["recent"]}
    assert ("upload", len(data)) in kinds and ("download", len(data)) in kinds
    upload = next(op for op in status["recent"] if op["type"] == "upload" and op["total-size"] == len(data))
    assert upload["status"] == "done" and upload["progress-encode-push"] == 1.0
    assert len(upload["servers"]) >= 3 and upload["timings"]["total"] > 0
    download = next(op for op in status["recent"] if op["type"] == "download")
    assert download["progress"] == 1.0 and download["servers"]
    html = request(url, "GET", "/status/")
    assert html.status == 200 and "Recent" in html.text
    assert request(url, "GET", f"/status/{upload['id']}?t=json").json()["id"] == upload["id"]

    # `tahoe status` POSTs t=json (and the token) as a form to both pages
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert request(url, "POST", "/status", b"t=json&token=x", form).json()["recent"]
    assert "counters" in request(url, "POST", "/statistics", b"t=json&token=x", form).json()
    stats = request(url, "GET", "/statistics?t=json").json()
    assert stats["counters"]["uploader.files_uploaded"] >= 1
    assert stats["counters"]["downloader.bytes_downloaded"] >= len(data)
    assert stats["stats"]["node.uptime"] > 0
    r = request(url, "GET", "/statistics?t=openmetrics")
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert families["tahoe_counters_uploader_files_uploaded"].samples[0].value >= 1
    assert "tahoe_stats_node_uptime" in families


def test_welcome_json_shape_and_html(url):
    data = request(url, "GET", "/?t=json").json()
    assert set(data) == {"introducers", "servers", "helper"}  # Tahoe's keys, and the helper connection
    assert data["helper"] == {"furl": None, "connected": "not-configured", "active_uploads": None}
    assert len(data["servers"]) == SHARED_STORAGE_NODES
    for s in data["servers"]:
        assert set(s) == {"nodeid", "connection_status", "available_space", "nickname", "version",
                          "last_received_data", "protocol"}
    page = request(url, "GET", "/")
    connected = f"{SHARED_STORAGE_NODES} of {SHARED_STORAGE_NODES} connected"
    assert page.status == 200 and connected in page.text and "<script" not in page.text


def test_private_needs_token(grid, url):
    token = grid.client.read_private("api_auth_token")
    assert len(token) >= 32
    with open(os.path.join(grid.client.nodedir, "node.url")) as f:
        assert f.read().strip() == url.rstrip("/") + "/"
    assert request(url, "GET", "/private/").status == 401
    assert request(url, "GET", "/private/", headers={"Authorization": "tahoe-lafs wrong"}).status == 403
    r = request(url, "GET", "/private/", headers={"Authorization": f"tahoe-lafs {token}"})
    assert r.status == 200 and r.text.startswith("ok")


def test_big_put_streams_to_spool(url):
    """A 40 MiB PUT in one request (spooled while arriving) round-trips."""
    data = os.urandom(40 * 1024 * 1024)
    r = request(url, "PUT", "/uri", data)
    assert r.status == 200, r.text
    got = request(url, "GET", "/uri/" + quote(r.text.strip()))
    assert hashlib.sha256(got.body).digest() == hashlib.sha256(data).digest()


def test_verify_caps_check_and_never_read(url, stored):
    data, cap = stored
    verifier = request(url, "GET", "/uri/" + quote(cap) + "?t=json").json()[1]["verify_uri"]
    path = "/uri/" + quote(verifier)
    for method, query in (("GET", ""), ("GET", "?t=json"), ("GET", "?t=uri"), ("HEAD", "")):
        r = request(url, method, path + query)
        assert r.status == 400, (method, query, r.body)
        assert method == "HEAD" or r.text == "a verify cap cannot be read; use it with t=check\n"
        assert "etag" not in r.headers
    r = request(url, "POST", path + "?t=check&output=JSON")
    assert r.status == 200 and r.json()["results"]["healthy"] is True
    assert request(url, "PUT", path, b"x").text.startswith("PUT to an immutable file cap")
    assert request(url, "GET", "/named/" + quote(verifier) + "/x.txt").status == 400


def test_a_client_that_goes_away_mid_download_leaves_the_node_serving(url):
    data = os.urandom(3 * 1024 * 1024)
    cap = request(url, "PUT", "/uri", data).text.strip()
    for _ in range(3):
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conn.request("GET", "/uri/" + quote(cap))
        r = conn.getresponse()
        assert r.status == 200 and r.read(1000) == data[:1000]
        conn.close()  # the rest is never read: the node's writer is told to stop
    got = request(url, "GET", "/uri/" + quote(cap))
    assert got.status == 200 and hashlib.sha256(got.body).digest() == hashlib.sha256(data).digest()
