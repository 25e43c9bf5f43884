"""The status codes of Tahoe-LAFS 1.20's HTTP storage protocol, and the errors that carry them.

A server answers a malformed or refused request with a status and a short
text body; Tahoe 1.20's http_server.py chooses these (where its prose
specification and its code disagree, the code wins):

    400  malformed secrets, a body that fails its CDDL schema, a bad
         Authorization header encoding
    401  wrong swissnum, wrong upload secret, wrong write enabler
    404  no such endpoint (or a storage index that is not base32), no such
         share or upload, a lease on a storage index holding nothing
    405  a known path with another method; abort of a finished share
    406  the client does not accept CBOR
    409  an immutable write that disagrees with bytes already written
    413  a request body larger than the endpoint takes
    415  a request body that is not application/cbor
    416  a Range or Content-Range header shoal cannot serve

shoal adds 507 (no space, or a read-only server refusing a write) where
Tahoe would fail with 500.

``HttpRequestError`` is the client's mistake as a server sees it (it carries
the status to answer); ``HttpResponseError`` is a server answer a client
cannot use (the server's fault).
"""

from http import HTTPStatus

from shoal.errors import CallerError, Fault, ShoalError

OK = HTTPStatus.OK.value
CREATED = HTTPStatus.CREATED.value
NO_CONTENT = HTTPStatus.NO_CONTENT.value
PARTIAL_CONTENT = HTTPStatus.PARTIAL_CONTENT.value
BAD_REQUEST = HTTPStatus.BAD_REQUEST.value
UNAUTHORIZED = HTTPStatus.UNAUTHORIZED.value
NOT_FOUND = HTTPStatus.NOT_FOUND.value
NOT_ALLOWED = HTTPStatus.METHOD_NOT_ALLOWED.value
NOT_ACCEPTABLE = HTTPStatus.NOT_ACCEPTABLE.value
CONFLICT = HTTPStatus.CONFLICT.value
TOO_LARGE = HTTPStatus.REQUEST_ENTITY_TOO_LARGE.value
UNSUPPORTED_MEDIA_TYPE = HTTPStatus.UNSUPPORTED_MEDIA_TYPE.value
RANGE_NOT_SATISFIABLE = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE.value
INTERNAL_SERVER_ERROR = HTTPStatus.INTERNAL_SERVER_ERROR.value
INSUFFICIENT_STORAGE = HTTPStatus.INSUFFICIENT_STORAGE.value

# error texts sent to (or kept from) the other side are cut to this many characters
MAX_ERROR_TEXT = 300


def shorten(text: str) -> str:
    """``text`` cut to MAX_ERROR_TEXT characters (pycddl's messages run to kilobytes)."""
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


class HttpProtocolError(ShoalError):
    """A request or answer that breaks the HTTP storage protocol; ``status`` is what a server answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(shorten(message))
        self.status = status
        self.message = shorten(message)


class HttpRequestError(HttpProtocolError, CallerError):
    """The client sent something the protocol does not allow (a server answers ``status``)."""


class HttpResponseError(HttpProtocolError):
    """A server's answer that does not follow the protocol (its body, headers or status)."""

    fault = Fault.SERVER
