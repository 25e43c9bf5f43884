"""The same-port switch: Foolscap's GET /id/ goes to Foolscap's Negotiation, anything else to HTTPS."""

from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from shoal.storage.http_listener import FIRST_BYTES_TIMEOUT, FoolscapOrHttps, HttpsBesideFoolscap


class Recorder(Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.lost = False

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason=None) -> None:
        self.lost = True


class FakeNegotiation(Recorder):
    """Stands in for foolscap.negotiate.Negotiation (its constructor and initServer)."""

    def __init__(self, logparent=None) -> None:
        super().__init__()
        self.inited = None

    def initServer(self, listener, info) -> None:
        self.inited = (listener, info)


def make(monkeypatch, https=True):
    monkeypatch.setattr("shoal.storage.http_listener.Negotiation", FakeNegotiation)
    clock = Clock()
    switch = HttpsBesideFoolscap(clock)
    made = []
    if https:
        factory = Factory.forProtocol(Recorder)
        original = factory.buildProtocol

        def build(addr):
            proto = original(addr)
            made.append(proto)
            return proto

        factory.buildProtocol = build
        switch.https_factory = factory
    proto = switch.negotiation_class()(logparent="lp")
    assert isinstance(proto, FoolscapOrHttps)
    proto.initServer("listener", "info")
    proto.factory = "listener"
    transport = StringTransport()
    proto.makeConnection(transport)
    return switch, proto, transport, clock, made


def test_foolscap_connections_reach_the_negotiation_with_every_byte(monkeypatch):
    switch, proto, transport, clock, made = make(monkeypatch)
    proto.dataReceived(b"GET /i")
    proto.dataReceived(b"d/abc HTTP/1.1\r\n")
    proto.dataReceived(b"more")
    negotiation = proto._negotiation
    assert negotiation.inited == ("listener", "info") and negotiation.factory == "listener"
    assert negotiation.transport is transport
    assert negotiation.received == b"GET /id/abc HTTP/1.1\r\nmore"
    assert made == []
    proto.connectionLost(None)
    assert negotiation.lost
    assert switch.connections == {"foolscap": 1, "https": 0, "refused": 0}
    assert not clock.getDelayedCalls()


def test_other_connections_go_to_https(monkeypatch):
    switch, proto, transport, clock, made = make(monkeypatch)
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    proto.dataReceived(hello)
    proto.dataReceived(b"rest")
    (https,) = made
    assert https.transport is transport
    assert https.received == hello + b"rest"
    assert proto._negotiation.received == b""
    assert switch.connections["https"] == 1


def test_silent_connections_are_cut_after_30_seconds(monkeypatch):
    switch, proto, transport, clock, made = make(monkeypatch)
    proto.dataReceived(b"GET")
    clock.advance(FIRST_BYTES_TIMEOUT - 1)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnected or transport.disconnecting
    assert switch.connections["refused"] == 1


def test_without_https_only_foolscap_is_taken(monkeypatch):
    switch, proto, transport, clock, made = make(monkeypatch, https=False)
    proto.dataReceived(b"\x16\x03\x01\x02\x00\x01\x00\x01")
    assert transport.disconnecting
    assert switch.connections["refused"] == 1
