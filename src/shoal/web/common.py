"""What every web resource shares: errors as Tahoe's status codes and text, one
line, never a traceback; running async handlers; the file service facade."""

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from twisted.internet import defer
from twisted.python import log
from twisted.web import http
from twisted.web.server import NOT_DONE_YET, Request

from shoal.caps import BadCapError
from shoal.errors import ShoalError


class WebError(ShoalError):
    def __init__(self, text: str, code: int = http.BAD_REQUEST) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class FileService(Protocol):
    """What the node offers the web layer for immutable files."""

    async def upload(self, source: Any, size: int) -> Any: ...

    async def download(
        self, cap: Any, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None
    ) -> Any: ...


def humanize(exc: BaseException) -> tuple[str, int]:
    """(text, HTTP status) for an exception, following Tahoe 1.20's choices."""
    name = type(exc).__name__
    if isinstance(exc, WebError):
        return exc.text, exc.code
    if isinstance(exc, BadCapError):
        return f"Invalid capability: {exc}", http.BAD_REQUEST
    if name == "NotEnoughSharesError":
        return (
            "NotEnoughSharesError: This indicates that some servers were unavailable, or that "
            "shares have been lost to server departure, hard drive failure, or disk corruption. "
            f"You should perform a filecheck on this object to learn more.\n\nThe full error message is:\n{exc}",
            http.GONE,
        )
    if name == "NoSpaceError":
        return f"{name}: {exc}", 507
    if isinstance(exc, ShoalError):
        return f"{name}: {exc}", http.INTERNAL_SERVER_ERROR
    return f"Internal error ({name}); see the node's log", http.INTERNAL_SERVER_ERROR


def fail(request: Request, exc: BaseException) -> None:
    text, code = humanize(exc)
    if not isinstance(exc, ShoalError):
        log.err(exc, "web request failed")
    if request.startedWriting:
        request.loseConnection()  # too late for a status: cut the response short
        return
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    body = (text + "\n").encode("utf-8")
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()


def run_async(request: Request, handler: Callable[[], Awaitable[bytes | None]]) -> Any:
    """Render with an async handler; its bytes (if any) are the whole response body."""
    finished = []
    request.notifyFinish().addBoth(lambda _: finished.append(True))

    async def go() -> None:
        try:
            body = await handler()
        except Exception as e:
            if not finished:
                fail(request, e)
            return
        if finished:
            return
        if body is not None:
            request.write(body)
        request.finish()

    defer.ensureDeferred(go())
    return NOT_DONE_YET


def arg(request: Request, name: str, default: str | None = None) -> str | None:
    values = (request.args or {}).get(name.encode("ascii"))
    if not values:
        return default
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise WebError(f"query argument {name} is not UTF-8") from None
