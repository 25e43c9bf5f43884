"""HTTP/1.1 over TLS to one server whose certificate is pinned: blocking sockets, h11 framing.

Tahoe-LAFS 1.20's HTTP storage protocol runs over TLS without certificate
authorities: the client accepts whatever certificate the server shows (even
self-signed or expired) if the SHA-256 hash of its SubjectPublicKeyInfo
equals the hash in the server's NURL. This module connects with the
standard library's `ssl` (which releases the GIL while it encrypts), checks
that hash right after the handshake and before one byte of any request is
written (requests carry the swissnum), and frames requests and responses
with h11.

Everything here blocks: callers run it on I/O threads (shoal.grid.io_threads).
`ServerPool` keeps a few idle keep-alive connections to one server and is
safe to use from many threads at once. Request bodies are sent as the parts
given (memoryviews of large buffers are never joined or copied); response
bodies larger than the caller's cap are refused, and the connection dropped.
"""

import hmac
import select
import socket
import ssl
import threading
from collections.abc import Callable, Sequence

import attrs
import h11

from shoal.errors import Fault, ShoalError

__all__ = [
    "BadResponse",
    "CertificateMismatch",
    "ConnectFailed",
    "ConnectionDropped",
    "HttpsTransportError",
    "InFlight",
    "Request",
    "Response",
    "ResponseTooLarge",
    "ServerPool",
]

_RECV = 256 * 1024  # bytes asked of the socket per recv
_SMALL_BODY = 64 * 1024  # bodies up to this size go out in one write with the head
_DIRECT_BODY = 64 * 1024  # response bodies of at least this known length bypass h11's buffers
_RECV_DIRECT = 1024 * 1024
_IDEMPOTENT = frozenset({b"GET", b"PUT", b"PATCH", b"HEAD"})


class HttpsTransportError(ShoalError):
    """The exchange with a server failed below HTTP's own status codes (the server's side)."""

    fault = Fault.SERVER


class ConnectFailed(HttpsTransportError):
    """No TCP connection or no TLS session could be made."""


class CertificateMismatch(HttpsTransportError):
    """The server's certificate is not the one its NURL names: nothing was sent."""


class ConnectionDropped(HttpsTransportError):
    """The connection closed, reset or timed out during an exchange."""

    def __init__(self, message: str, *, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered  # some bytes of a response had arrived


class ResponseTooLarge(HttpsTransportError):
    """The response body is longer than the caller allows."""


class BadResponse(HttpsTransportError):
    """The response is not HTTP/1.1 that h11 accepts."""


@attrs.frozen
class Request:
    method: bytes
    target: bytes  # path and query, already percent-encoded
    headers: Sequence[tuple[bytes, bytes]] = ()
    body: Sequence[bytes | memoryview] = ()  # sent in order, never joined when large
    max_body: int = 1024 * 1024  # the longest response body accepted

    @property
    def body_length(self) -> int:
        return sum(len(p) for p in self.body)


@attrs.frozen
class Response:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # names lower-case, as received
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (name in lower case), or None."""
        for k, v in self.headers:
            if k == name:
                return v
        return None


class InFlight:
    """One caller's request: cancel() from any thread drops its connection, so the I/O thread stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: PinnedConnection | None = None
        self.cancelled = False

    def attach(self, conn: "PinnedConnection") -> None:
        with self._lock:
            self._conn = conn
            cancelled = self.cancelled
        if cancelled:
            conn.abort()

    def detach(self) -> None:
        with self._lock:
            self._conn = None

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            conn = self._conn
        if conn is not None:
            conn.abort()


def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # trust comes from the pinned SPKI hash, not from a CA
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


_CONTEXT = _client_context()


class PinnedConnection:
    """One TLS connection to a server whose SPKI hash must match; one exchange at a time."""

    def __init__(
        self, host: str, port: int, expected_spki: bytes, spki_hash: Callable[[bytes], bytes], timeout: float
    ) -> None:
        self.host = host
        self.port = port
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ConnectFailed(f"cannot connect to {host}:{port}: {e.strerror or e}") from None
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock = _CONTEXT.wrap_socket(raw, server_hostname=None)
        except (OSError, ssl.SSLError) as e:
            raw.close()
            raise ConnectFailed(f"TLS handshake with {host}:{port} failed: {e}") from None
        der = sock.getpeercert(binary_form=True)
        if der is None or not hmac.compare_digest(spki_hash(der), expected_spki):
            sock.close()
            raise CertificateMismatch(
                f"the certificate of {host}:{port} does not match the server's NURL"
            )
        self._sock = sock
        self._h11 = h11.Connection(our_role=h11.CLIENT)
        self.closed = False

    def abort(self) -> None:
        """Shut the socket down now (from any thread): a blocked exchange fails at once."""
        self.closed = True
        try:
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.closed = True
        self._sock.close()

    def looks_alive(self) -> bool:
        """An idle connection has nothing to read; if it has, the server closed it (or misbehaves)."""
        if self.closed:
            return False
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable and self._sock.pending() == 0

    def exchange(self, req: Request) -> Response:
        """Send req, read its response; the connection is left ready for the next one, or closed."""
        conn = self._h11
        answered = False
        eof = False
        try:
            headers = [(b"host", f"{self.host}:{self.port}".encode("ascii")), *req.headers]
            if req.body or req.method in (b"POST", b"PUT", b"PATCH"):
                headers.append((b"content-length", str(req.body_length).encode("ascii")))
            head = conn.send(h11.Request(method=req.method, target=req.target, headers=headers))
            assert head is not None
            if req.body_length <= _SMALL_BODY:
                self._sock.sendall(b"".join([head, *req.body]))
                for part in req.body:
                    conn.send(h11.Data(data=part))  # type: ignore[arg-type]  # h11 takes any buffer
            else:
                self._sock.sendall(head)
                for part in req.body:
                    # h11 takes any buffer; passthrough hands it back as it is, never copied
                    for chunk in conn.send_with_data_passthrough(h11.Data(data=part)) or ():  # type: ignore[arg-type]
                        self._sock.sendall(chunk)
            conn.send(h11.EndOfMessage())
            status = 0
            got: list[tuple[bytes, bytes]] = []
            parts: list[bytes] = []
            total = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = self._sock.recv(_RECV)
                    answered = answered or bool(data)
                    eof = not data
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    got = [(bytes(k), bytes(v)) for k, v in event.headers]
                    length = next((v for k, v in got if k == b"content-length"), None)
                    if length is not None and int(length) > req.max_body:
                        raise ResponseTooLarge(
                            f"{self.host}:{self.port} answered {int(length)} bytes; at most {req.max_body} accepted"
                        )
                    if length is not None and int(length) >= _DIRECT_BODY and req.method != b"HEAD":
                        keep = event.http_version == b"1.1" and not any(
                            k == b"connection" and b"close" in v.lower() for k, v in got
                        )
                        body = self._read_body(int(length), keep)
                        answered = True
                        return Response(status, tuple(got), body)
                elif isinstance(event, h11.Data):
                    total += len(event.data)
                    if total > req.max_body:
                        raise ResponseTooLarge(
                            f"{self.host}:{self.port} answered more than the {req.max_body} bytes accepted"
                        )
                    parts.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionDropped(f"{self.host}:{self.port} closed the connection", answered=answered)
                # InformationalResponse (1xx): keep reading
        except HttpsTransportError:
            self.close()
            raise
        except h11.RemoteProtocolError as e:
            self.close()
            if eof:
                raise ConnectionDropped(f"{self.host}:{self.port} closed the connection", answered=answered) from None
            raise BadResponse(f"{self.host}:{self.port} answered malformed HTTP: {e}") from None
        except (OSError, ssl.SSLError, ValueError) as e:
            self.close()
            reason = "timed out" if isinstance(e, TimeoutError) else f"{e.__class__.__name__}: {e}"
            raise ConnectionDropped(f"connection to {self.host}:{self.port} lost: {reason}", answered=answered) from None
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self.close()
        return Response(status, tuple(got), b"".join(parts))

    def _read_body(self, length: int, keep: bool) -> bytes:
        """A large body of known length, read from the socket into one buffer (h11 would copy it
        several times). The connection starts a fresh h11 state for the next exchange."""
        buffered, _ = self._h11.trailing_data
        if len(buffered) > length:  # bytes beyond the body: we never pipeline, so the server misbehaves
            raise BadResponse(f"{self.host}:{self.port} sent more than its Content-Length")
        body = bytearray(length)
        body[: len(buffered)] = buffered
        view = memoryview(body)
        pos = len(buffered)
        while pos < length:
            got = self._sock.recv_into(view[pos:], min(length - pos, _RECV_DIRECT))
            if not got:
                raise ConnectionDropped(f"{self.host}:{self.port} closed the connection mid-body", answered=True)
            pos += got
        view.release()
        if keep:
            self._h11 = h11.Connection(our_role=h11.CLIENT)
        else:
            self.close()
        return bytes(body)


class ServerPool:
    """Keep-alive TLS connections to one server (thread-safe); at most `max_idle` kept idle."""

    def __init__(
        self,
        host: str,
        port: int,
        expected_spki: bytes,
        spki_hash: Callable[[bytes], bytes],
        *,
        timeout: float = 120.0,
        max_idle: int = 4,
    ) -> None:
        self.host = host
        self.port = port
        self._expected = expected_spki
        self._spki_hash = spki_hash
        self._timeout = timeout
        self._max_idle = max_idle
        self._idle: list[PinnedConnection] = []
        self._lock = threading.Lock()
        self.connections_made = 0  # for tests and status
        self.requests_sent = 0

    def _new(self) -> PinnedConnection:
        conn = PinnedConnection(self.host, self.port, self._expected, self._spki_hash, self._timeout)
        with self._lock:
            self.connections_made += 1
        return conn

    def _checkout(self) -> tuple[PinnedConnection, bool]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._new(), False
            if conn.looks_alive():
                return conn, True
            conn.close()

    def _checkin(self, conn: PinnedConnection) -> None:
        if conn.closed:
            return
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def request(self, req: Request, flight: InFlight | None = None) -> Response:
        """One exchange (blocking). A request that idempotent methods may repeat is sent again
        once on a fresh connection if a kept-alive one turns out dead before answering."""
        flight = flight or InFlight()
        for attempt in (0, 1):
            if flight.cancelled:
                raise ConnectionDropped("cancelled", answered=False)
            conn, reused = self._checkout()
            with self._lock:
                self.requests_sent += 1
            flight.attach(conn)
            try:
                resp = conn.exchange(req)
            except ConnectionDropped as e:
                if attempt == 0 and reused and not e.answered and not flight.cancelled and req.method in _IDEMPOTENT:
                    continue
                raise
            finally:
                flight.detach()
            self._checkin(conn)
            return resp
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the idle connections (those in use close when their exchange ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
