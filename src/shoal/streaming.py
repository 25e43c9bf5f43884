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

import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.python import log
from twisted.web import http
from zope.interface import implementer

from shoal.errors import CallerError
from shoal.protocol.body_rate import BodyRateMeter, BodyRatePolicy


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


class BodyRateChannel(http.HTTPChannel):
    """An HTTPChannel that holds every request body to its Site's ``body_rate``
    (shoal.protocol.body_rate: so many bytes a second in every window, from the
    end of the headers; the first window is the grace period), or closes the
    connection. A window in which the server itself paused the sender
    (``body_paused``, answered by subclasses: a spool or a share sink
    applying back-pressure) is excused. The web and blob ports
    (shoal.web.spool) and the storage HTTPS port (shoal.storage.http_request)
    use it."""

    _rate_timer: Any = None
    _rate_meter: BodyRateMeter | None = None
    default_body_rate: BodyRatePolicy | None = None  # for a Site that sets no body_rate (None: no check)

    def allHeadersReceived(self) -> None:
        policy = getattr(getattr(self, "site", None), "body_rate", self.default_body_rate)
        if isinstance(policy, BodyRatePolicy) and policy.enabled:
            self._rate_meter = BodyRateMeter(policy, self._rate_now())
            self._rate_timer = self.callLater(policy.check_every, self._check_rate)
        super().allHeadersReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if self._rate_meter is not None:
            self._rate_meter.received(len(data))
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        self._stop_rate()
        super().allContentReceived()

    def connectionLost(self, reason: Any = None) -> None:
        self._stop_rate()
        super().connectionLost(reason)

    def body_paused(self) -> bool:
        """Whether this server has paused the body's sender right now (its own back-pressure)."""
        return False

    def body_too_slow(self, why: str) -> None:
        """Close the connection of a body that kept below the rate."""
        transport: Any = self.transport
        if transport is not None:
            log.msg(f"http: closing the connection from {getattr(transport.getPeer(), 'host', '?')}: {why}")
            transport.abortConnection()

    def _rate_now(self) -> float:
        clock = getattr(self.callLater, "__self__", None)
        return clock.seconds() if clock is not None and hasattr(clock, "seconds") else time.monotonic()

    def _check_rate(self) -> None:
        meter = self._rate_meter
        self._rate_timer = None
        if meter is None:
            return
        if self.body_paused():
            meter.excuse(self._rate_now())  # our own back-pressure, not the client's slowness
        elif (why := meter.check(self._rate_now())) is not None:
            self._stop_rate()
            self.body_too_slow(why)
            return
        self._rate_timer = self.callLater(meter.policy.check_every, self._check_rate)

    def _stop_rate(self) -> None:
        self._rate_meter = None
        timer, self._rate_timer = self._rate_timer, None
        if timer is not None and timer.active():
            timer.cancel()
