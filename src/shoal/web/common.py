"""What every web resource shares: errors as Tahoe-LAFS 1.20's status codes and
text (one line or paragraph, never a traceback), running async handlers, and
the argument parsers of webapi.rst (booleans, format=, replace=, offset=).

Error mapping (Tahoe's `humanize_exception`, plus what shoal adds):
400 malformed cap, argument or path; 403 a write through a read-only cap;
404 no such child / unknown handle; 409 existing child with replace=false,
or an uncoordinated write; 410 not enough shares (the text says what was
found) or a directory whose contents do not decode; 413 body too large;
501 an operation shoal does not implement; 503 too few storage servers
connected for the upload; 507 the servers lack space. Only a bug in shoal
answers 500 ("Internal error", details in the node's log).
"""

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from twisted.internet import defer
from twisted.python import log
from twisted.web import http
from twisted.web.server import NOT_DONE_YET, Request

from shoal.caps import BadCapError
from shoal.errors import ShoalError

NOT_IMPLEMENTED = http.NOT_IMPLEMENTED
INSUFFICIENT_STORAGE = 507


class WebError(ShoalError):
    """The request is at fault (or asks for something unsupported): `code` and one-line `text`."""

    def __init__(self, text: str, code: int = http.BAD_REQUEST) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class FileService(Protocol):
    """What the node offers the web layer for immutable files."""

    async def upload(self, source: Any, size: int, key: bytes | None = None) -> Any: ...

    async def download(
        self, cap: Any, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None
    ) -> Any: ...


_GONE_TEXT = {
    "NotEnoughSharesError": (
        "NotEnoughSharesError: This indicates that some servers were unavailable, or that "
        "shares have been lost to server departure, hard drive failure, or disk corruption. "
        "You should perform a filecheck on this object to learn more.\n\nThe full error message is:\n"
    ),
    "NoSharesError": (
        "NoSharesError: no shares could be found. Zero shares usually indicates a corrupt URI, "
        "or that no servers were connected, but it might also indicate severe corruption. You "
        "should perform a filecheck on this object to learn more.\n\nThe full error message is:\n"
    ),
    "CorruptDirectoryError": (
        "CorruptDirectoryError: the directory's contents on the grid could not be decoded. You "
        "should perform a filecheck on this object to learn more.\n\nThe full error message is:\n"
    ),
    "UnrecoverableFileError": (
        "UnrecoverableFileError: the directory (or mutable file) could not be retrieved, because "
        "there were insufficient good shares. You should perform a filecheck on this object to "
        "learn more.\n\nThe full error message is:\n"
    ),
}

# error class name -> HTTP status, for errors of layers web cannot import by name
# (mutable, dirnode) or that several layers define
_BY_NAME = {
    "NoSuchChildError": http.NOT_FOUND,
    "ExistingChildError": http.CONFLICT,
    "UncoordinatedWriteError": http.CONFLICT,
    "ReadOnlyError": http.FORBIDDEN,
    "ReadOnlyDirectoryError": http.FORBIDDEN,
    "NotWriteableError": http.FORBIDDEN,
    "NotDirectoryError": http.BAD_REQUEST,
    "MustBeImmutableError": http.BAD_REQUEST,
    "MustBeReadonlyError": http.BAD_REQUEST,
    "EmptyPathnameComponentError": http.BAD_REQUEST,
    "ChildCapError": http.BAD_REQUEST,  # and its kin: a cap that may not be linked there
    "ChildNameError": http.BAD_REQUEST,
    "BadMetadataError": http.BAD_REQUEST,
    "CheckerError": http.BAD_REQUEST,  # an object that cannot be checked
    "NotEnoughServersError": http.SERVICE_UNAVAILABLE,
    "ParameterError": http.BAD_REQUEST,
    "SourceError": http.BAD_REQUEST,
    "NoSpaceError": INSUFFICIENT_STORAGE,
    "FileTooLargeError": http.REQUEST_ENTITY_TOO_LARGE,
    "NoServersError": http.SERVICE_UNAVAILABLE,
    "UploadUnhappinessError": http.SERVICE_UNAVAILABLE,  # 507 when servers said they are full
}


def _class_names(exc: BaseException) -> list[str]:
    return [c.__name__ for c in type(exc).__mro__]


def humanize(exc: BaseException) -> tuple[str, int]:
    """(text, HTTP status) for an exception, following Tahoe 1.20's choices."""
    if isinstance(exc, WebError):
        return exc.text, exc.code
    if isinstance(exc, BadCapError):
        return f"Invalid capability: {exc}", http.BAD_REQUEST
    names = _class_names(exc)
    for name in names:
        if name in _GONE_TEXT:
            return _GONE_TEXT[name] + str(exc), http.GONE
    if "NoSuchChildError" in names:
        return f"No such child: {exc.args[0] if exc.args else exc}", http.NOT_FOUND
    if "ExistingChildError" in names:
        return "There was already a child by that name, and you asked me to not replace it.", http.CONFLICT
    if "UploadUnhappinessError" in names and "full:" in str(exc):
        return f"{type(exc).__name__}: {exc}", INSUFFICIENT_STORAGE
    for name in names:
        if name in _BY_NAME:
            return f"{type(exc).__name__}: {exc}", _BY_NAME[name]
    if isinstance(exc, ShoalError):
        return f"{type(exc).__name__}: {exc}", http.INTERNAL_SERVER_ERROR
    return f"Internal error ({type(exc).__name__}); see the node's log", http.INTERNAL_SERVER_ERROR


def send_error(request: Request, exc: BaseException) -> None:
    """Answer with the error's status and text (or cut a response already started)."""
    text, code = humanize(exc)
    if code >= 500 and code not in (http.GONE, INSUFFICIENT_STORAGE, http.SERVICE_UNAVAILABLE):
        log.err(exc, "web request failed")
    if request.startedWriting:
        request.loseConnection()  # too late for a status: cut the response short
        return
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.responseHeaders.removeHeader(b"content-disposition")
    request.responseHeaders.removeHeader(b"content-range")
    body = (text + "\n").encode("utf-8")
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
        text, code = humanize(e)
        if code == http.INTERNAL_SERVER_ERROR:
            log.err(e, "web request failed")
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return (text + "\n").encode("utf-8")
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


def replace_arg(request: Request) -> bool | str:
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


def text_plain(request: Request, text: str) -> bytes:
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return text.encode("utf-8")
