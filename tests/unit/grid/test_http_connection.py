"""HttpConnection: the first NURL that answers wins; a lost server is noticed and reconnected."""

import threading

import cbor2

from shoal.grid.http_client import HttpStorageClient
from shoal.grid.http_connection import HttpConnection
from shoal.grid.storage_client import Deadlines
from shoal.testing import reactor_thread
from tests.unit.grid.tls_fixture import TlsServer, keep_alive, respond

VERSION = cbor2.dumps({
    b"http://allmydata.org/tahoe/protocols/storage/v1": {
        b"maximum-immutable-share-size": 10**9, b"maximum-mutable-share-size": 10**9, b"available-space": 12345,
    },
    b"application-version": b"tahoe-lafs/1.20.0",
})


def version(method, target, headers, body, sock) -> bool:
    assert target == b"/storage/v1/version"
    respond(sock, 200, VERSION, (("content-type", "application/cbor"),))
    return True


def client(port: int, spki: bytes, conn_box: list) -> HttpStorageClient:
    return HttpStorageClient("127.0.0.1", port, spki, b"x", "srv", reactor_thread.reactor, Deadlines(query=2),
                             on_unreachable=lambda: conn_box[0].unreachable())


def wait(event: threading.Event, what: str) -> None:
    assert event.wait(20), what


def test_first_answer_wins_then_loss_and_reconnect():
    good = TlsServer(keep_alive(version))
    dead = TlsServer(keep_alive(version))
    dead_port = dead.port
    dead.stop()
    box: list = []
    clients = [client(dead_port, good.spki, box), client(good.port, good.spki, box)]
    conn = HttpConnection(clients, reactor_thread.reactor, Deadlines(query=2), probe_interval=0.2)
    box.append(conn)
    connected, lost, again = threading.Event(), threading.Event(), threading.Event()
    got = []

    def on_connected(c, version):
        assert version is not None  # the connecting version answer, handed on
        got.append(c)
        (again if connected.is_set() else connected).set()

    try:
        reactor_thread.call(conn.start, on_connected, lost.set)
        wait(connected, "never connected")
        assert got[0] is clients[1]
        status = conn.status(0)
        assert status.connected and status.summary == f"Connected to 127.0.0.1:{good.port} via HTTPS"
        assert conn.protocol == "HTTP"
        port, identity = good.port, good.identity
        good.stop()
        wait(lost, "the loss was not noticed")
        status = reactor_thread.call(lambda: conn.status(reactor_thread.reactor.seconds()))
        assert not status.connected and (status.summary.startswith("Reconnecting in")
                                         or status.summary == "Trying to connect")
        good = TlsServer(keep_alive(version), port=port, identity=identity)
        wait(again, "never reconnected")
        assert got[1] is clients[1]
    finally:
        reactor_thread.call(conn.stop)
        good.stop()
