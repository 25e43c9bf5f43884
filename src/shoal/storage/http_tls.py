"""TLS for the HTTP storage server with the stdlib ``ssl`` module, under the Twisted reactor.

Twisted's own TLS (TLSMemoryBIOProtocol over pyOpenSSL) costs the storage
server 4-7 CPU seconds per GB; the stdlib ``ssl`` module does the same work
for 1.3-2 (docs/http-storage.md has the figures). ``StdlibTLSServer`` is a
Protocol on the accepted TCP connection that runs an ``ssl.SSLObject`` over
two ``MemoryBIO``s (as asyncio's sslproto does) and is itself the transport
of the protocol it wraps (twisted.web's HTTPChannel): what the connection
receives is decrypted and handed on, what the channel writes is encrypted
and written. Everything happens on the reactor thread, so the StorageServer
calls the HTTP adapter makes stay exactly where they were.

The server context speaks TLS 1.2 and 1.3 only, with the node's own
certificate (private/node.pem, the key the NURL's SPKI hash pins), asks for
no client certificate (as Tahoe-LAFS 1.20's server does not), refuses
renegotiation, and sends no session tickets. A connection that has not
finished its handshake within ``HANDSHAKE_TIMEOUT`` is cut; one that sends
bytes that are not TLS is cut at once (after the alert OpenSSL writes).
"""

import os
import shutil
import ssl
import tempfile
from typing import Any, cast

from twisted.internet import interfaces
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

reactor: Any = _reactor

HANDSHAKE_TIMEOUT = 30.0  # seconds from the first byte to a finished handshake
READ_BUFFER = 256 * 1024  # plaintext handed to the wrapped protocol per call, at most


def server_context(certificate_pem: bytes, scratch: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context for ``certificate_pem`` (the private key and certificate, PEM).

    The stdlib loads keys from files only: the PEM is written to a temporary
    directory (0700, file 0600) inside ``scratch`` (a node passes its
    private/ directory, where its key already lives) for the moment it is
    loaded, then removed.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_NONE  # clients are authorized by the swissnum, not by certificates
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    ctx.num_tickets = 0  # shoal's and Tahoe's clients do not resume sessions
    where = tempfile.mkdtemp(prefix="tls-load-", dir=scratch)
    try:
        path = os.path.join(where, "node.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(certificate_pem)
        ctx.load_cert_chain(path)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    return ctx


class StdlibTLSFactory:
    """Builds a ``StdlibTLSServer`` around each protocol ``factory`` builds (a twisted.web Site)."""

    def __init__(self, context: ssl.SSLContext, factory: Any, clock: Any = None) -> None:
        self.context = context
        self.factory = factory
        self.clock = clock if clock is not None else reactor
        self.handshakes = {"done": 0, "failed": 0, "timed_out": 0}

    def buildProtocol(self, addr: Any) -> "StdlibTLSServer":
        return StdlibTLSServer(self, self.factory.buildProtocol(addr))


@implementer(interfaces.ITCPTransport, interfaces.IPushProducer, interfaces.IConsumer)
class StdlibTLSServer(Protocol):
    """One server-side TLS connection: the transport of the protocol it wraps."""

    def __init__(self, factory: StdlibTLSFactory, wrapped: Any) -> None:
        self._factory = factory
        self.wrapped = wrapped
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = factory.context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._handshaken = False
        self._failed = False
        self._pending: list[bytes] = []  # what the wrapped protocol wrote before the handshake ended
        self._closing = False
        self._buffer = bytearray(READ_BUFFER)
        self._view = memoryview(self._buffer)
        self._timer: Any = None
        self.disconnecting = False

    # -- the TCP side --------------------------------------------------------------

    def connectionMade(self) -> None:
        self._timer = self._factory.clock.callLater(HANDSHAKE_TIMEOUT, self._handshake_too_slow)
        self.wrapped.makeConnection(self)

    def dataReceived(self, data: bytes) -> None:
        if self._failed:
            return
        self._incoming.write(data)
        try:
            if not self._handshaken and not self._handshake():
                return
            self._read_plaintext()
        except ssl.SSLError:
            self._fail()

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._cancel_timer()
        wrapped, self.wrapped = self.wrapped, None
        if wrapped is not None:
            wrapped.connectionLost(reason)

    def _handshake(self) -> bool:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        self._handshaken = True
        self._cancel_timer()
        self._factory.handshakes["done"] += 1
        pending, self._pending = self._pending, []
        for data in pending:
            self._ssl.write(data)
        self._flush()
        return True

    def _read_plaintext(self) -> None:
        view, size = self._view, len(self._buffer)
        closed = False
        while not closed:
            filled = 0
            while filled < size:
                try:
                    count = cast(int, self._ssl.read(size - filled, view[filled:]))  # a count, given a buffer
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:  # the client's close_notify
                    closed = True
                    break
                if not count:
                    closed = True
                    break
                filled += count
            if filled:
                self._flush()  # TLS 1.3 may answer a read (a key update)
                if self.wrapped is None:
                    return
                self.wrapped.dataReceived(bytes(view[:filled]))
                if self._failed or self.wrapped is None:
                    return
            if filled < size:
                break
        self._flush()
        if closed:
            self.loseConnection()

    def _flush(self) -> None:
        if self._outgoing.pending:
            transport: Any = self.transport
            transport.write(self._outgoing.read())

    def _fail(self) -> None:
        """Bytes that are not TLS (or a refused handshake): send OpenSSL's alert and close."""
        self._failed = True
        self._cancel_timer()
        if not self._handshaken:
            self._factory.handshakes["failed"] += 1
        transport: Any = self.transport
        if self._outgoing.pending:
            transport.write(self._outgoing.read())
        transport.loseConnection()

    def _handshake_too_slow(self) -> None:
        self._timer = None
        self._failed = True
        self._factory.handshakes["timed_out"] += 1
        transport: Any = self.transport
        transport.abortConnection()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- the transport the wrapped protocol sees ----------------------------------------

    def write(self, data: bytes) -> None:
        if self._failed or self._closing or not data:
            return
        if not self._handshaken:
            self._pending.append(bytes(data))
            return
        try:
            self._ssl.write(data)
        except ssl.SSLError:
            self._fail()
            return
        self._flush()

    def writeSequence(self, data: Any) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """Send close_notify after what was written, then close the TCP connection."""
        if self._closing:
            return
        self._closing = self.disconnecting = True
        transport: Any = self.transport
        if self._handshaken and not self._failed:
            try:
                self._ssl.unwrap()
            except ssl.SSLError:  # close_notify is written; we do not wait for the client's
                pass
            self._flush()
        transport.loseConnection()

    def abortConnection(self) -> None:
        self._closing = self.disconnecting = True
        transport: Any = self.transport
        transport.abortConnection()

    def getPeer(self) -> Any:
        transport: Any = self.transport
        return transport.getPeer()

    def getHost(self) -> Any:
        transport: Any = self.transport
        return transport.getHost()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        transport: Any = self.transport
        transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        transport: Any = self.transport
        transport.unregisterProducer()

    def pauseProducing(self) -> None:
        transport: Any = self.transport
        transport.pauseProducing()

    def resumeProducing(self) -> None:
        transport: Any = self.transport
        transport.resumeProducing()

    def stopProducing(self) -> None:
        transport: Any = self.transport
        transport.stopProducing()

    def __getattr__(self, name: str) -> Any:  # setTcpNoDelay, getHandle, ... from the TCP transport
        if name.startswith("_") or name in ("transport", "wrapped"):
            raise AttributeError(name)
        return getattr(self.transport, name)
