"""The server's stdlib-ssl TLS layer, in memory: a real stdlib TLS client against StdlibTLSServer."""

import os
import ssl

import pytest
from foolscap.crypto import createCertificate
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from shoal.protocol.http_storage import authorization_header
from shoal.protocol.nurl import spki_hash
from shoal.storage.http_server import HttpStorageServer
from shoal.storage.http_tls import HANDSHAKE_TIMEOUT, StdlibTLSFactory, server_context
from shoal.storage.server import StorageServer

CERT = createCertificate()  # what a Foolscap Tub makes for private/node.pem
PEM = CERT.dumpPEM()


class TcpTransport(StringTransport):
    def setTcpNoDelay(self, enabled: bool) -> None:
        self.nodelay = enabled


class Echo(Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.lost = False

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if data.startswith(b"echo:"):
            self.transport.write(data[5:])

    def connectionLost(self, reason=None) -> None:
        self.lost = True


class TlsClient:
    """A stdlib TLS client wired by hand to a server protocol over a StringTransport."""

    def __init__(self, server_factory, context=None) -> None:
        ctx = context or ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.ssl = ctx.wrap_bio(self.incoming, self.outgoing, server_side=False)
        self.transport = TcpTransport()
        self.server = server_factory.buildProtocol(None)
        self.server.makeConnection(self.transport)

    def pump(self) -> None:
        """Move bytes both ways until neither side has anything to say."""
        for _ in range(100):
            moved = False
            if self.outgoing.pending:
                self.server.dataReceived(self.outgoing.read())
                moved = True
            data = self.transport.value()
            if data:
                self.transport.clear()
                self.incoming.write(data)
                moved = True
            if not moved:
                return

    def handshake(self) -> None:
        for _ in range(10):
            try:
                self.ssl.do_handshake()
                self.pump()
                return
            except ssl.SSLWantReadError:
                self.pump()
        raise AssertionError("no handshake")

    def send(self, data: bytes) -> None:
        self.ssl.write(data)
        self.pump()

    def read_all(self) -> bytes:
        out = b""
        while True:
            try:
                chunk = self.ssl.read(1 << 20)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                return out
            if not chunk:
                return out
            out += chunk


def factory(clock=None, proto=Echo):
    return StdlibTLSFactory(server_context(PEM), Factory.forProtocol(proto), clock or Clock())


def test_the_handshake_presents_the_node_certificate_and_data_flows_both_ways():
    f = factory()
    client = TlsClient(f)
    client.handshake()
    der = client.ssl.getpeercert(binary_form=True)
    assert spki_hash(der) == spki_hash(CERT.dumpPEM())  # what the NURL pins
    assert client.ssl.version() in ("TLSv1.2", "TLSv1.3")
    assert f.handshakes == {"done": 1, "failed": 0, "timed_out": 0}
    big = os.urandom(3 * 1024 * 1024 + 17)  # many records and more than one read buffer
    client.send(big)
    assert client.server.wrapped.received == big
    client.send(b"echo:" + b"x" * 100000)
    assert client.read_all() == b"x" * 100000


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_below_1_2_is_refused():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except ValueError:
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    f = factory()
    client = TlsClient(f, ctx)
    with pytest.raises(ssl.SSLError):
        client.handshake()
    assert f.handshakes["failed"] == 1
    assert client.transport.disconnecting
    assert client.server.wrapped.received == b""


def test_garbage_instead_of_a_client_hello_is_cut_at_once():
    f = factory()
    client = TlsClient(f)
    client.server.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.transport.disconnecting
    assert f.handshakes["failed"] == 1
    client.server.dataReceived(os.urandom(100000))  # more after the refusal is ignored
    assert client.server.wrapped.received == b""


def test_a_stalled_handshake_is_aborted_after_the_timeout_and_leaves_no_timer():
    clock = Clock()
    f = factory(clock)
    client = TlsClient(f)
    try:
        client.ssl.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = client.outgoing.read()
    client.server.dataReceived(hello[:20])  # a part of the ClientHello, then silence
    clock.advance(HANDSHAKE_TIMEOUT - 1)
    assert not client.transport.disconnecting
    clock.advance(1)
    assert client.transport.disconnecting  # StringTransport's abortConnection
    assert f.handshakes["timed_out"] == 1
    client.server.connectionLost(None)
    assert client.server.wrapped is None
    assert not clock.getDelayedCalls()


def test_a_finished_handshake_cancels_the_timer():
    clock = Clock()
    client = TlsClient(factory(clock))
    client.handshake()
    assert not clock.getDelayedCalls()


def test_close_notify_from_the_client_closes_the_connection():
    client = TlsClient(factory())
    client.handshake()
    client.send(b"hello")
    try:
        client.ssl.unwrap()
    except ssl.SSLWantReadError:
        pass
    client.pump()
    assert client.transport.disconnecting
    assert client.server.wrapped.received == b"hello"


def test_the_server_closing_sends_close_notify():
    client = TlsClient(factory())
    client.handshake()
    client.server.wrapped.transport.loseConnection()
    client.pump()
    assert client.transport.disconnecting
    assert client.ssl.read(10) == b""
    client.ssl.unwrap()  # completes at once: the server's close_notify is in


def test_an_http_storage_request_over_the_tls_layer(tmp_path):
    adapter = HttpStorageServer(StorageServer(str(tmp_path), b"\x01" * 20), b"swiss")
    f = StdlibTLSFactory(server_context(PEM), adapter.site(), Clock())
    client = TlsClient(f)
    client.handshake()
    client.send(b"GET /storage/v1/version HTTP/1.1\r\nHost: x\r\nAccept: application/cbor\r\n"
                b"Authorization: " + authorization_header(b"swiss") + b"\r\n\r\n")
    answer = client.read_all()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"application/cbor" in answer
    client.send(b"GET /storage/v1/version HTTP/1.1\r\nHost: x\r\nAccept: application/cbor\r\n"
                b"Authorization: Tahoe-LAFS d3Jvbmc=\r\n\r\n")
    assert client.read_all().startswith(b"HTTP/1.1 401 ")  # keep-alive: a second request on the same TLS
    client.server.connectionLost(None)


def test_the_key_is_loaded_through_the_given_private_directory_and_not_left_there(tmp_path, monkeypatch):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    seen = []
    real = ssl.SSLContext.load_cert_chain

    def load(self, path, *args, **kwargs):
        seen.append((os.path.dirname(os.path.dirname(path)), os.stat(path).st_mode & 0o777,
                     os.stat(os.path.dirname(path)).st_mode & 0o777))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", load)
    server_context(PEM, str(private))
    assert seen == [(str(private), 0o600, 0o700)]
    assert os.listdir(private) == []
