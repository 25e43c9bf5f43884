"""HTTPS and Foolscap on the same port, as Tahoe-LAFS 1.20 serves them (its protocol_switch.py).

A Foolscap client opens with ``GET /id/<tubid>`` in clear text; an HTTPS
client opens with a TLS ClientHello. So each connection a Tub's listener
accepts is held until its first 8 bytes arrive (30 seconds at most), then
handed whole to Foolscap's own server-side Negotiation or to TLS (with the
Tub's own certificate, private/node.pem) in front of the HTTP storage Site.
The TLS is the stdlib ``ssl`` module's (shoal.storage.http_tls), not
pyOpenSSL's: it costs the server less than half the CPU per byte.

shoal does this without Tahoe's class swapping: the Tub's Listener is made
with ``negotiationClass`` set to ``FoolscapOrHttps``, which stays the
connection's protocol and passes every byte it receives to the protocol it
chose (Foolscap's startTLS and its Banana broker work through it unchanged).
Outgoing Foolscap connections are untouched. Until ``serve`` is called (a
node whose storage is off, or before the storage server exists) a
connection that is not Foolscap is closed.
"""

import functools
from typing import Any

from foolscap.negotiate import Negotiation
from foolscap.pb import Listener
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import Protocol

from shoal.storage.http_tls import StdlibTLSFactory, server_context

reactor: Any = _reactor

FOOLSCAP_PREFIX = b"GET /id/"
PEEK_BYTES = len(FOOLSCAP_PREFIX)
FIRST_BYTES_TIMEOUT = 30.0  # seconds a connection may take to say what it speaks (Tahoe's)


class HttpsBesideFoolscap:
    """What a Tub's listeners do with connections that are not Foolscap."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock if clock is not None else reactor
        self.https_factory: Any = None  # a StdlibTLSFactory in front of the Site
        self.connections = {"foolscap": 0, "https": 0, "refused": 0}

    def serve(self, site: Any, certificate: Any, scratch: str | None = None) -> None:
        """Serve ``site`` over TLS with ``certificate`` (a twisted PrivateCertificate: the Tub's);
        ``scratch`` is where its key may be written for the moment it is loaded (the node's private/)."""
        self.https_factory = StdlibTLSFactory(server_context(certificate.dumpPEM(), scratch), site, self.clock)

    def negotiation_class(self) -> Any:
        """A stand-in for Foolscap's Negotiation class, for a Listener's ``negotiationClass``."""
        return functools.partial(FoolscapOrHttps, self)

    def listen_on(self, tub: Any, description: str) -> Listener:
        """``tub.listenOn(description)``, with this switch in front of Foolscap."""
        listener = Listener(tub, description, {}, self.negotiation_class())
        tub.listeners.append(listener)
        listener.setServiceParent(tub)
        return listener


class FoolscapOrHttps(Protocol):
    """One accepted connection: Foolscap's Negotiation or HTTPS, chosen by its first bytes."""

    def __init__(self, switch: HttpsBesideFoolscap, logparent: Any = None) -> None:
        self._switch = switch
        self._negotiation = Negotiation(logparent=logparent)
        self._inner: Any = None
        self._buffer = b""
        self._timeout: Any = None  # an IDelayedCall

    # the Listener sets these up on what it takes for a Negotiation
    def initServer(self, listener: Any, connection_info: Any) -> None:
        self._negotiation.initServer(listener, connection_info)

    @property
    def factory(self) -> Any:
        return self._negotiation.factory

    @factory.setter
    def factory(self, value: Any) -> None:
        self._negotiation.factory = value

    def connectionMade(self) -> None:
        self._timeout = self._switch.clock.callLater(FIRST_BYTES_TIMEOUT, self._too_slow)

    def _too_slow(self) -> None:
        self._timeout = None
        self._switch.connections["refused"] += 1
        transport: Any = self.transport
        transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.dataReceived(data)
            return
        self._buffer += data
        if len(self._buffer) < PEEK_BYTES:
            return
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        transport: Any = self.transport
        inner: Any
        if self._buffer.startswith(FOOLSCAP_PREFIX):
            self._switch.connections["foolscap"] += 1
            inner = self._negotiation
        elif self._switch.https_factory is not None:
            self._switch.connections["https"] += 1
            inner = self._switch.https_factory.buildProtocol(transport.getPeer())
        else:
            self._switch.connections["refused"] += 1
            transport.loseConnection()
            return
        buffered, self._buffer = self._buffer, b""
        self._inner = inner
        inner.makeConnection(transport)
        inner.dataReceived(buffered)

    def connectionLost(self, reason: Any = None) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        if self._inner is not None:
            self._inner.connectionLost(reason)
