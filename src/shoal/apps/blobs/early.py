"""The blob port answers before reading a body it would refuse.

twisted.web reads a whole request body (spooling big ones to disk) before any
resource renders, so a 401 for a 125 MB unauthenticated upload came after
the 125 MB. ``GuardedRequest`` decides as soon as the headers are in
(``gotLength``, which the channel calls before the first body byte): a
request under ``/blobs/`` or ``/stream/`` without a valid token for the user
in its URL is answered 401 (unless its body is under ``READ_ANYWAY``: then
the resource answers 401 as before, keeping the connection), and a body longer than its route takes is
answered 413, both with ``Connection: close`` and without reading the body.
A body without a length (chunked) is counted as it arrives and cut off at
the same limit.

Limits: a blob upload (``PUT /blobs/...``, ``POST /stream/...?direction=upload``)
takes at most the service's quota (a larger body could never be stored);
any other body (flags, a download list) at most ``MAX_SMALL_BODY``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from twisted.web import http, server

from shoal.apps.blobs.auth import TokenFile
from shoal.apps.blobs.errors import Unauthorized

IDLE_TIMEOUT = 60  # seconds without a byte between requests (the node's channel adds header and stall timeouts)

MAX_SMALL_BODY = 1024 * 1024  # a flags list or a /stream download's id list
READ_ANYWAY = 64 * 1024  # an unauthenticated body this small is read and answered as usual
_GUARDED = (b"blobs", b"stream")


class _Discard:
    """Where the body of a refused request goes (nowhere)."""

    def write(self, data: bytes) -> None:
        pass

    def seek(self, *args: Any) -> int:
        return 0

    def read(self, *args: Any) -> bytes:
        return b""

    def close(self) -> None:
        pass


def body_limit(method: bytes, path: bytes, quota: int) -> int:
    """The most bytes a request's body may hold on this route."""
    parts = urlsplit(path)
    first = parts.path.lstrip(b"/").split(b"/", 1)[0]
    if (method == b"PUT" and first == b"blobs") or (
            method == b"POST" and first == b"stream" and b"direction=upload" in parts.query):
        return quota
    return MAX_SMALL_BODY


def url_user(path: bytes) -> str | None:
    """The user a guarded URL names (``/blobs/{user}/...``, ``/stream/{user}``); None if unguarded."""
    segments = urlsplit(path).path.lstrip(b"/").split(b"/")
    if segments[0] not in _GUARDED:
        return None
    return segments[1].decode("utf-8", "replace") if len(segments) > 1 else ""


class GuardedRequest(server.Request):
    """A Request that refuses, from its headers alone, what the blob port would refuse."""

    _refused = False
    _received = 0
    _limit: int | None = None

    def gotLength(self, length: int | None) -> None:
        site: Any = getattr(self.channel, "site", None)
        method, path = getattr(self.channel, "_command", None), getattr(self.channel, "_path", None)
        if site is None or method is None or path is None:  # not HTTP/1.x: the resource checks later
            super().gotLength(length)
            return
        user = url_user(path)
        if user is not None:
            header = self.requestHeaders.getRawHeaders(b"authorization", [None])[0]
            try:
                site.tokens.authenticate(header.decode("latin-1") if header else None, user)
            except Unauthorized as e:
                if length is not None and length <= READ_ANYWAY:
                    # cheap to read: the resource answers 401 on a connection that stays
                    # usable (closing with unread bytes would reset it under the answer)
                    super().gotLength(length)
                    return
                self._refuse(http.UNAUTHORIZED, str(e), {b"www-authenticate": b'Token realm="shoal blobs"'})
                return
        self._limit = body_limit(method, path, site.max_upload)
        if length is not None and length > self._limit:
            self._refuse(http.REQUEST_ENTITY_TOO_LARGE, f"a body of {length} bytes; this request takes at most "
                         f"{self._limit}")
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._limit is not None and self._received > self._limit:
            self._refuse(http.REQUEST_ENTITY_TOO_LARGE, f"a body of more than {self._limit} bytes")
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse(self, code: int, message: str, headers: dict[bytes, bytes] | None = None) -> None:
        self._refused = True
        self.content = _Discard()  # type: ignore[assignment]
        body = message.encode("utf-8") + b"\n"
        lines = [b"HTTP/1.1 %d %s" % (code, http.RESPONSES.get(code, b"Error")),
                 b"Content-Type: text/plain; charset=utf-8", b"Content-Length: %d" % len(body),
                 b"Connection: close"]
        lines += [name + b": " + value for name, value in (headers or {}).items()]
        transport: Any = self.channel.transport
        transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.channel.loseConnection()


class BlobSite(server.Site):
    """The blob port's Site: GuardedRequests, the tokens they check, the upload limit."""

    requestFactory = GuardedRequest

    def __init__(self, resource: Any, tokens: TokenFile, max_upload: int, **kw: Any) -> None:
        kw.setdefault("timeout", IDLE_TIMEOUT)
        super().__init__(resource, **kw)
        self.tokens = tokens
        self.max_upload = max_upload
