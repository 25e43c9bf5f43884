"""Parts of the web layer without a grid: Range parsing, the error mapping, the PUT
body spool (real CPU pool, real reactor), /operations and /private on a real Site."""

import hashlib
import http.client
import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.web import resource

from shoal.crypto.convergence import convergent_key
from shoal.crypto.hashes import convergence_hasher
from shoal.testing import reactor_thread
from shoal.testing.reactor_thread import reactor
from shoal.web import spool
from shoal.web.common import WebError
from shoal.web.directories import children_from_json
from shoal.web.files import parse_range
from shoal.web.operations import OperationTable
from shoal.web.private import PrivateRoot
from shoal.web.spool import BodySpool, ShoalSite, wants_key_pass

# --- Range ---------------------------------------------------------------------------


@pytest.mark.parametrize("header,size,expected", [
    ("bytes=0-0", 10, (0, 0)),
    ("bytes=2-", 10, (2, 9)),
    ("bytes=-3", 10, (7, 9)),
    ("bytes=-30", 10, (0, 9)),
    ("bytes=5-100", 10, (5, 9)),
    ("bytes=1-2,4-5", 10, (1, 2)),  # the first of several
    ("bytes = 1-2", 10, (1, 2)),
    ("bytes=3-1", 10, None),  # last < first: ignored
    ("items=1-2", 10, None),
    ("bytes=a-b", 10, None),
    ("bytes=", 10, None),
    ("bytes=-", 10, None),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=10-12", "bytes=10-", "bytes=11-3"])
def test_parse_range_first_beyond_end_is_416(header):
    with pytest.raises(WebError) as e:
        parse_range(header, 10)
    assert e.value.code == 416 and e.value.text == "First beyond end of file"


@given(st.integers(1, 10**12), st.integers(0, 10**12), st.integers(0, 10**12))
def test_parse_range_stays_inside(size, a, b):
    try:
        span = parse_range(f"bytes={a}-{b}", size)
    except WebError as e:
        assert e.code == 416 and a >= size
        return
    assert a < size
    if span is not None:
        first, last = span
        assert 0 <= first <= last < size


# --- the body spool --------------------------------------------------------------------


class Producer:
    """Records what the spool asks of the transport (the IPushProducer it drives)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")


def test_spool_hashes_while_arriving_and_pauses_the_sender():
    data = os.urandom(40 * 1024 * 1024 + 17)
    secret = b"s" * 32
    producer = Producer()

    async def feed() -> tuple[bytes, int, bytes | None]:
        body = BodySpool(convergence_hasher(3, 10, 131073, secret), producer)
        for i in range(0, len(data), 65536):  # as the channel delivers: all at once, faster than the pool
            body.write(data[i : i + 65536])
        body.input_complete()
        await body.ready()
        content = body.file.read()
        body.close()
        return content, body.size, body.key

    content, size, key = reactor_thread.call(lambda: defer.ensureDeferred(feed()))
    assert size == len(data)
    assert hashlib.sha256(content).digest() == hashlib.sha256(data).digest()
    assert key == convergent_key([data], secret, 3, 10, 131073)
    assert producer.calls[0] == "pause" and producer.calls[-1] == "resume"
    assert producer.calls.count("pause") == producer.calls.count("resume")


def test_spool_without_hasher_and_empty():
    async def feed() -> tuple[int, bytes | None]:
        body = BodySpool(None, None)
        body.input_complete()
        await body.ready()
        return body.size, body.key

    assert reactor_thread.call(lambda: defer.ensureDeferred(feed())) == (0, None)


@pytest.mark.parametrize("path,wanted", [
    (b"/uri", True), (b"/uri?t=", True), (b"/cap", True), (b"/uri?format=chk", True),
    (b"/uri?format=SDMF", False), (b"/uri?mutable=true", False), (b"/uri?t=mkdir", False),
    (b"/uri/URI%3ASSK%3Aa%3Ab", False), (b"/uri/URI%3ADIR2%3Aa%3Ab/new.txt", True),
    (b"/status", False), (b"/uri/\xff", False),
])
def test_wants_key_pass(path, wanted):
    assert wants_key_pass(path) is wanted


# --- /operations and /private on a real Site --------------------------------------------


class Starter(resource.Resource):
    """POST /start?ophandle=H starts an operation that waits for the test to finish it."""

    isLeaf = True

    def __init__(self, table: OperationTable) -> None:
        super().__init__()
        self.table = table
        self.gates: dict[str, defer.Deferred] = {}

    def render_POST(self, request):
        handle = request.args[b"ophandle"][0].decode()
        gate: defer.Deferred = defer.Deferred()
        self.gates[handle] = gate

        async def operation(progress: dict) -> dict:
            progress["done-so-far"] = 1
            answer = await gate
            return {"answer": answer}

        return self.table.start(request, "demo", operation)


@pytest.fixture(scope="module")
def site():
    table = OperationTable()
    root = resource.Resource()
    starter = Starter(table)
    root.putChild(b"start", starter)
    root.putChild(b"operations", table)
    root.putChild(b"private", PrivateRoot(b"sekrit-token"))
    port = reactor_thread.call(lambda: reactor.listenTCP(0, ShoalSite(root), interface="127.0.0.1"))
    yield port.getHost().port, starter, table
    reactor_thread.call(port.stopListening)
    reactor_thread.call(table.stop)


def fetch(port: int, method: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_operation_lifecycle(site):
    port, starter, table = site
    status, headers, _ = fetch(port, "POST", "/start?ophandle=op1&output=json")
    assert status == 302 and headers["location"] == "/operations/op1?output=json"
    status, _, body = fetch(port, "GET", "/operations/op1?t=status&output=JSON")
    data = json.loads(body)
    assert status == 200 and data["finished"] is False and data["done-so-far"] == 1
    assert b"still running" in fetch(port, "GET", "/operations/op1")[2]
    reactor_thread.call(starter.gates["op1"].callback, 42)
    data = json.loads(fetch(port, "GET", "/operations/op1?output=json")[2])
    assert data["finished"] is True and data["answer"] == 42
    assert fetch(port, "GET", "/operations/op1?output=json&release-after-complete=true")[0] == 200
    status, _, body = fetch(port, "GET", "/operations/op1?output=json")
    assert status == 404 and b"unknown/expired handle 'op1'" in body


def test_operation_cancel_and_retain(site):
    port, starter, table = site
    fetch(port, "POST", "/start?ophandle=op2&retain-for=600")
    assert reactor_thread.call(lambda: table._timers["op2"].getTime() - reactor.seconds()) > 500
    assert fetch(port, "GET", "/operations/op2?retain-for=x")[0] == 400
    assert fetch(port, "GET", "/operations/op2?t=frob")[0] == 400
    status, _, body = fetch(port, "POST", "/operations/op2?t=cancel&output=json")
    assert status == 200
    assert fetch(port, "GET", "/operations/op2")[0] == 404
    assert starter.gates["op2"].called  # cancelled


def test_private_token(site):
    port, _, _ = site
    assert fetch(port, "GET", "/private/")[0] == 401
    assert fetch(port, "GET", "/private/", {"Authorization": "tahoe-lafs nope"})[0] == 403
    assert fetch(port, "GET", "/private/", {"Authorization": "Bearer sekrit-token"})[0] == 403
    status, _, body = fetch(port, "GET", "/private/", {"Authorization": "tahoe-lafs sekrit-token"})
    assert status == 200 and body.startswith(b"ok")
    assert fetch(port, "GET", "/private/logs/v1", {"Authorization": "tahoe-lafs sekrit-token"})[0] == 501


def test_spool_constants_make_sense():
    assert spool.SPOOL_LOW < spool.SPOOL_HIGH and spool.BATCH <= spool.SPOOL_HIGH


HUGE = "9" * 5000  # past Python's 4,300-digit int limit (issue #15: a 500)


def test_parse_range_numbers_of_any_length():
    with pytest.raises(WebError) as e:
        parse_range(f"bytes={HUGE}-", 10)
    assert e.value.code == 416
    assert parse_range(f"bytes=2-{HUGE}", 10) == (2, 9)
    assert parse_range(f"bytes=-{HUGE}", 10) == (0, 9)
    assert parse_range("bytes=\u0661-\u0662", 10) is None


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a": ' * 10_000 + b"1" + b"}" * 10_000,
                                  b'{"x": ["filenode", {"metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
                                  b'{"x": ' + b"1" * 5000 + b"}"])
def test_children_json_too_deep_or_too_long_is_a_400(body):
    with pytest.raises(WebError) as e:
        children_from_json(body)
    assert e.value.code == 400


def raw_exchange(port: int, data: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_url_too_long_is_414_and_a_header_too_long_431(site):
    """issue #15: a URL over 16 KiB had the connection closed without an answer."""
    port, _, _ = site
    answer = raw_exchange(port, b"GET /private/" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414 URI Too Long\r\n")
    answer = raw_exchange(port, b"GET /private/ HTTP/1.1\r\nX-Big: " + b"y" * 20_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert fetch(port, "GET", "/private/" + "z" * 8000)[0] == 401  # long but within the limit
