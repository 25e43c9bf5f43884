"""Request bodies that flow to disk while they arrive, and the convergent-key pass on the way.

twisted.web hands a resource the whole body only after the last byte arrived.
For a PUT, `StreamingRequest` instead gives each chunk, as the channel
receives it, to a `BodySpool`: chunks are batched and, in the CPU pool and
strictly in order, appended to an unlinked temporary file on disk and fed
to the convergent-key hasher. When more than SPOOL_HIGH bytes wait for the
pool, the connection's transport is paused (`pauseProducing`: the kernel's
receive window fills and TCP slows the sender); below SPOOL_LOW it resumes.
Memory per PUT is therefore a few MiB whatever the body size.

Why spool and not encode while the body arrives: Tahoe-LAFS 1.20's
convergent encryption makes the AES key the hash of the *whole* plaintext,
the storage index is the hash of that key, and placement (which servers get
which shares) starts from the storage index, so no share byte can be sent
before the last plaintext byte is known. Shoal therefore does the one
unavoidable pass over the plaintext (the key) while the body arrives,
which costs nothing extra when the network is the bottleneck, and encodes
from the spool right after; the upload reads the spool once more (from the
page cache, usually) and never re-hashes it. Without convergence, fully
streaming encoding would be possible, but Tahoe's web API has no per-request
switch for it and every shoal client node has a convergence secret, so one
code path serves both. See bench/web.py for the figures.
"""

import socket
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

from twisted.internet import defer
from twisted.python import log
from twisted.web import http, server

from shoal import cpu
from shoal.protocol.body_rate import BodyRatePolicy
from shoal.streaming import BodyRateChannel
from shoal.web import access_log

BATCH = 4 * 1024 * 1024  # bytes per pool job (disk append + hash)
SPOOL_HIGH = 16 * 1024 * 1024  # pause the sender above this many bytes waiting
SPOOL_LOW = 4 * 1024 * 1024  # and resume below this


class Hasher(Protocol):
    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


# size -> a fresh convergent-key hasher for a CHK file of that size (None: no key
# pass, e.g. a literal file); supplied by the node, which knows the secret and k/n
KeyHasherFactory = Callable[[int], Hasher | None]


class BodySpool:
    """A request body on its way to disk; file-like for twisted (write, seek, read, tell).

    After `await ready()`: `file` holds the whole body, `size` its length and
    `key` the convergent key (or None when no hasher was given).
    """

    def __init__(self, hasher: Hasher | None, producer: Any | None) -> None:
        self.file: BinaryIO = tempfile.TemporaryFile(prefix="shoal-put-")  # noqa: SIM115  # closed by close()
        self.size = 0
        self.key: bytes | None = None
        self._hasher = hasher
        self._producer = producer
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._busy = False
        self._paused = False
        self._complete = False
        self._error: BaseException | None = None
        self._waiters: list[defer.Deferred[None]] = []
        self.received = 0  # bytes received so far (progress)
        self._written = 0  # bytes on disk (pool thread)
        self._ready = False

    # -- the channel side (reactor thread) --

    def write(self, data: bytes) -> None:
        if self._complete or self._error is not None:
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.received += len(data)
        if self._pending_bytes > SPOOL_HIGH and not self._paused and self._producer is not None:
            self._paused = True
            self._producer.pauseProducing()
        self._kick()

    def input_complete(self) -> None:
        self._complete = True
        self._kick()

    def _kick(self) -> None:
        if self._busy or self._error is not None:
            return
        if not self._pending:
            if self._complete:
                self._resume()
                self._fire()
            return
        if self._pending_bytes < BATCH and not self._complete:
            return  # wait for a bigger batch
        batch = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        self._busy = True
        d = cpu.run(self._absorb, batch)
        d.addCallbacks(self._absorbed, self._failed)

    def _absorb(self, batch: bytes) -> None:  # pool thread
        self.file.write(batch)
        self._written += len(batch)
        if self._hasher is not None:
            self._hasher.update(batch)

    def _absorbed(self, _: Any) -> None:
        self._busy = False
        if self._paused and self._pending_bytes < SPOOL_LOW:
            self._resume()
        self._kick()

    def _failed(self, failure: Any) -> None:
        self._busy = False
        self._error = failure.value
        self._pending = []
        self._resume()
        self._fire()

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            if self._producer is not None:
                self._producer.resumeProducing()

    def _fire(self) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    # -- the handler side --

    async def ready(self) -> None:
        """Wait until every byte is on disk (and hashed); raise what went wrong if not."""
        if not (self._complete and not self._busy and not self._pending) and self._error is None:
            d: defer.Deferred[None] = defer.Deferred()
            self._waiters.append(d)
            await d
        if self._error is not None:
            raise self._error
        self.size = self._written
        if self._hasher is not None and self.key is None:
            self.key = self._hasher.digest()
        self._ready = True
        self.file.seek(0)

    def seek(self, offset: int, whence: int = 0) -> int:
        # twisted seeks to 0 before rendering; the position is only real after ready()
        return self.file.seek(offset, whence) if self._ready else 0

    def tell(self) -> int:
        return self.file.tell()

    def read(self, n: int = -1) -> bytes:
        return self.file.read(n)

    def close(self) -> None:
        self._error = self._error or ValueError("spool closed")
        self._resume()
        self.file.close()


def wants_key_pass(path: bytes) -> bool:
    """Whether a PUT to `path` creates an immutable file (so its key pass is worth doing)."""
    try:
        parts = urlsplit(path.decode("utf-8"))
    except UnicodeDecodeError:
        return False
    query = parse_qs(parts.query)
    t = (query.get("t") or [""])[0].strip()
    fmt = (query.get("format") or [""])[0].upper()
    mutable = (query.get("mutable") or ["false"])[0].lower() in ("true", "t", "1", "on")
    if t or fmt in ("SDMF", "MDMF") or (not fmt and mutable):
        return False
    segments = [s for s in parts.path.split("/") if s]
    if not segments or segments[0] not in ("uri", "cap"):
        return False
    # /uri: an unlinked upload; /uri/$CAP: overwriting a (mutable) file; deeper: a new child
    return len(segments) != 2


class StreamingRequest(server.Request):
    """A Request whose PUT body goes to a BodySpool while it arrives (see the module doc)."""

    def gotLength(self, length: int | None) -> None:
        channel = self.channel
        method = getattr(channel, "_command", b"")
        factory: KeyHasherFactory | None = getattr(getattr(channel, "site", None), "key_hasher", None)
        if method != b"PUT" or factory is None:
            super().gotLength(length)
            return
        path = getattr(channel, "_path", b"")
        hasher = factory(length) if length is not None and wants_key_pass(path) else None
        self.content = BodySpool(hasher, getattr(channel, "transport", None))

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if isinstance(self.content, BodySpool):
            self.content.input_complete()
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:
        if isinstance(self.content, BodySpool) and not self.content._complete:
            self.content.close()
        super().connectionLost(reason)


IDLE_TIMEOUT = 60  # seconds without a byte from the client while no request is being handled
HEADER_TIMEOUT = 30  # seconds from a request's first line to its last header
STALL_TIMEOUT = 120  # seconds a response may wait for a client that reads none of it
DEFAULT_BODY_RATE = BodyRatePolicy()


class ShoalChannel(BodyRateChannel):
    """HTTPChannel answering 414 to a request line longer than it reads (16 KiB)
    where Twisted closes the connection without a word; a header line too long
    is 431.

    Timeouts (Twisted's idle timeout, `Site.timeOut`, covers only the time no
    request is being handled, and is reset by every byte): a request's line
    and headers must all arrive within HEADER_TIMEOUT (one header byte a
    minute kept a connection forever); a response whose client reads nothing
    for STALL_TIMEOUT (the transport has paused us: its buffer is full) is
    aborted, so a vanished or half-open client releases its producer; TCP
    keepalive finds peers that vanished while a long request is handled; a
    request body must keep its Site's `body_rate` (protocol.body_rate: so many
    bytes a second in every window, windows in which our spool paused the
    sender excused) or the connection is closed.
    """

    _header_timer: Any = None
    _stall_timer: Any = None
    default_body_rate = DEFAULT_BODY_RATE

    def connectionMade(self) -> None:
        super().connectionMade()
        _keepalive(self.transport)

    def lineReceived(self, line: bytes) -> None:
        if self._header_timer is None and not getattr(self, "_handlingRequest", False):
            self._header_timer = self.callLater(HEADER_TIMEOUT, lambda: self._give_up("headers took too long"))
        super().lineReceived(line)

    def allHeadersReceived(self) -> None:
        self._cancel("_header_timer")
        super().allHeadersReceived()

    def body_paused(self) -> bool:
        request = self.requests[-1] if self.requests else None
        content = getattr(request, "content", None)
        return isinstance(content, BodySpool) and content._paused

    def body_too_slow(self, why: str) -> None:
        self._give_up(why)

    def pauseProducing(self) -> None:
        if self._stall_timer is None:
            self._stall_timer = self.callLater(STALL_TIMEOUT, lambda: self._give_up("the client reads nothing"))
        super().pauseProducing()

    def resumeProducing(self) -> None:
        self._cancel("_stall_timer")
        super().resumeProducing()

    def connectionLost(self, reason: Any = None) -> None:
        self._cancel("_header_timer")
        self._cancel("_stall_timer")
        super().connectionLost(reason)

    def _cancel(self, name: str) -> None:
        timer = getattr(self, name)
        setattr(self, name, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _give_up(self, why: str) -> None:
        self._header_timer = self._stall_timer = None
        self._stop_rate()
        transport: Any = self.transport
        if transport is None:
            return
        log.msg(f"web: closing the connection from {getattr(transport.getPeer(), 'host', '?')}: {why}")
        transport.abortConnection()

    def lineLengthExceeded(self, line: bytes) -> None:
        if getattr(self, "_path", None) is None:  # no request line yet: this is the one
            status = b"414 URI Too Long"
        else:
            status = b"431 Request Header Fields Too Large"
        body = b"the request line or a header is longer than %d bytes\n" % self.MAX_LENGTH
        transport: Any = self.transport
        transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        transport.loseConnection()


def _keepalive(transport: Any) -> None:
    """TCP keepalive probing after a minute of silence, where the platform allows."""
    try:
        transport.setTcpKeepAlive(True)
        handle = transport.getHandle()
        for option, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
            if hasattr(socket, option):
                handle.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    except (AttributeError, OSError):
        pass  # not TCP (a UNIX socket, a test transport)


def http_channel(factory: Any = None) -> Any:
    """Site.protocol: Twisted's HTTP/1.1-or-2 wrapper around a ShoalChannel (the blob
    port's Site takes it too, wired by the node)."""
    return http._GenericHTTPChannelProtocol(ShoalChannel())


class ShoalSite(server.Site):
    """A Site with StreamingRequest; `key_hasher` gives the convergent hasher for a size."""

    requestFactory = StreamingRequest
    protocol = http_channel

    body_rate: BodyRatePolicy = DEFAULT_BODY_RATE  # read by ShoalChannel; the node sets it from tahoe.cfg

    def __init__(self, resource: Any, key_hasher: KeyHasherFactory | None = None, **kw: Any) -> None:
        kw.setdefault("logFormatter", access_log.log_formatter)  # no cap in the log
        kw.setdefault("timeout", IDLE_TIMEOUT)
        super().__init__(resource, **kw)
        self.key_hasher = key_hasher
