"""The pinned HTTPS transport against a scripted TLS server on loopback."""

import os
import ssl
import threading

import pytest

from shoal.grid.https_pool import (
    CertificateMismatch,
    ConnectFailed,
    ConnectionDropped,
    InFlight,
    Request,
    ResponseTooLarge,
    ServerPool,
)
from tests.unit.grid.tls_fixture import ConnReader, TlsServer, keep_alive, respond, spki_hash


def echo(method: bytes, target: bytes, headers: dict[bytes, bytes], body: bytes, sock: ssl.SSLSocket) -> bool:
    respond(sock, 200, method + b" " + target + b" " + str(len(body)).encode(), (("x-auth", headers.get(b"authorization", b"").decode()),))
    return True


@pytest.fixture
def server():
    made: list[TlsServer] = []

    def make(handler=None, **kw):
        s = TlsServer(handler or keep_alive(echo), **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def pool_for(s: TlsServer, spki: bytes | None = None, **kw) -> ServerPool:
    return ServerPool("127.0.0.1", s.port, spki if spki is not None else s.spki, spki_hash, timeout=10, **kw)


def test_requests_share_one_kept_alive_connection(server):
    s = server()
    pool = pool_for(s)
    for i in range(3):
        r = pool.request(Request(b"GET", f"/v/{i}".encode(), [(b"authorization", b"Tahoe-LAFS x")]))
        assert r.status == 200
        assert r.body == f"GET /v/{i} 0".encode()
        assert r.header(b"x-auth") == b"Tahoe-LAFS x"
    assert pool.connections_made == 1
    assert s.accepted == 1
    pool.close()


def test_large_body_sent_in_parts_without_joining(server):
    s = server()
    pool = pool_for(s)
    big = os.urandom(3 * 1024 * 1024)
    view = memoryview(big)
    r = pool.request(Request(b"PATCH", b"/p", (), [view[:1000], view[1000:]]))
    assert r.body == b"PATCH /p " + str(len(big)).encode()
    pool.close()


def test_pin_mismatch_refused_before_any_request_byte(server):
    seen: list[bytes] = []

    def record(sock: ssl.SSLSocket, reader: ConnReader) -> None:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            seen.append(data)

    s = server(record)
    pool = pool_for(s, spki=b"A" * 43)
    with pytest.raises(CertificateMismatch) as caught:
        pool.request(Request(b"GET", b"/secret", [(b"authorization", b"Tahoe-LAFS c3dpc3M=")]))
    assert "does not match" in str(caught.value)
    assert "c3dpc3M" not in str(caught.value)
    s.stop()  # joins the server's connection thread: everything it got is recorded
    assert s.accepted == 1
    assert seen == []


def test_expired_certificate_accepted_when_pin_matches(server):
    s = server(expired=True)
    assert pool_for(s).request(Request(b"GET", b"/x")).status == 200


def test_connection_refused_is_connect_failed(server):
    s = server()
    s.stop()
    with pytest.raises(ConnectFailed):
        pool_for(s).request(Request(b"GET", b"/x"))


def test_body_over_the_cap_refused_by_content_length(server):
    def big(method, target, headers, body, sock) -> bool:
        respond(sock, 200, b"x" * 5000)
        return True

    s = server(keep_alive(big))
    pool = pool_for(s)
    with pytest.raises(ResponseTooLarge):
        pool.request(Request(b"GET", b"/x", max_body=4999))
    assert pool.request(Request(b"GET", b"/x", max_body=5000)).body == b"x" * 5000
    assert pool.connections_made == 2  # the refused one was dropped


def test_chunked_body_over_the_cap_refused_while_reading(server):
    def chunked(method, target, headers, body, sock) -> bool:
        sock.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(10):
            sock.sendall(b"400\r\n" + b"y" * 1024 + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        return True

    s = server(keep_alive(chunked))
    with pytest.raises(ResponseTooLarge):
        pool_for(s).request(Request(b"GET", b"/x", max_body=4096))
    assert len(pool_for(s).request(Request(b"GET", b"/x", max_body=10240)).body) == 10240


def test_dropped_mid_patch_then_the_pool_recovers(server):
    state = {"drop": True}

    def flaky(sock: ssl.SSLSocket, reader: ConnReader) -> None:
        got = reader.head()
        if got is None:
            return
        method, target, headers = got
        if state["drop"]:
            state["drop"] = False
            reader.body(1000)  # part of the body, then gone
            return
        body = reader.body(int(headers[b"content-length"]))
        respond(sock, 201, str(len(body)).encode())
        keep_alive(echo)(sock, reader)

    s = server(flaky)
    pool = pool_for(s)
    data = os.urandom(2 * 1024 * 1024)
    with pytest.raises(ConnectionDropped):
        pool.request(Request(b"POST", b"/p", (), [data]))
    r = pool.request(Request(b"PATCH", b"/p", (), [data]))
    assert (r.status, r.body) == (201, str(len(data)).encode())
    assert pool.request(Request(b"GET", b"/after")).status == 200
    assert pool.connections_made == 2


def test_idle_connection_closed_by_server_is_replaced(server):
    def once(method, target, headers, body, sock) -> bool:
        respond(sock, 200, b"ok")
        return False  # close after each answer, without saying so

    s = server(keep_alive(once))
    pool = pool_for(s)
    assert pool.request(Request(b"GET", b"/1")).body == b"ok"
    # wait until the server's close has reached us, then reuse must notice
    for _ in range(3):
        assert pool.request(Request(b"GET", b"/2")).body == b"ok"
    assert pool.connections_made == 4


def test_cancel_unblocks_a_waiting_exchange(server):
    started = threading.Event()

    def hang(sock: ssl.SSLSocket, reader: ConnReader) -> None:
        reader.head()
        started.set()
        reader.body(10**9)  # until the client goes

    s = server(hang)
    pool = pool_for(s)
    flight = InFlight()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pool.request(Request(b"GET", b"/x"), flight)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(10)
    flight.cancel()
    t.join(10)
    assert not t.is_alive()
    assert isinstance(errors[0], ConnectionDropped)


def test_large_response_read_straight_then_the_connection_is_reused(server):
    big = os.urandom(3 * 1024 * 1024 + 7)

    def route(method, target, headers, body, sock) -> bool:
        if target == b"/big":
            head = f"HTTP/1.1 206 Partial\r\ncontent-length: {len(big)}\r\n\r\n".encode()
            sock.sendall(head + big[:1000])  # part of the body arrives with the head
            sock.sendall(big[1000:])
        else:
            respond(sock, 200, b"small")
        return True

    s = server(keep_alive(route))
    pool = pool_for(s)
    r = pool.request(Request(b"GET", b"/big", max_body=len(big)))
    assert (r.status, r.body) == (206, big)
    assert pool.request(Request(b"GET", b"/next")).body == b"small"
    assert pool.request(Request(b"GET", b"/big", max_body=len(big))).body == big
    assert pool.connections_made == 1


def test_connection_lost_mid_large_response(server):
    def route(method, target, headers, body, sock) -> bool:
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"z" * 300_000)
        return False

    s = server(keep_alive(route))
    with pytest.raises(ConnectionDropped) as caught:
        pool_for(s).request(Request(b"GET", b"/big", max_body=10**6))
    assert caught.value.answered
