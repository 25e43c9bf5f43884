"""Request bodies for the HTTP storage server, capped before they are stored.

twisted.web keeps a whole request body (in memory below 100 kB, else in a
temporary file) before the resource sees the request. This request class
asks, as soon as the headers are in, how many bytes the addressed endpoint
takes (``body_limit(method, path)``); a body that says or turns out to be
larger is not stored — its bytes are read and dropped, the request is marked
``body_too_large`` and the resource answers 413. Form bodies are never
parsed (twisted would parse urlencoded and multipart POSTs on the reactor).
"""

import io
from collections.abc import Callable
from typing import Any

from twisted.web import server

BodyLimit = Callable[[bytes, bytes], int]
DEFAULT_LIMIT = 8192


class _Discard(io.BytesIO):
    """Where a refused body goes: it stays empty."""

    def write(self, data: Any) -> int:
        return len(data)


class CappedRequest(server.Request):
    """A ``server.Request`` that stores at most its endpoint's body limit."""

    body_too_large = False

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(channel, *args, parsePOSTFormSubmission=False, **kwargs)
        except TypeError:  # twisted before 24.7 always parses form bodies; we refuse them in render
            super().__init__(channel, *args, **kwargs)
        self._limit = DEFAULT_LIMIT
        self._received = 0

    def _body_limit(self) -> int:
        site = getattr(self.channel, "site", None)
        limit: BodyLimit | None = getattr(site, "body_limit", None)
        method = getattr(self.channel, "_command", None)
        path = getattr(self.channel, "_path", None)
        if limit is None or not isinstance(method, bytes) or not isinstance(path, bytes):
            return DEFAULT_LIMIT
        return limit(method, path.split(b"?", 1)[0])

    def gotLength(self, length: int | None) -> None:
        self._limit = self._body_limit()
        if length is not None and length > self._limit:
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse()
            return
        super().handleContentChunk(data)

    def _refuse(self) -> None:
        self.body_too_large = True
        old = getattr(self, "content", None)
        if old is not None:
            old.close()
        self.content = _Discard()  # type: ignore[assignment]


class CappedSite(server.Site):
    """A Site whose requests are capped by ``body_limit(method, path)``."""

    requestFactory = CappedRequest

    def __init__(self, resource: Any, body_limit: BodyLimit, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.body_limit = body_limit
