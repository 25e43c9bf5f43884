"""Fuzz the client node's web API (the client node of the shared real grid):
random methods, paths, query strings, headers, bodies and caps of every kind,
valid and mangled. Every answer must be a well-formed HTTP response with a
2xx, 3xx or 4xx status (501 for what the node does not implement), never a
traceback; the node answers a health request (its welcome page as JSON) within
HEALTH_SECONDS after every example, and its RSS grows by at most RSS_GROWTH_MIB
over the fuzz (measured: a few MiB; bodies are at most 2 KB, so only an
unbounded buffer or a leak could reach the bound). Bounded to about a minute."""

import http.client
import socket
import time
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.caps import format_cap
from shoal.testing.processes import memory_kib
from tests.strategies import caps

ALLOWED_5XX = {501}  # not implemented: an honest answer, not a failure
HEALTH_SECONDS = 10.0
RSS_GROWTH_MIB = 64

METHODS = st.sampled_from(["GET", "GET", "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "FROB"])
T_VALUES = st.sampled_from([
    "", "json", "info", "uri", "readonly-uri", "upload", "mkdir", "mkdir-with-children", "mkdir-immutable",
    "set-children", "set_children", "unlink", "delete", "rename", "relink", "check", "start-deep-check",
    "stream-manifest", "start-manifest", "start-deep-size", "start-deep-stats", "status", "cancel",
    "openmetrics", "html", "bogus", "JSON", " json ",
])
ARG_NAMES = st.sampled_from([
    "t", "format", "mutable", "replace", "offset", "filename", "save", "uri", "ophandle", "retain-for",
    "output", "when_done", "redirect_to_result", "name", "from_name", "to_name", "to_dir", "children",
    "release-after-complete", "private-key", "x",
])
ARG_VALUES = st.one_of(
    st.sampled_from(["true", "false", "only-files", "0", "-1", "99999999999999999999", "SDMF", "MDMF", "CHK",
                     "json", "JSON", "text", "html", "%(uri)s", "/", ""]),
    st.text(max_size=30),
)


def mangle(text: str, data: st.DataObject) -> str:
    how = data.draw(st.sampled_from(["keep", "truncate", "flip", "insert", "drop-colon"]))
    if how == "keep" or not text:
        return text
    i = data.draw(st.integers(0, len(text) - 1))
    if how == "truncate":
        return text[:i]
    if how == "flip":
        return text[:i] + data.draw(st.sampled_from("a9:Z_.é\x00/")) + text[i + 1:]
    if how == "insert":
        return text[:i] + data.draw(st.text(min_size=1, max_size=4)) + text[i:]
    return text.replace(":", "", 1)


@st.composite
def requests(draw, real_caps: list[str]):
    data = draw(st.data())
    cap = draw(st.one_of(st.sampled_from(real_caps), caps.map(format_cap)))
    cap = mangle(cap, data)
    prefix = draw(st.sampled_from(["/uri/", "/cap/", "/named/", "/file/", "/uri/", "/uri/", "/", "/status/",
                                   "/statistics", "/operations/", "/private/", "/uri", "/nonexistent/"]))
    segments = draw(st.lists(st.text(max_size=12), max_size=3))
    path = prefix + quote(cap, safe=":") if prefix.endswith("/") and prefix != "/" else prefix
    if segments:
        path += "/" + "/".join(quote(s, safe="") for s in segments)
    args = draw(st.lists(st.tuples(st.one_of(st.just("t"), ARG_NAMES),
                                   st.one_of(T_VALUES, ARG_VALUES)), max_size=4))
    if args:
        path += "?" + urlencode(args)
    headers = {}
    if draw(st.booleans()):
        headers["Range"] = draw(st.one_of(
            st.sampled_from(["bytes=0-0", "bytes=-5", "bytes=5-", "bytes=9-2", "bytes=0-1,3-4", "items=1-2",
                             "bytes=99999999999-", "bytes=--1"]),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)))
    if draw(st.booleans()):
        headers["Authorization"] = draw(st.sampled_from(["tahoe-lafs x", "tahoe-lafs", "Basic abc", "  "]))
    method = draw(METHODS)
    body = None
    if method in ("PUT", "POST", "PATCH") or draw(st.booleans()):
        body = draw(st.one_of(
            st.binary(max_size=2000),
            st.just(b'{"a": ["filenode", {}]}'),
            st.just(b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nhello\r\n--b--\r\n'),
        ))
        if body.startswith(b"--b") and draw(st.booleans()):
            headers["Content-Type"] = "multipart/form-data; boundary=b"
    return method, path, headers, body


@pytest.fixture(scope="module")
def grid(shared_grid):
    return shared_grid


def send(url: str, method: str, path: str, headers: dict, body: bytes | None,
         timeout: float = 60) -> tuple[int, bytes]:
    """(status, body) of one request on a fresh connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def send_raw(url: str, raw: bytes, timeout: float = 10) -> bytes:
    """Whatever the server answers to `raw` bytes (the write side shut after them)."""
    parts = urlsplit(url)
    answer = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as s:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


def check(status: int, body: bytes, what: str) -> None:
    assert 200 <= status < 500 or status in ALLOWED_5XX, f"{what} -> {status}: {body[:300]!r}"
    assert b"Traceback" not in body and b'File "' not in body, f"{what} leaked a traceback"


def test_fuzz_web_api(grid):
    url = grid.client_url
    small = send(url, "PUT", "/uri", {}, b"fuzz target " * 100)
    assert small[0] == 200
    data_cap = small[1].decode().strip()
    dir_cap = send(url, "POST", "/uri?t=mkdir", {}, b"")[1].decode()
    assert send(url, "PUT", f"/uri/{quote(dir_cap)}/sub/file", {}, b"x" * 100)[0] == 201
    mutable_cap = send(url, "PUT", "/uri?format=MDMF", {}, b"mutable")[1].decode()
    deadline = time.monotonic() + 45
    seen: dict[int, int] = {}
    assert grid.client is not None
    before = memory_kib(grid.client.pid) / 1024

    @settings(max_examples=1000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(requests([data_cap, dir_cap, dir_cap, mutable_cap]))
    def one(req):
        if time.monotonic() > deadline:
            return
        method, path, headers, body = req
        status, answer = send(url, method, path, headers, body)
        seen[status] = seen.get(status, 0) + 1
        check(status, answer, f"{method} {path} {headers}")
        start = time.monotonic()
        assert send(url, "GET", "/?t=json", {}, None)[0] == 200
        assert time.monotonic() - start < HEALTH_SECONDS, f"the node took long to answer after {method} {path}"

    one()
    assert sum(seen.values()) >= 100, seen
    grown = memory_kib(grid.client.pid) / 1024 - before
    assert grown <= RSS_GROWTH_MIB, f"the node grew by {grown:.0f} MiB during the fuzz"
    assert send(url, "GET", "/?t=json", {}, None)[0] == 200
    assert grid.client is not None and grid.client.proc.poll() is None


def test_raw_http_garbage(grid):
    """Malformed HTTP gets an HTTP error or a closed connection, and the node lives on."""
    for raw in [b"GET\r\n\r\n", b"\x00\x01\x02\r\n\r\n", b"GET /uri HTTP/9.9\r\n\r\n",
                b"PUT /uri HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                b"PUT /uri HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
                b"PUT /uri HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort"]:
        answer = send_raw(grid.client_url, raw)
        if answer:
            assert answer.startswith(b"HTTP/1."), answer[:100]
            status = int(answer.split(b" ", 2)[1])
            check(status, answer, repr(raw[:40]))
    assert send(grid.client_url, "GET", "/?t=json", {}, None)[0] == 200
