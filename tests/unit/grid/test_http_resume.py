"""A partial immutable share resumes over HTTP: a client that restarts and allocates the same
share again (the same upload secret, derived from its lease renewal secret) is offered the share
still in progress, and sends only the ranges the server's answers say it still requires."""

import os

import pytest
from twisted.internet import ssl

from shoal.grid.http_client import HttpStorageClient
from shoal.protocol.nurl import spki_hash
from shoal.storage import http_server
from shoal.storage.http_server import HttpStorageServer
from shoal.storage.server import StorageServer
from shoal.testing import reactor_thread
from tests.unit.grid.tls_fixture import self_signed

SI = bytes(range(16))
RENEW, CANCEL = b"r" * 32, b"c" * 32
SWISSNUM = b"resume-swissnum"
PIECE = 25_000


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A real StorageServer behind the HTTP adapter on a TLS port; counts the bytes it stores."""
    storage = StorageServer(str(tmp_path / "storage"), os.urandom(20))
    cert, key = self_signed()
    site = HttpStorageServer(storage, SWISSNUM).site()
    port = reactor_thread.call(lambda: reactor_thread.reactor.listenSSL(
        0, site, ssl.PrivateCertificate.loadPEM(cert + key).options(), interface="127.0.0.1"))
    stored: list[int] = []
    real = http_server.finish_chunk

    def counting(lock, stream):  # each upload chunk whose whole body arrived
        stored.append(stream.end - stream.start)
        return real(lock, stream)

    monkeypatch.setattr(http_server, "finish_chunk", counting)
    clients: list[HttpStorageClient] = []

    def connect() -> HttpStorageClient:
        clients.append(HttpStorageClient("127.0.0.1", port.getHost().port, spki_hash(cert).encode("ascii"),
                                         SWISSNUM, "resume", reactor_thread.reactor))
        return clients[-1]

    yield connect, stored, storage
    for c in clients:
        c.close()
    reactor_thread.call(port.stopListening)


def write_pieces(writer, data: bytes) -> None:
    for offset in range(0, len(data), PIECE):
        reactor_thread.call(writer.write, offset, data[offset:offset + PIECE])


def test_a_restarted_client_sends_only_what_the_server_still_requires(server):
    connect, stored, storage = server
    data = os.urandom(8 * PIECE)
    first = connect()
    allocation = reactor_thread.call(first.allocate_buckets, SI, RENEW, CANCEL, frozenset({0}), len(data))
    write_pieces(allocation.writers[0], data[: 4 * PIECE])  # then the client dies
    first.close()
    assert sum(stored) == 4 * PIECE

    # another client (other lease secrets, so another upload secret) is not offered the share
    other = connect()
    assert set(reactor_thread.call(other.allocate_buckets, SI, b"R" * 32, b"C" * 32, frozenset({0}),
                                   len(data)).writers) == set()

    stored.clear()
    again = connect()
    allocation = reactor_thread.call(again.allocate_buckets, SI, RENEW, CANCEL, frozenset({0}), len(data))
    assert set(allocation.writers) == {0} and allocation.already == frozenset()
    writer = allocation.writers[0]
    write_pieces(writer, data)
    reactor_thread.call(writer.close)
    # the first piece went (nothing was known yet); its answer said [4 pieces, end) is required
    assert stored == [PIECE] + [PIECE] * 4
    assert writer.bytes_skipped == 3 * PIECE
    assert reactor_thread.call(storage.get_buckets, SI)[0].read(0, len(data)) == data
