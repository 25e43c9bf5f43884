"""HttpStorageClient against scripted HTTPS servers: error mapping, caps, lost connections."""

import os
import ssl
import threading

import cbor2
import pytest

from shoal.grid.http_client import HttpStorageClient
from shoal.grid.http_requests import translate_status
from shoal.grid.https_pool import Response
from shoal.grid.storage_client import (
    Deadlines,
    ServerFull,
    ServerProtocolError,
    ServerRefused,
    ServerTimeout,
    ServerUnreachable,
    SlotWrite,
    WriteSecrets,
)
from shoal.testing import reactor_thread
from tests.unit.grid.tls_fixture import ConnReader, TlsServer, keep_alive, respond

SI = bytes(range(16))
SECRET = b"s" * 32
CBOR = (("content-type", "application/cbor"),)


@pytest.fixture
def servers():
    made: list[TlsServer] = []
    yield lambda handler: made.append(TlsServer(handler)) or made[-1]
    for s in made:
        s.stop()


def client_for(s: TlsServer, deadlines: Deadlines | None = None, spki: bytes | None = None) -> HttpStorageClient:
    return HttpStorageClient("127.0.0.1", s.port, spki or s.spki, b"swissnum", "test", reactor_thread.reactor,
                             deadlines)


def call(fn, *args):
    return reactor_thread.call(fn, *args)


@pytest.mark.parametrize(("status", "body", "kind"), [
    (507, b"", ServerFull),
    (507, b"storage index x: this server is read-only and takes no mutable writes", ServerRefused),
    (400, b"the server is full\nmore", ServerFull),
    (400, b"Bad header value(s)", ServerRefused),
    (401, b"", ServerRefused),
    (409, b"", ServerRefused),
    (500, b"Internal error\ntraceback...", ServerRefused),
])
def test_statuses_map_to_server_errors_keeping_the_text(status, body, kind):
    err = translate_status(Response(status, (), body), "srv", "write")
    assert type(err) is kind
    assert err.reason.startswith(f"HTTP {status}")
    if body:
        assert body.split(b"\n")[0].decode() in err.reason and "traceback" not in err.reason


def test_requests_carry_the_swissnum_and_secrets(servers):
    seen = {}

    def route(method, target, headers, body, sock) -> bool:
        seen.update(method=method, target=target, headers=headers, body=body)
        respond(sock, 204)
        return True

    s = servers(keep_alive(route))
    c = client_for(s)
    call(c.add_lease, SI, b"r" * 32, b"c" * 32)
    assert seen["method"] == b"PUT"
    assert seen["target"] == b"/storage/v1/lease/aaaqeayeaudaocajbifqydiob4"
    assert seen["headers"][b"authorization"] == b"Tahoe-LAFS c3dpc3NudW0="


def test_bad_cbor_and_wrong_shapes_are_protocol_errors(servers):
    answers = iter([b"\xff\xff not cbor", cbor2.dumps({"allocated": "nope"}), cbor2.dumps([1, 2])])

    def route(method, target, headers, body, sock) -> bool:
        respond(sock, 200, next(answers), CBOR)
        return True

    c = client_for(servers(keep_alive(route)))
    for _ in range(2):
        with pytest.raises(ServerProtocolError):
            call(c.allocate_buckets, SI, SECRET, SECRET, frozenset({0}), 100)
    with pytest.raises(ServerProtocolError):
        call(c.get_version)


def test_read_answering_more_than_asked_is_a_protocol_error(servers):
    def route(method, target, headers, body, sock) -> bool:
        respond(sock, 206, b"x" * 20, (("content-range", "bytes 0-19/*"),))
        return True

    c = client_for(servers(keep_alive(route)))
    with pytest.raises(ServerProtocolError):
        call(c.slot_readv, SI, [0], [(0, 10)])


def test_read_body_cap_follows_the_length_asked(servers):
    def route(method, target, headers, body, sock) -> bool:
        respond(sock, 206, b"y" * 50_000, (("content-range", "bytes 0-49999/*"),))
        return True

    c = client_for(servers(keep_alive(route)))
    with pytest.raises(ServerProtocolError) as caught:
        call(c.slot_readv, SI, [0], [(0, 20_000)])
    assert "at most" in caught.value.reason


def test_close_sends_nothing_once_the_server_said_complete(servers):
    def route(method, target, headers, body, sock) -> bool:
        if method == b"POST":
            respond(sock, 200, cbor2.dumps({"already-have": set(), "allocated": {3}}), CBOR)
        else:
            assert headers[b"content-range"] == b"bytes 0-9999/*"
            respond(sock, 201, cbor2.dumps({"required": []}), CBOR)
        return True

    c = client_for(servers(keep_alive(route)))
    allocation = call(c.allocate_buckets, SI, SECRET, SECRET, frozenset({3}), 10_000)
    writer = allocation.writers[3]
    call(writer.write, 0, os.urandom(10_000))
    sent = c.pool.requests_sent
    call(writer.close)
    assert c.pool.requests_sent == sent


def test_close_of_an_incomplete_share_is_refused(servers):
    def route(method, target, headers, body, sock) -> bool:
        if method == b"POST":
            respond(sock, 200, cbor2.dumps({"already-have": set(), "allocated": {0}}), CBOR)
        else:
            respond(sock, 200, cbor2.dumps({"required": [{"begin": 10, "end": 20}]}), CBOR)
        return True

    c = client_for(servers(keep_alive(route)))
    writer = call(c.allocate_buckets, SI, SECRET, SECRET, frozenset({0}), 20).writers[0]
    call(writer.write, 0, b"a" * 10)
    with pytest.raises(ServerRefused):
        call(writer.close)


def test_dropped_connection_mid_patch_then_the_pool_recovers(servers):
    state = {"patches": 0}

    def handler(sock: ssl.SSLSocket, reader: ConnReader) -> None:
        while True:
            got = reader.head()
            if got is None:
                return
            method, target, headers = got
            if method == b"POST":
                reader.body(int(headers[b"content-length"]))
                respond(sock, 200, cbor2.dumps({"already-have": set(), "allocated": {0}}), CBOR)
                continue
            state["patches"] += 1
            if state["patches"] <= 2:  # the kept-alive connection, then the fresh one tried once more
                reader.body(5000)
                return  # gone in the middle of the body
            reader.body(int(headers[b"content-length"]))
            respond(sock, 201, cbor2.dumps({"required": []}), CBOR)

    lost = []
    s = servers(handler)
    c = HttpStorageClient("127.0.0.1", s.port, s.spki, b"x", "test", reactor_thread.reactor,
                          on_unreachable=lambda: lost.append(1))
    writer = call(c.allocate_buckets, SI, SECRET, SECRET, frozenset({0}), 1_000_000).writers[0]
    data = os.urandom(1_000_000)
    with pytest.raises(ServerUnreachable):
        call(writer.write, 0, data)
    assert lost == [1]
    assert state["patches"] == 2
    call(writer.write, 0, data)
    call(writer.close)
    assert c.pool.connections_made == 3


def test_pin_mismatch_is_unreachable_without_secrets(servers):
    got = []

    def handler(sock: ssl.SSLSocket, reader: ConnReader) -> None:
        got.append(sock.recv(100))

    s = servers(handler)
    c = client_for(s, spki=b"Z" * 43)
    with pytest.raises(ServerUnreachable) as caught:
        call(c.slot_testv_and_readv_and_writev, SI, WriteSecrets(SECRET, SECRET, SECRET),
             {0: SlotWrite((), ((0, b"x"),))}, [])
    assert "certificate does not match" in str(caught.value)
    assert "c3dpc3NudW0" not in str(caught.value) and "swissnum" not in str(caught.value)
    s.stop()
    assert got in ([], [b""])  # the server never saw a request byte


def test_deadline_gives_server_timeout_and_frees_the_thread(servers):
    release = threading.Event()

    def handler(sock: ssl.SSLSocket, reader: ConnReader) -> None:
        reader.head()
        release.wait(10)

    c = client_for(servers(handler), Deadlines(query=0.3))
    with pytest.raises(ServerTimeout):
        call(c.get_version)
    release.set()


def test_non_eq_operator_refused_locally(servers):
    c = client_for(servers(keep_alive(lambda *a: False)))
    with pytest.raises(ServerRefused) as caught:
        call(c.slot_testv_and_readv_and_writev, SI, WriteSecrets(SECRET, SECRET, SECRET),
             {0: SlotWrite(((0, 1, b"lt", b"x"),), ())}, [])
    assert "only b'eq'" in caught.value.reason
    assert c.pool.requests_sent == 0
