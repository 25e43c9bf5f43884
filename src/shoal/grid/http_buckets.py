"""Immutable shares over HTTPS: Tahoe-LAFS 1.20's upload PATCHes and ranged reads as BucketWriter/BucketReader.

A writer's write is one PATCH with Content-Range; every answer says which
ranges the server still requires, and a later write sends only the span of
its bytes that is still required (nothing when none is): a client that
restarted and allocated the same share again (the same upload secret, see
shoal.crypto.hashes.http_upload_secret) does not send again what the server
kept of its partial share. The server answers 201 to
the write that completes the share, and the upload is then finished: close()
sends nothing (it waits for the writes still in flight and succeeds if the
server said complete), a later write or close is refused as over Foolscap,
and abort has nothing left to drop. A reader's read is one GET with a single
Range (206; 204 at or past the end of the share).
"""

from typing import Any

from twisted.internet import defer

from shoal.grid.http_requests import HttpRequests, check_offset, decoded
from shoal.grid.https_pool import Response
from shoal.grid.storage_client import Deadlines, ServerProtocolError, ServerRefused, check_bytes
from shoal.protocol import http_bodies as bodies
from shoal.protocol.http_errors import (
    CREATED,
    NO_CONTENT,
    NOT_ALLOWED,
    NOT_FOUND,
    OK,
    PARTIAL_CONTENT,
    UNAUTHORIZED,
    HttpProtocolError,
)
from shoal.protocol.http_ranges import (
    ByteRange,
    format_content_range,
    format_range,
    parse_content_range,
)
from shoal.protocol.http_storage import Endpoint, Secret, path_for

__all__ = ["HttpBucketReader", "HttpBucketWriter", "advise", "read_share"]


class HttpBucketWriter:
    """An allocated share: PATCHes; complete when the server answers 201."""

    def __init__(self, http: HttpRequests, deadlines: Deadlines, si: bytes, shnum: int, upload_secret: bytes) -> None:
        self._http = http
        self._deadlines = deadlines
        self._si = si
        self._shnum = shnum
        self._secrets = {Secret.UPLOAD: upload_secret}
        self._settling: list[defer.Deferred[None]] = []  # one per write in flight, fired when it ends
        self.complete = False
        self._ended: str | None = None  # "closed" or "aborted": the server forgets the upload
        # what the server's last answer said it still requires (None: not asked yet)
        self._required: tuple[ByteRange, ...] | None = None
        self.bytes_skipped = 0  # bytes not sent because the server had them already

    def _refuse_if_ended(self, method: str) -> None:
        if self._ended is not None:
            raise ServerRefused(self._http.name, method, f"the bucket is already {self._ended}")
        if self.complete and method == "write":  # the server finished the share with the last write
            raise ServerRefused(self._http.name, method, "the bucket is already closed (the share is complete)")

    def write(self, offset: int, data: bytes) -> "defer.Deferred[None]":
        try:
            self._refuse_if_ended("write")
            check_offset(offset)
        except (ServerRefused, ValueError):
            return defer.fail()
        if not data:  # HTTP cannot carry an empty range; there is nothing to write
            return defer.succeed(None)
        span = self._still_required(offset, offset + len(data))
        if span is None:  # a resumed share: the server holds these bytes already
            self.bytes_skipped += len(data)
            return defer.succeed(None)
        self.bytes_skipped += len(data) - span.length
        view = memoryview(data)[span.start - offset : span.end - offset]
        offset = span.start

        def done(resp: Response) -> None:
            self._http.expect(resp, "write", OK, CREATED)
            progress = decoded(bodies.decode_upload_progress, resp, self._http.name, "write")  # what is left
            self._required = progress.required
            if resp.status == CREATED:
                self.complete = True

        d = self._http.request(
            "write", self._deadlines.write, path_for(Endpoint.IMMUTABLE_WRITE, self._si, self._shnum),
            Endpoint.IMMUTABLE_WRITE, secrets=self._secrets, body=[view],
            headers=[(b"content-range", format_content_range(ByteRange(offset, offset + len(view))))],
        ).addCallback(done)
        settled: defer.Deferred[None] = defer.Deferred()
        self._settling.append(settled)

        def ended(result: Any) -> Any:
            self._settling.remove(settled)
            settled.callback(None)
            return result

        return d.addBoth(ended)

    def _still_required(self, start: int, end: int) -> ByteRange | None:
        """The part of [start, end) to send: from the first to the last byte the server still
        requires (all of it before the first answer), None when it requires none of it."""
        if self._required is None:
            return ByteRange(start, end)
        pieces = [(max(r.start, start), min(r.end, end)) for r in self._required if r.start < end and start < r.end]
        if not pieces:
            return None
        return ByteRange(min(a for a, _ in pieces), max(b for _, b in pieces))

    def close(self) -> "defer.Deferred[None]":
        """Nothing to send: the last write completed the share (or it is incomplete: refused)."""

        def check(_: Any) -> None:
            if not self.complete:
                raise ServerRefused(self._http.name, "close", "the server still wants data for this share")
            self._ended = "closed"

        try:
            self._refuse_if_ended("close")
        except ServerRefused:
            return defer.fail()
        return defer.gatherResults(list(self._settling)).addCallback(check)

    def abort(self) -> "defer.Deferred[None]":
        """Drop the partial share; after close or abort there is nothing to abort (as over Foolscap)."""
        if self._ended is not None or self.complete:
            return defer.succeed(None)
        self._ended = "aborted"

        def done(resp: Response) -> None:
            if resp.status in (UNAUTHORIZED, NOT_FOUND, NOT_ALLOWED):  # not (or no longer) ours: nothing to abort
                return
            self._http.expect(resp, "abort", OK)

        return self._http.request(
            "abort", self._deadlines.write, path_for(Endpoint.IMMUTABLE_ABORT, self._si, self._shnum),
            Endpoint.IMMUTABLE_ABORT, secrets=self._secrets,
        ).addCallback(done)


def read_share(http: HttpRequests, seconds: float, endpoint: Endpoint, si: bytes, shnum: int, offset: int, length: int,
          method: str) -> "defer.Deferred[bytes | None]":
    """One ranged GET of a share; None when the server has no such share (404)."""
    try:
        check_offset(offset)
        check_offset(length)
        path = path_for(endpoint, si, shnum)
    except ValueError:
        return defer.fail()
    if length == 0:
        return defer.succeed(b"")
    wanted = ByteRange(offset, offset + length)

    def done(resp: Response) -> bytes | None:
        if resp.status == NOT_FOUND:
            return None
        if resp.status == NO_CONTENT:  # at or past the end
            return b""
        http.expect(resp, method, PARTIAL_CONTENT)
        try:
            got = parse_content_range(resp.header(b"content-range")).range
        except HttpProtocolError as e:
            raise ServerProtocolError(http.name, method, f"answered a bad Content-Range: {e.message}") from None
        if got.start != offset or got.length != len(resp.body):
            raise ServerProtocolError(http.name, method, "answered a body that does not match the range asked")
        return check_bytes(resp.body, http.name, method, length)

    return http.request(
        method, seconds, path, endpoint, headers=[(b"range", format_range(wanted))], max_body=length,
    ).addCallback(done)


class HttpBucketReader:
    def __init__(self, http: HttpRequests, deadlines: Deadlines, si: bytes, shnum: int) -> None:
        self._http = http
        self._deadlines = deadlines
        self._si = si
        self._shnum = shnum

    def read(self, offset: int, length: int) -> "defer.Deferred[bytes]":
        def present(data: bytes | None) -> bytes:
            if data is None:
                raise ServerRefused(self._http.name, "read", "HTTP 404: the server no longer has this share")
            return data

        d = read_share(self._http, self._deadlines.read, Endpoint.IMMUTABLE_READ, self._si, self._shnum, offset, length,
                  "read")
        return d.addCallback(present)

    def advise_corrupt_share(self, reason: bytes) -> "defer.Deferred[None]":
        return advise(self._http, self._deadlines, Endpoint.IMMUTABLE_CORRUPT, self._si, self._shnum, reason)


def advise(http: HttpRequests, deadlines: Deadlines, endpoint: Endpoint, si: bytes, shnum: int, reason: bytes,
            ) -> "defer.Deferred[None]":
    def done(resp: Response) -> None:
        if resp.status != NOT_FOUND:  # an unknown share: nothing to say, as over Foolscap
            http.expect(resp, "advise_corrupt_share", OK)

    text = reason.decode("utf-8", "backslashreplace")[: bodies.MAX_REASON_SIZE // 4] or "corrupt"
    return http.request(
        "advise_corrupt_share", deadlines.advise, path_for(endpoint, si, shnum), endpoint,
        message=bodies.CorruptionAdvice(text).encode(),
    ).addCallback(done)
