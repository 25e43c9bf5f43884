"""Requests to one HTTPS storage server, and what their failures mean (Tahoe-LAFS 1.20's HTTP storage protocol).

`HttpRequests` sends one request of shoal.protocol.http_storage's endpoints
on a server's pool (shoal.grid.https_pool) through its lane of I/O threads
(shoal.grid.io_threads), with the swissnum and any secrets in their headers
and a deadline, and answers on the reactor. Failures become the ServerError
family here and nowhere else: an unexpected status keeps the server's own
first line (ServerFull for 507 or a body saying the server is full); no
connection, a dropped one or a certificate that is not the NURL's is
ServerUnreachable (and the connection is told); an answer the protocol
modules refuse, or one over its size cap, is ServerProtocolError.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

from shoal.grid.https_pool import (
    BadResponse,
    CertificateMismatch,
    HttpsTransportError,
    Request,
    Response,
    ResponseTooLarge,
    ServerPool,
)
from shoal.grid.io_threads import Lane
from shoal.grid.storage_client import (
    ServerError,
    ServerFull,
    ServerProtocolError,
    ServerRefused,
    ServerUnreachable,
    first_line,
    with_deadline,
)
from shoal.protocol import http_bodies as bodies
from shoal.protocol.http_errors import INSUFFICIENT_STORAGE, HttpProtocolError
from shoal.protocol.http_storage import (
    CBOR_MIME_TYPE,
    LEASE_SECRET_LENGTH,
    Endpoint,
    Secret,
    authorization_header,
    media_type,
    secret_headers,
)

__all__ = ["HttpRequests", "decoded", "translate_status", "translate_transport"]

T = TypeVar("T")

CBOR = CBOR_MIME_TYPE.encode("ascii")
MAX_CBOR_ANSWER = bodies.MAX_READ_TEST_WRITE_RESPONSE  # the largest CBOR answer any call takes
MAX_ERROR_TEXT = 10_000  # Tahoe's client reads at most this much of an error's body
_FULL_WORDS = ("no space", "no room", "is full", "insufficient storage")


# -- errors ---------------------------------------------------------------------------


def translate_status(resp: Response, server: str, method: str) -> ServerError:
    """An unexpected HTTP status as a ServerError, keeping the server's text."""
    text = first_line(resp.body[:MAX_ERROR_TEXT].decode("utf-8", "replace"))
    reason = f"HTTP {resp.status}" + (f": {text}" if text else "")
    lowered = text.lower()
    # shoal's server answers 507 for a read-only server too; that one is a refusal, not a lack of room
    if "read-only" not in lowered and (resp.status == INSUFFICIENT_STORAGE or any(w in lowered for w in _FULL_WORDS)):
        return ServerFull(server, method, reason)
    return ServerRefused(server, method, reason)


def translate_transport(failure: Failure, server: str, method: str) -> Failure:
    """A transport failure as a ServerError (ServerErrors and CancelledError pass)."""
    value = failure.value
    if isinstance(value, ServerError | defer.CancelledError):
        return failure
    if isinstance(value, ResponseTooLarge | BadResponse):
        raise ServerProtocolError(server, method, str(value))
    if isinstance(value, CertificateMismatch):
        raise ServerUnreachable(server, method, "the server's TLS certificate does not match its NURL")
    if isinstance(value, HttpsTransportError):
        raise ServerUnreachable(server, method, str(value))
    raise ServerUnreachable(server, method, first_line(f"{type(value).__name__}: {value}"))


def decoded(decode: Callable[[bytes], T], resp: Response, server: str, method: str) -> T:
    """A CBOR answer decoded and checked by shoal.protocol.http_bodies; ServerProtocolError if it is not one."""
    if media_type([resp.header(b"content-type") or b""]) != CBOR_MIME_TYPE:
        raise ServerProtocolError(server, method, "answered without a CBOR body")
    try:
        return decode(resp.body)
    except HttpProtocolError as e:
        raise ServerProtocolError(server, method, e.message) from None


def check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) != LEASE_SECRET_LENGTH:
        raise ValueError(f"secrets are {LEASE_SECRET_LENGTH} bytes")


def check_offset(offset: int) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset {offset!r:.20} is not a count of bytes")


class HttpRequests:
    """Requests to one server: headers, deadlines, failures translated."""

    def __init__(
        self, pool: ServerPool, lane: Lane, swissnum: bytes, name: str, clock: Any,
        on_unreachable: Callable[[], None],
    ) -> None:
        self.pool = pool
        self.lane = lane
        self.name = name
        self.clock = clock
        self._auth = authorization_header(swissnum)
        self._on_unreachable = on_unreachable

    def request(
        self,
        method: str,
        seconds: float,
        path: str,
        endpoint: Endpoint,
        *,
        secrets: Mapping[Secret, bytes] | None = None,
        message: bytes | None = None,
        body: Sequence[bytes | memoryview] = (),
        headers: Sequence[tuple[bytes, bytes]] = (),
        max_body: int = MAX_CBOR_ANSWER,
    ) -> "defer.Deferred[Response]":
        """`method` names the StorageClient call (for messages); message is an encoded CBOR body."""
        all_headers = [(b"authorization", self._auth), (b"accept", CBOR), *headers]
        all_headers += [(b"x-tahoe-authorization", value) for value in secret_headers(secrets or {})]
        if message is not None:
            body = [message]
            all_headers.append((b"content-type", CBOR))
        req = Request(endpoint.method.encode("ascii"), path.encode("ascii"), all_headers, body,
                      max(max_body, MAX_ERROR_TEXT))
        d = self.lane.run(lambda flight: self.pool.request(req, flight))
        d.addErrback(self._failed, method)
        return with_deadline(d, seconds, self.clock, self.name, method)

    def _failed(self, failure: Failure, method: str) -> Failure:
        try:
            return translate_transport(failure, self.name, method)
        except ServerUnreachable:
            self._on_unreachable()
            raise

    def expect(self, resp: Response, method: str, *statuses: int) -> Response:
        if resp.status not in statuses:
            raise translate_status(resp, self.name, method)
        return resp
