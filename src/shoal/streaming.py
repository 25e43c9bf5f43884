"""Streaming a download to a Twisted consumer (a twisted.web request) with backpressure.

``ConsumerWriter`` registers itself as the consumer's streaming producer
(IPushProducer) and gives a downloader ``write(data)``: the bytes go to the
consumer at once, and while the consumer has asked us to pause (its transport
buffer is full: a slow client) the Deferred that ``write`` returns fires only
when it resumes, so the downloader fetches no further than a few segments
ahead of what the client has read. When the client goes away the consumer
calls ``stopProducing``: a write waiting on a pause fails at once, and every
later write, with ``ClientGoneError``.

The web API (shoal.web.files) and the blob service (shoal.apps.blobs) stream
through it; immutable download and mutable retrieve await what ``write`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from shoal.errors import CallerError


class ClientGoneError(CallerError, defer.CancelledError):
    """The client closed the connection before the download ended. It is a
    CancelledError too, so a handler that stops quietly on cancellation (the web
    API's) stops quietly here."""

    def __init__(self) -> None:
        super().__init__("the client went away during a download")


@implementer(IPushProducer)
class ConsumerWriter:
    """``write(data)`` to `consumer` that honours its pause/resume; use it as a
    context manager (registered as the consumer's producer inside the block).

    `written` counts the bytes written; `on_bytes(n)` is called after each write.
    """

    def __init__(self, consumer: Any, on_bytes: Callable[[int], None] | None = None) -> None:
        self.consumer = consumer
        self.written = 0
        self.stopped = False
        self._on_bytes = on_bytes
        self._paused: defer.Deferred[None] | None = None

    def __enter__(self) -> ConsumerWriter:
        self.consumer.registerProducer(self, True)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.stopped:  # after stopProducing the consumer has dropped us (a request: its channel)
            self.consumer.unregisterProducer()

    def write(self, data: bytes) -> defer.Deferred[None]:
        """Write now; the answer fires once the consumer wants more."""
        if self.stopped:
            raise ClientGoneError()
        self.consumer.write(data)
        self.written += len(data)
        if self._on_bytes is not None:
            self._on_bytes(len(data))
        if self._paused is not None:
            return self._paused
        return defer.succeed(None)

    # -- IPushProducer --

    def pauseProducing(self) -> None:
        if self._paused is None:
            self._paused = defer.Deferred()

    def resumeProducing(self) -> None:
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.callback(None)

    def stopProducing(self) -> None:
        self.stopped = True
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.errback(ClientGoneError())
            paused.addErrback(lambda _: None)  # no write was waiting on it: nothing to tell
