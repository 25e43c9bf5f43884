"""Idle, slow and half-open connections on the web port's channel (ShoalChannel,
also the blob port's when the node wires it): real TCP on 127.0.0.1, the
real Site, the timeouts shortened for the test."""

import socket
import time

import pytest
from twisted.internet import endpoints
from twisted.web import resource, server

from shoal.apps.blobs.early import IDLE_TIMEOUT as BLOB_IDLE
from shoal.apps.blobs.early import BlobSite
from shoal.testing import reactor_thread
from shoal.web import spool
from shoal.web.spool import IDLE_TIMEOUT, ShoalSite

BIG = 32 * 1024 * 1024


class Streamer:
    """A push producer writing BIG bytes in 64 KiB chunks while not paused (as a download does)."""

    def __init__(self, request):
        self.request = request
        self.sent = 0
        self.paused = False

    def resumeProducing(self):
        self.paused = False
        while not self.paused and self.sent < BIG:
            self.request.write(b"x" * 65536)
            self.sent += 65536
        if self.sent >= BIG:
            self.request.unregisterProducer()
            self.request.finish()

    def pauseProducing(self):
        self.paused = True

    def stopProducing(self):
        self.paused = True


class Big(resource.Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self.finished: list[str] = []

    def render_GET(self, request):
        if request.path == b"/big":
            d = request.notifyFinish()
            d.addCallbacks(lambda _: self.finished.append("done"), lambda _f: self.finished.append("lost"))
            streamer = Streamer(request)
            request.registerProducer(streamer, True)
            reactor_thread.reactor.callLater(0, streamer.resumeProducing)
            return server.NOT_DONE_YET
        return b"hello"


@pytest.fixture
def site(monkeypatch):
    monkeypatch.setattr(spool, "HEADER_TIMEOUT", 0.5)
    monkeypatch.setattr(spool, "STALL_TIMEOUT", 0.5)
    leaf = Big()
    s = ShoalSite(leaf, timeout=30)

    def listen():
        return endpoints.serverFromString(reactor_thread.reactor, "tcp:0:interface=127.0.0.1").listen(s)

    port = reactor_thread.call(listen)
    yield port.getHost().port, leaf
    reactor_thread.call(port.stopListening)


def closed_within(sock: socket.socket, seconds: float, drip: bytes | None = None) -> float | None:
    """Seconds until the server closed the connection (None if it did not), sending
    `drip` every 0.1 s meanwhile."""
    start = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - start < seconds:
        try:
            if drip is not None:
                sock.sendall(drip)
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
    return None


def test_the_sites_have_an_idle_timeout():
    assert ShoalSite(resource.Resource()).timeOut == IDLE_TIMEOUT == 60
    assert BlobSite(resource.Resource(), None, 1).timeOut == BLOB_IDLE == 60  # type: ignore[arg-type]


def test_headers_dripped_a_line_at_a_time_are_cut_off(site):
    port, _ = site
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        took = closed_within(sock, 5, drip=b"X-Slow: 1\r\n")
    assert took is not None and took < 3


def test_a_normal_request_is_answered_and_the_connection_kept(site):
    port, _ = site
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"hello"):
                answer += sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200")
        time.sleep(0.8)  # past the header and stall timeouts, idle within the idle timeout
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_a_client_that_reads_nothing_of_a_response_is_dropped(site):
    port, leaf = site
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while not leaf.finished and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leaf.finished == ["lost"]
    finally:
        sock.close()
