"""What every web resource shares: errors as Tahoe-LAFS 1.20's status codes and
text (one line or paragraph, never a traceback), running async handlers, and
the argument parsers of webapi.rst (booleans, format=, replace=, offset=).

The status follows from the error's type alone (shoal.errors: its `fault` and
the semantic bases), never from class names or message text:

caller's fault  400; NotFoundError 404 (a missing child: Tahoe's "No such
                child"), ConflictError 409 (an existing child: Tahoe's text),
                NotWritableError 403, TooLargeError 413, UnsupportedError 501
                (the one 5xx a caller gets: this node does not do that),
                ContradictoryCapError 410 (Tahoe's answer to a CHK cap with
                a wrong size: its download fails)
grid's fault    503; UnrecoverableError 410 (NotEnoughSharesError with Tahoe's
                text, others with Tahoe's UnrecoverableFileError text, a
                corrupt directory with its own), GridFullError 507
a server's      502 (one storage server failed and nothing routed around it)
a bug           500, logged; the text names the class only
anything else   500, logged; the same text (internals never leak)

A failure found while walking a path (a missing child, a file in the way, an
empty path segment: Tahoe 1.20's getChild, web/common.py exception_to_child)
is a WalkError, answered as Tahoe answers it whatever the client accepts:
twisted's ErrorPage HTML (title "CODE - Error", <h1>Error</h1>, <p>text</p>;
text/html), its text HTML-escaped (Tahoe's is not; the same bytes for any text
without &, < or >). A failure while rendering goes out as one line of
text/plain, or, to a browser (Accept names text/html), as the templated HTML
error page.
"""

import base64
import binascii
import html
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from twisted.internet import defer
from twisted.python import log
from twisted.web import http
from twisted.web.server import NOT_DONE_YET, Request

from shoal import cpu
from shoal.caps import BadCapError
from shoal.crypto import rsa
from shoal.dirnode.errors import CorruptDirectoryError, ExistingChildError, NoSuchChildError
from shoal.errors import (
    CallerError,
    ConflictError,
    ContradictoryCapError,
    Fault,
    GridFullError,
    NotEnoughSharesError,
    NotFoundError,
    NotWritableError,
    PreconditionFailedError,
    ShoalError,
    TooLargeError,
    UnrecoverableError,
    UnsupportedError,
)
from shoal.web.templating import render

NOT_IMPLEMENTED = http.NOT_IMPLEMENTED
INSUFFICIENT_STORAGE = 507


class WebError(CallerError):
    """The request is at fault: `code` (a 4xx) and one-line `text`."""

    def __init__(self, text: str, code: int = http.BAD_REQUEST) -> None:
        if not 400 <= code < 500:
            raise ValueError(f"a WebError is the caller's fault: a 4xx status, not {code}")
        super().__init__(text)
        self.text = text
        self.code = code


class NotAvailable(UnsupportedError):
    """The request asks for something this node does not offer (501): not
    configured here (no directories, no mutable files), or not implemented."""


class FileService(Protocol):
    """What the node offers the web layer for immutable files."""

    async def upload(self, source: Any, size: int, key: bytes | None = None) -> Any: ...

    async def download(
        self, cap: Any, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None
    ) -> Any: ...


_FULL_MESSAGE = "\n\nThe full error message is:\n"
_NOT_ENOUGH_SHARES = (
    "NotEnoughSharesError: This indicates that some servers were unavailable, or that "
    "shares have been lost to server departure, hard drive failure, or disk corruption. "
    "You should perform a filecheck on this object to learn more." + _FULL_MESSAGE
)
_CORRUPT_DIRECTORY = (
    "CorruptDirectoryError: the directory's contents on the grid could not be decoded. You "
    "should perform a filecheck on this object to learn more." + _FULL_MESSAGE
)
_UNRECOVERABLE = (
    "UnrecoverableFileError: the directory (or mutable file) could not be retrieved, because "
    "there were insufficient good shares. This might indicate that no servers were connected, "
    "insufficient servers were connected, the URI was corrupt, or that shares have been lost "
    "due to server departure, hard drive failure, or disk corruption. You should perform a "
    "filecheck on this object to learn more."
)
_EXISTING_CHILD = "There was already a child by that name, and you asked me to not replace it."


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _caller(exc: ShoalError) -> tuple[str, int]:
    if isinstance(exc, WebError):
        return exc.text, exc.code
    if isinstance(exc, BadCapError):
        return f"Invalid capability: {exc}", http.BAD_REQUEST
    if isinstance(exc, NoSuchChildError):
        return f"No such child: {exc.name}", http.NOT_FOUND
    if isinstance(exc, NotFoundError):
        return _one_line(exc), http.NOT_FOUND
    if isinstance(exc, ExistingChildError):
        return _EXISTING_CHILD, http.CONFLICT
    if isinstance(exc, PreconditionFailedError):
        return _one_line(exc), http.PRECONDITION_FAILED
    if isinstance(exc, ConflictError):
        return _one_line(exc), http.CONFLICT
    if isinstance(exc, NotWritableError):
        return _one_line(exc), http.FORBIDDEN
    if isinstance(exc, TooLargeError):
        return _one_line(exc), http.REQUEST_ENTITY_TOO_LARGE
    if isinstance(exc, NotAvailable):
        return str(exc), http.NOT_IMPLEMENTED
    if isinstance(exc, UnsupportedError):
        return _one_line(exc), http.NOT_IMPLEMENTED
    if isinstance(exc, ContradictoryCapError):
        return _one_line(exc), http.GONE
    return _one_line(exc), http.BAD_REQUEST


def _grid(exc: ShoalError) -> tuple[str, int]:
    if isinstance(exc, NotEnoughSharesError):
        return _NOT_ENOUGH_SHARES + str(exc), http.GONE
    if isinstance(exc, CorruptDirectoryError):
        return _CORRUPT_DIRECTORY + str(exc), http.GONE
    if isinstance(exc, UnrecoverableError):
        return _UNRECOVERABLE, http.GONE
    if isinstance(exc, GridFullError):
        return _one_line(exc), INSUFFICIENT_STORAGE
    return _one_line(exc), http.SERVICE_UNAVAILABLE


def _internal(exc: BaseException) -> tuple[str, int]:
    return f"Internal error ({type(exc).__name__}); see the node's log", http.INTERNAL_SERVER_ERROR


def humanize(exc: BaseException) -> tuple[str, int]:
    """(text, HTTP status) for an exception, from its type: see the module docstring."""
    if not isinstance(exc, ShoalError):
        return _internal(exc)
    if exc.fault is Fault.CALLER:
        return _caller(exc)
    if exc.fault is Fault.GRID:
        return _grid(exc)
    if exc.fault is Fault.SERVER:
        return _one_line(exc), http.BAD_GATEWAY
    return _internal(exc)


def is_bug(exc: BaseException) -> bool:
    """Whether an error is shoal's own (logged with its traceback): not a
    ShoalError at all, or one whose fault is BUG."""
    return not isinstance(exc, ShoalError) or exc.fault is Fault.BUG


# twisted.web.resource.ErrorPage's page, as Tahoe 1.20 answers a failure in getChild
_ERROR_PAGE = """
<html>
  <head><title>%(code)s - %(brief)s</title></head>
  <body>
    <h1>%(brief)s</h1>
    <p>%(detail)s</p>
  </body>
</html>
"""


class WalkError(Exception):
    """A failure found while walking a path: `error` answered as Tahoe's ErrorPage
    (brief "Error", its humanized text the detail), or, made with page(), a page
    with its own brief and detail (Tahoe's "Files have no children named ...")."""

    def __init__(self, error: BaseException, brief: str = "Error", detail: str | None = None,
                 code: int | None = None) -> None:
        super().__init__(type(error).__name__)
        self.error = error
        self.brief = brief
        self.detail = detail
        self.code = code

    @classmethod
    def page(cls, code: int, brief: str, detail: str = "no details") -> "WalkError":
        return cls(WebError(brief, code), brief, detail, code)

    def answer(self) -> tuple[int, bytes]:
        text, code = humanize(self.error)
        if self.code is not None:
            code = self.code
        detail = text if self.detail is None else self.detail
        return code, error_page(code, self.brief, detail)


def error_page(code: int, brief: str, detail: str) -> bytes:
    """twisted's ErrorPage body (Tahoe's answer to a failure while walking a path)."""
    return (_ERROR_PAGE % {"code": code, "brief": html.escape(brief, quote=False),
                           "detail": html.escape(detail, quote=False)}).encode("utf-8")


def error_answer(request: Request, exc: BaseException) -> tuple[int, bytes]:
    """(status, body) of the answer to `exc`, its content type set; a bug is logged."""
    inner = exc.error if isinstance(exc, WalkError) else exc
    if is_bug(inner):
        log.err(inner, "web request failed")
    if isinstance(exc, WalkError):
        code, body = exc.answer()
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return code, body
    text, code = humanize(exc)
    return code, error_body(request, text, code)


def wants_html(request: Request) -> bool:
    """Whether the client is a browser: its Accept header names text/html (curl, the
    CLIs and scripts send */* or nothing, and get the error as one line of text)."""
    accept = request.getHeader(b"accept") or b""
    return b"text/html" in accept.lower()


def error_body(request: Request, text: str, code: int) -> bytes:
    """The body of an error answer, its content type set: an HTML page for a browser,
    else the text and a newline as text/plain."""
    if wants_html(request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        reason = http.RESPONSES.get(code, b"Error").decode("ascii", "replace")
        return render("error.html", title=f"{code} - {reason}", code=code, reason=reason,
                      text=text).encode("utf-8")
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return (text + "\n").encode("utf-8")


def send_error(request: Request, exc: BaseException) -> None:
    """Answer with the error's status and text (or cut a response already started)."""
    if request.startedWriting:
        inner = exc.error if isinstance(exc, WalkError) else exc
        if is_bug(inner):
            log.err(inner, "web request failed")
        request.loseConnection()  # too late for a status: cut the response short
        return
    request.responseHeaders.removeHeader(b"content-disposition")
    request.responseHeaders.removeHeader(b"content-range")
    code, body = error_answer(request, exc)
    request.setResponseCode(code)
    request.setHeader(b"content-length", b"%d" % len(body))
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


fail = send_error


Body = bytes | str | None


def run_async(request: Request, handler: Callable[[], Awaitable[Body]]) -> Any:
    """Render with an async handler; the bytes or text it returns (if any) are the
    whole response body (text as text/plain UTF-8 unless a type is set)."""
    finished: list[bool] = []
    request.notifyFinish().addBoth(lambda _: finished.append(True))

    async def go() -> None:
        try:
            body = await handler()
        except defer.CancelledError:
            return
        except Exception as e:
            if not finished:
                send_error(request, e)
            return
        if finished:
            return
        if isinstance(body, str):
            body = body.encode("utf-8")
            if not request.responseHeaders.hasHeader(b"content-type"):
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        if body is not None and request.method != b"HEAD":
            if not request.startedWriting:
                request.setHeader(b"content-length", b"%d" % len(body))
            request.write(body)
        request.finish()

    defer.ensureDeferred(go())
    return NOT_DONE_YET


def render_sync(request: Request, handler: Callable[[], Body]) -> bytes:
    """Render with a synchronous handler, errors answered as Tahoe's."""
    try:
        body = handler()
    except Exception as e:
        code, body = error_answer(request, e)
        request.setResponseCode(code)
        return body
    if isinstance(body, str):
        if not request.responseHeaders.hasHeader(b"content-type"):
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return body.encode("utf-8")
    return body or b""


def arg(request: Request, name: str, default: str | None = None) -> str | None:
    """The first value of query (or form) argument `name` as text, or `default`."""
    values = (request.args or {}).get(name.encode("ascii"))
    if not values:
        return default
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise WebError(f"query argument {name} is not UTF-8") from None


def t_arg(request: Request, default: str = "") -> str:
    return (arg(request, "t") or default).strip()


def boolean(value: str, name: str = "boolean") -> bool:
    """Tahoe's boolean_of_arg: true/t/1/on and false/f/0/off, case-insensitive."""
    v = value.lower()
    if v in ("true", "t", "1", "on"):
        return True
    if v in ("false", "f", "0", "off"):
        return False
    raise WebError(f"invalid {name} argument: {value!r}")


def bool_arg(request: Request, name: str, default: bool = False) -> bool:
    value = arg(request, name)
    return default if value is None else boolean(value, name + "=")


def replace_arg(request: Request) -> bool | Literal["only-files"]:
    """replace=true|false|only-files (default true)."""
    value = arg(request, "replace", "true") or "true"
    if value.lower() == "only-files":
        return "only-files"
    try:
        return boolean(value)
    except WebError:
        raise WebError(f"invalid replace= argument: {value!r}") from None


def offset_arg(request: Request) -> int | None:
    value = arg(request, "offset")
    if value is None:
        return None
    try:
        offset = int(value)
    except ValueError:
        raise WebError(f"invalid offset= argument: {value!r}") from None
    return offset


def format_arg(request: Request, default: str | None = "CHK") -> str | None:
    """format=CHK|SDMF|MDMF (any case); mutable=true means SDMF when format= is absent."""
    value = arg(request, "format")
    if not value:
        return "SDMF" if bool_arg(request, "mutable") else default
    fmt = value.upper()
    if fmt not in ("CHK", "SDMF", "MDMF"):
        raise WebError(f"Unknown format: {value}, I know CHK, SDMF, MDMF")
    return fmt


MAX_PRIVATE_KEY_ARG = 4096  # urlsafe base64 of a 2048-bit PKCS#8 DER key is ~1,620 characters


async def private_key_arg(request: Request) -> rsa.PrivateKey | None:
    """``private-key=``: the RSA signing key a new mutable file or directory is to use
    (Tahoe 1.20 web/common.py get_keypair: urlsafe base64 of the PKCS#8 DER, a 2048-bit
    key); None when absent. A bad one is 400, and no error text repeats it."""
    value = arg(request, "private-key")
    if value is None:
        return None
    if len(value) > MAX_PRIVATE_KEY_ARG:
        raise WebError(f"private-key= is too long (at most {MAX_PRIVATE_KEY_ARG} characters)")
    try:
        der = base64.urlsafe_b64decode(value.strip().encode("ascii"))
    except (ValueError, binascii.Error):
        raise WebError("private-key= is not urlsafe base64") from None
    try:
        return await cpu.run(rsa.private_key_from_der, der)
    except rsa.BadKeyError as e:
        text = str(e).split(":")[0]  # the reason, never the key
        raise WebError(f"private-key= is not a 2048-bit RSA private key in PKCS#8 DER ({text})") from None


def cap_answer(request: Request, cap: str) -> str:
    """A cap as the whole answer, typed text/html as Tahoe 1.20 types it (twisted.web's
    default: PUT /uri, PUT and POST /uri?t=mkdir... answer it so)."""
    request.setHeader(b"content-type", b"text/html")
    return cap


def text_plain(request: Request, text: str) -> bytes:
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return text.encode("utf-8")
