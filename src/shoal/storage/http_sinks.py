"""Upload chunks (PATCH bodies) streamed straight into their share, as they arrive.

Once a PATCH's headers are in, the adapter checks everything it can
without the body (authorization, secrets, Content-Range against the
allocated size: 416, a Content-Length that is not the range's length:
400) and opens an ``UploadSink`` on the share's ``ShareStream``. Each
piece of the body twisted.web receives is then checked and written into
the incoming share file on the reactor thread (a piece is at most 256 KiB
into the page cache), with no temporary file between. The range counts
as written only when the whole body arrived: a connection that drops
half way abandons the sink and the range stays missing, so the client
can send it again. A body longer than its range stops being written at
the range's end and is answered 400.

Two chunks of one share whose ranges overlap are taken one at a time, as
Tahoe-LAFS 1.20 (which stores each body whole before writing it) takes
them: a later sink is held — its connection paused, the little already
received kept in memory — until the earlier one is committed or dropped,
then it is checked against what the earlier one wrote (a repeat of the
same bytes is fine, different bytes are 409, as in Tahoe).
"""

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from shoal.protocol.http_errors import BAD_REQUEST, HttpRequestError
from shoal.storage.buckets import ShareStream
from shoal.storage.errors import StorageError


class UploadSink:
    """One PATCH body on its way into a share."""

    def __init__(self, stream: ShareStream, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self.stream = stream
        self.received = 0
        self.error: Exception | None = None
        self.ended = False
        self._pause = pause
        self._resume = resume
        self._held: list[bytes] | None = None
        self._waiting: list[defer.Deferred[None]] = []

    @property
    def key(self) -> tuple[bytes, int]:
        return (self.stream.writer.storage_index, self.stream.writer.shnum)

    @property
    def length(self) -> int:
        return self.stream.end - self.stream.start

    @property
    def held(self) -> bool:
        return self._held is not None

    def overlaps(self, other: "UploadSink") -> bool:
        return self.stream.start < other.stream.end and other.stream.start < self.stream.end

    def write(self, data: bytes) -> None:
        """A piece of the body, in order."""
        if self.error is not None or self.ended:
            return
        if self.received + len(data) > self.length:
            self._failed(HttpRequestError(BAD_REQUEST, f"upload body is longer than its Content-Range of "
                                                       f"{self.length} bytes"))
            return
        self.received += len(data)
        if self._held is not None:
            self._held.append(data)
            return
        self._store(data)

    def _store(self, data: bytes) -> None:
        try:
            self.stream.write(data)
        except StorageError as error:
            self._failed(error)

    def _failed(self, error: Exception) -> None:
        self.error = error
        self.stream.abandon()

    def hold(self) -> None:
        """Keep what arrives in memory and pause the connection until ``release``."""
        if self._held is None:
            self._held = []
            self._pause()

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        for data in held:
            if self.error is None:
                self._store(data)
        if not self.ended:
            self._resume()
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def ready(self) -> "defer.Deferred[None]":
        """Fires once this sink is not held (at once if it is not)."""
        if self._held is None:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d

    def abandon(self) -> None:
        """The body will not be completed (its connection dropped): the range stays missing."""
        self.ended = True
        self.stream.abandon()


class InFlightSinks:
    """The sinks open on each share, in arrival order; an overlapping later one waits its turn."""

    def __init__(self) -> None:
        self._open: dict[tuple[bytes, int], list[UploadSink]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._open.values())

    def add(self, sink: UploadSink) -> None:
        earlier = self._open.setdefault(sink.key, [])
        if any(sink.overlaps(other) for other in earlier):
            sink.hold()
        earlier.append(sink)

    def ended(self, sink: UploadSink) -> None:
        """``sink`` is committed or dropped: release the sinks it held back (and no others)."""
        sinks = self._open.get(sink.key)
        if sinks is None or sink not in sinks:
            return
        sinks.remove(sink)
        if not sinks:
            del self._open[sink.key]
            return
        for i, other in enumerate(sinks):
            if other.held and not any(other.overlaps(before) for before in sinks[:i]):
                other.release()


def transport_pauser(request: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    """pause and resume for the connection ``request`` arrives on."""
    def pause() -> None:
        transport = getattr(request.channel, "transport", None)
        if transport is not None:
            transport.pauseProducing()

    def resume() -> None:
        transport = getattr(request.channel, "transport", None)
        if transport is not None:
            transport.resumeProducing()

    return pause, resume
