"""Request bodies for the HTTP storage server, capped before they are stored.

twisted.web keeps a whole request body (in memory below 100 kB, else in a
temporary file) before the resource sees the request. This request class
asks, as soon as the headers are in, how many bytes the addressed endpoint
takes (``body_limit(method, path)``); a body that says or turns out to be
larger is not stored — its bytes are read and dropped, the request is marked
``body_too_large`` and the resource answers 413. Form bodies are never
parsed (twisted would parse urlencoded and multipart POSTs on the reactor).

An endpoint whose body goes straight into a share (an immutable upload
chunk) is asked for a sink instead (``open_sink(request, length)`` on the
site, shoal.storage.http_sinks): each piece of the body goes to the sink
as it arrives and nothing is stored here. A refusal the endpoint can make
from the headers alone is kept as ``sink_refusal`` and answered once the
body has been read and dropped.
"""

import io
from collections.abc import Callable
from typing import Any

from twisted.web import http, server

from shoal.protocol.body_rate import BodyRatePolicy
from shoal.streaming import BodyRateChannel

BodyLimit = Callable[[bytes, bytes], int]
SinkOpener = Callable[["CappedRequest", int | None], Any]
DEFAULT_LIMIT = 8192


class _Discard(io.BytesIO):
    """Where a refused body goes: it stays empty."""

    def write(self, data: Any) -> int:
        return len(data)


class CappedRequest(server.Request):
    """A ``server.Request`` that stores at most its endpoint's body limit."""

    body_too_large = False
    sink: Any = None  # an UploadSink taking the body, if the endpoint streams it
    sink_refusal: Exception | None = None  # why the endpoint refused the body from its headers
    body_complete = False

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(channel, *args, parsePOSTFormSubmission=False, **kwargs)
        except TypeError:  # twisted before 24.7 always parses form bodies; we refuse them in render
            super().__init__(channel, *args, **kwargs)
        self._limit = DEFAULT_LIMIT
        self._received = 0

    def pending_target(self) -> tuple[bytes, bytes] | None:
        """The method and path (no query) of a request whose body is still arriving."""
        method = getattr(self.channel, "_command", None)
        path = getattr(self.channel, "_path", None)
        if not isinstance(method, bytes) or not isinstance(path, bytes):
            return None
        return method, path.split(b"?", 1)[0]

    def _body_limit(self) -> int:
        site = getattr(self.channel, "site", None)
        limit: BodyLimit | None = getattr(site, "body_limit", None)
        target = self.pending_target()
        if limit is None or target is None:
            return DEFAULT_LIMIT
        return limit(*target)

    def gotLength(self, length: int | None) -> None:
        self._limit = self._body_limit()
        if length is not None and length > self._limit:
            self._refuse()
            return
        opener: SinkOpener | None = getattr(getattr(self.channel, "site", None), "open_sink", None)
        if opener is not None:
            self.sink = opener(self, length)
            if self.sink is not None or self.sink_refusal is not None:
                self.content = _Discard()  # type: ignore[assignment]
                return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large or self.sink_refusal is not None:
            return
        if self.sink is not None:
            self.sink.write(data)
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self.body_complete = True  # from here the handler owns the sink: it commits or drops it
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:
        if self.sink is not None and not self.body_complete:
            closed: Callable[[Any], None] | None = getattr(getattr(self.channel, "site", None), "sink_closed", None)
            self.sink.abandon()
            if closed is not None:
                closed(self.sink)
        super().connectionLost(reason)

    def _refuse(self) -> None:
        self.body_too_large = True
        old = getattr(self, "content", None)
        if old is not None:
            old.close()
        self.content = _Discard()  # type: ignore[assignment]


class StorageChannel(BodyRateChannel):
    """The storage port's HTTP channel: each request body must keep the Site's ``body_rate``
    (shoal.streaming.BodyRateChannel); a window in which an upload chunk's sink held the
    connection paused (an overlapping chunk waiting its turn) is excused."""

    def body_paused(self) -> bool:
        request = self.requests[-1] if self.requests else None
        sink = getattr(request, "sink", None)
        return bool(sink is not None and sink.held)


def storage_channel(factory: Any = None) -> Any:
    """Site.protocol: Twisted's HTTP/1.1-or-2 wrapper around a StorageChannel."""
    return http._GenericHTTPChannelProtocol(StorageChannel())


class CappedSite(server.Site):
    """A Site whose requests are capped by ``body_limit(method, path)``, and whose request bodies
    must keep ``body_rate`` (the node sets it from [storage]min_body_rate and body_rate_window)."""

    requestFactory = CappedRequest
    protocol = storage_channel
    body_rate: BodyRatePolicy = BodyRatePolicy()

    def __init__(self, resource: Any, body_limit: BodyLimit, *, open_sink: SinkOpener | None = None,
                 sink_closed: Callable[[Any], None] | None = None, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.body_limit = body_limit
        self.open_sink = open_sink
        self.sink_closed = sink_closed
