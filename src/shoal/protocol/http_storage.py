"""Tahoe-LAFS 1.20's HTTP storage protocol: endpoints, paths, authorization and secrets headers.

Facts from Tahoe 1.20's storage/http_server.py and http_common.py (the code
is the reference where docs/specifications/http-storage-node-protocol.rst
differs):

- every endpoint is under ``/storage/v1``; a storage index in a path is its
  26 lower-case base32 characters, a share number is decimal digits. A path
  that matches no endpoint (a storage index that is not canonical base32
  included) is 404; a known path with another method is 405;
- every request carries ``Authorization: Tahoe-LAFS <base64 swissnum>``
  (the swissnum of the storage FURL, which the NURL repeats); anything else
  is 401 (400 if the header is not even text);
- endpoints that need secrets get them in ``X-Tahoe-Authorization`` headers,
  one per secret, ``<kind> <base64 value>``; exactly the endpoint's kinds
  must be present. A missing, unknown, undecodable or empty secret, or a
  lease secret that is not 32 bytes, is 400;
- request bodies are CBOR (``Content-Type: application/cbor``, or none:
  415 otherwise); answers are CBOR when the client accepts it (406 otherwise);
  share data travels as ``application/octet-stream``.

shoal is stricter in two places a well-behaved client never meets: base64
must be canonical, and one secret kind sent twice is 400 (Tahoe keeps the
last); it is more lenient in one: ``Accept: */*`` accepts CBOR (Tahoe answers
406 unless CBOR is the first choice). A pure module: bytes in, values out.
"""

import base64
import binascii
import enum
import hmac
import re
from collections.abc import Iterable, Mapping

import attrs

from shoal.encoding import base32
from shoal.protocol.http_errors import (
    BAD_REQUEST,
    NOT_ALLOWED,
    NOT_FOUND,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    HttpRequestError,
)

API_PREFIX = "/storage/v1"
CBOR_MIME_TYPE = "application/cbor"
OCTET_STREAM = "application/octet-stream"

AUTHORIZATION = b"Authorization"
SECRETS_HEADER = b"X-Tahoe-Authorization"
CONTENT_TYPE = b"Content-Type"
ACCEPT = b"Accept"
RANGE = b"Range"
CONTENT_RANGE = b"Content-Range"
AUTH_SCHEME = b"Tahoe-LAFS"

STORAGE_INDEX_LENGTH = 16
MAX_SHARE_NUMBER = 255
LEASE_SECRET_LENGTH = 32
MAX_OPAQUE_SECRET_LENGTH = 1024  # upload secrets and write enablers (Tahoe sends 32 bytes)
MAX_SECRET_HEADERS = 8


class Secret(enum.Enum):
    """The kinds of secret a client sends in ``X-Tahoe-Authorization`` headers."""

    LEASE_RENEW = "lease-renew-secret"
    LEASE_CANCEL = "lease-cancel-secret"
    UPLOAD = "upload-secret"
    WRITE_ENABLER = "write-enabler"


_LEASE = frozenset({Secret.LEASE_RENEW, Secret.LEASE_CANCEL})
_NONE: frozenset[Secret] = frozenset()


class Endpoint(enum.Enum):
    """Every endpoint of the protocol: (method, secrets it needs, a name)."""

    VERSION = ("GET", _NONE, "version")
    IMMUTABLE_ALLOCATE = ("POST", _LEASE | {Secret.UPLOAD}, "immutable-allocate")
    IMMUTABLE_WRITE = ("PATCH", frozenset({Secret.UPLOAD}), "immutable-write")
    IMMUTABLE_ABORT = ("PUT", frozenset({Secret.UPLOAD}), "immutable-abort")
    IMMUTABLE_LIST = ("GET", _NONE, "immutable-list")
    IMMUTABLE_READ = ("GET", _NONE, "immutable-read")
    IMMUTABLE_CORRUPT = ("POST", _NONE, "immutable-corrupt")
    MUTABLE_READ_TEST_WRITE = ("POST", _LEASE | {Secret.WRITE_ENABLER}, "mutable-read-test-write")
    MUTABLE_LIST = ("GET", _NONE, "mutable-list")
    MUTABLE_READ = ("GET", _NONE, "mutable-read")
    MUTABLE_CORRUPT = ("POST", _NONE, "mutable-corrupt")
    LEASE = ("PUT", _LEASE, "lease")

    @property
    def method(self) -> str:
        return self.value[0]

    @property
    def secrets(self) -> frozenset[Secret]:
        return self.value[1]


@attrs.frozen
class Route:
    """A request's endpoint and the parameters its path carries."""

    endpoint: Endpoint
    storage_index: bytes | None = None
    share_number: int | None = None


_SI = r"(?P<si>[a-z2-7]{26})"
_SHNUM = r"(?P<shnum>[0-9]{1,10})"
# (path pattern, {method: endpoint}) in the order Tahoe's Klein app tries them
_PATHS: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = [
    (re.compile(r"/version"), {"GET": Endpoint.VERSION}),
    (re.compile(rf"/immutable/{_SI}"), {"POST": Endpoint.IMMUTABLE_ALLOCATE}),
    (re.compile(rf"/immutable/{_SI}/shares"), {"GET": Endpoint.IMMUTABLE_LIST}),
    (re.compile(rf"/immutable/{_SI}/{_SHNUM}"),
     {"PATCH": Endpoint.IMMUTABLE_WRITE, "GET": Endpoint.IMMUTABLE_READ}),
    (re.compile(rf"/immutable/{_SI}/{_SHNUM}/abort"), {"PUT": Endpoint.IMMUTABLE_ABORT}),
    (re.compile(rf"/immutable/{_SI}/{_SHNUM}/corrupt"), {"POST": Endpoint.IMMUTABLE_CORRUPT}),
    (re.compile(rf"/mutable/{_SI}/read-test-write"), {"POST": Endpoint.MUTABLE_READ_TEST_WRITE}),
    (re.compile(rf"/mutable/{_SI}/shares"), {"GET": Endpoint.MUTABLE_LIST}),
    (re.compile(rf"/mutable/{_SI}/{_SHNUM}"), {"GET": Endpoint.MUTABLE_READ}),
    (re.compile(rf"/mutable/{_SI}/{_SHNUM}/corrupt"), {"POST": Endpoint.MUTABLE_CORRUPT}),
    (re.compile(rf"/lease/{_SI}"), {"PUT": Endpoint.LEASE}),
]
MAX_PATH_LENGTH = 200


def route(method: bytes | str, path: bytes | str) -> Route:
    """The endpoint a request's method and path (without its query) name.

    HttpRequestError 404 when no endpoint has this path, 405 when one has it
    with another method. A storage index must be canonical base32 of 16 bytes;
    a share number above 255 names no share (404), as it does in Tahoe.
    """
    text_method = _ascii(method, "method")
    text_path = _ascii(path, "path")
    if len(text_path) > MAX_PATH_LENGTH or not text_path.startswith(API_PREFIX + "/"):
        raise HttpRequestError(NOT_FOUND, "no such endpoint")
    rest = text_path[len(API_PREFIX):]
    for pattern, methods in _PATHS:
        match = pattern.fullmatch(rest)
        if match is None:
            continue
        groups = match.groupdict()
        si = None
        if "si" in groups:
            if not base32.is_base32(groups["si"], STORAGE_INDEX_LENGTH):
                raise HttpRequestError(NOT_FOUND, "not a storage index")
            si = base32.a2b(groups["si"])
        shnum = None
        if "shnum" in groups:
            shnum = int(groups["shnum"])
            if shnum > MAX_SHARE_NUMBER:
                raise HttpRequestError(NOT_FOUND, f"no share number {shnum}")
        endpoint = methods.get(text_method)
        if endpoint is None:
            raise HttpRequestError(NOT_ALLOWED, f"{text_method} is not allowed here")
        return Route(endpoint, si, shnum)
    raise HttpRequestError(NOT_FOUND, "no such endpoint")


def _ascii(value: bytes | str, what: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise HttpRequestError(NOT_FOUND, f"{what} is not ASCII") from None


def path_for(endpoint: Endpoint, storage_index: bytes | None = None,
             share_number: int | None = None) -> str:
    """The path of ``endpoint`` for this storage index and share number (those it takes)."""
    si_text = ""
    if endpoint is not Endpoint.VERSION:
        if not isinstance(storage_index, bytes) or len(storage_index) != STORAGE_INDEX_LENGTH:
            raise ValueError(f"{endpoint.name} needs a {STORAGE_INDEX_LENGTH}-byte storage index")
        si_text = base32.b2a(storage_index)
    needs_share = endpoint in _WITH_SHARE
    if needs_share and (
        isinstance(share_number, bool) or not isinstance(share_number, int)
        or not 0 <= share_number <= MAX_SHARE_NUMBER
    ):
        raise ValueError(f"{endpoint.name} needs a share number in 0..{MAX_SHARE_NUMBER}")
    template = _TEMPLATES[endpoint]
    return API_PREFIX + template.format(si=si_text, shnum=share_number)


_TEMPLATES = {
    Endpoint.VERSION: "/version",
    Endpoint.IMMUTABLE_ALLOCATE: "/immutable/{si}",
    Endpoint.IMMUTABLE_LIST: "/immutable/{si}/shares",
    Endpoint.IMMUTABLE_WRITE: "/immutable/{si}/{shnum}",
    Endpoint.IMMUTABLE_READ: "/immutable/{si}/{shnum}",
    Endpoint.IMMUTABLE_ABORT: "/immutable/{si}/{shnum}/abort",
    Endpoint.IMMUTABLE_CORRUPT: "/immutable/{si}/{shnum}/corrupt",
    Endpoint.MUTABLE_READ_TEST_WRITE: "/mutable/{si}/read-test-write",
    Endpoint.MUTABLE_LIST: "/mutable/{si}/shares",
    Endpoint.MUTABLE_READ: "/mutable/{si}/{shnum}",
    Endpoint.MUTABLE_CORRUPT: "/mutable/{si}/{shnum}/corrupt",
    Endpoint.LEASE: "/lease/{si}",
}
_WITH_SHARE = frozenset(e for e, t in _TEMPLATES.items() if "{shnum}" in t)


# -- Authorization -------------------------------------------------------------


def authorization_header(swissnum: bytes) -> bytes:
    """The ``Authorization`` value for a storage service whose swissnum is ``swissnum``."""
    return AUTH_SCHEME + b" " + base64.b64encode(swissnum)


def check_authorization(values: Iterable[bytes] | None, swissnum: bytes) -> None:
    """Accept the request's first ``Authorization`` value only if it names ``swissnum``.

    401 otherwise (400 if it is not ASCII text), compared in constant time.
    """
    first = next(iter(values or ()), b"")
    try:
        first.decode("ascii")
    except UnicodeDecodeError:
        raise HttpRequestError(BAD_REQUEST, "Authorization header is not ASCII") from None
    if not hmac.compare_digest(first, authorization_header(swissnum)):
        raise HttpRequestError(UNAUTHORIZED, "wrong Authorization header")


# -- X-Tahoe-Authorization secrets --------------------------------------------


def secret_header(kind: Secret, value: bytes) -> bytes:
    """One ``X-Tahoe-Authorization`` value: ``<kind> <base64 value>``."""
    if not isinstance(value, bytes) or not value:
        raise ValueError(f"{kind.value} must be non-empty bytes")
    return kind.value.encode("ascii") + b" " + base64.b64encode(value)


def secret_headers(secrets: Mapping[Secret, bytes]) -> list[bytes]:
    """The ``X-Tahoe-Authorization`` values for these secrets, in the order Tahoe's client sends them."""
    return [secret_header(kind, secrets[kind]) for kind in Secret if kind in secrets]


_KINDS = {kind.value.encode("ascii"): kind for kind in Secret}


def parse_secrets(values: Iterable[bytes] | None, required: frozenset[Secret]) -> dict[Secret, bytes]:
    """The secrets in a request's ``X-Tahoe-Authorization`` values; exactly ``required`` must be there.

    HttpRequestError 400 for a missing, unknown, repeated, undecodable or empty
    secret, or a lease secret that is not 32 bytes. The message never holds a secret.
    """
    found: dict[Secret, bytes] = {}
    for count, raw in enumerate(values or ()):
        if count >= MAX_SECRET_HEADERS:
            raise HttpRequestError(BAD_REQUEST, "too many X-Tahoe-Authorization headers")
        kind_text, space, encoded = raw.strip().partition(b" ")
        kind = _KINDS.get(kind_text)
        if kind is None or not space:
            raise HttpRequestError(BAD_REQUEST, "X-Tahoe-Authorization header of unknown kind")
        if kind in found:
            raise HttpRequestError(BAD_REQUEST, f"{kind.value} sent twice")
        found[kind] = _decode_secret(kind, encoded.strip())
    if found.keys() != required:
        wanted = ", ".join(sorted(k.value for k in required)) or "none"
        got = ", ".join(sorted(k.value for k in found)) or "none"
        raise HttpRequestError(BAD_REQUEST, f"expected secrets: {wanted}; got: {got}")
    return found


def _decode_secret(kind: Secret, encoded: bytes) -> bytes:
    if len(encoded) > 4 * MAX_OPAQUE_SECRET_LENGTH // 3 + 4:
        raise HttpRequestError(BAD_REQUEST, f"{kind.value} is too long")
    try:
        value = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise HttpRequestError(BAD_REQUEST, f"{kind.value} is not base64") from None
    if not value:
        raise HttpRequestError(BAD_REQUEST, f"{kind.value} is empty")
    if kind in _LEASE and len(value) != LEASE_SECRET_LENGTH:
        raise HttpRequestError(
            BAD_REQUEST, f"{kind.value} must be {LEASE_SECRET_LENGTH} bytes, not {len(value)}"
        )
    return value


# -- content types ---------------------------------------------------------------


def _media_type(value: bytes) -> str:
    return value.split(b";", 1)[0].strip().decode("latin-1").lower()


def check_request_content_type(values: Iterable[bytes] | None) -> None:
    """A CBOR request body must say ``application/cbor`` or nothing (415 otherwise)."""
    first = next(iter(values or ()), None)
    if first is not None and _media_type(first) not in ("", CBOR_MIME_TYPE):
        raise HttpRequestError(UNSUPPORTED_MEDIA_TYPE, "request body must be application/cbor")


def accepts_cbor(values: Iterable[bytes] | None) -> bool:
    """Whether a request's ``Accept`` header allows a CBOR answer (no header: yes)."""
    first = next(iter(values or ()), None)
    if first is None:
        return True
    for item in first.split(b","):
        media, *params = item.split(b";")
        quality = 1.0
        for param in params:
            name, _, val = param.partition(b"=")
            if name.strip().lower() == b"q":
                try:
                    quality = float(val.strip())
                except ValueError:
                    quality = 0.0
        if quality > 0 and _media_type(media) in (CBOR_MIME_TYPE, "application/*", "*/*"):
            return True
    return False


def media_type(values: Iterable[bytes] | None) -> str | None:
    """The media type (lower case, no parameters) of a Content-Type header, or None."""
    first = next(iter(values or ()), None)
    return None if first is None else _media_type(first)
