"""Share data through the HTTP adapter: range reads streamed out, upload chunks stored.

Reads (Tahoe-LAFS 1.20's read_range): without a ``Range`` header the whole
share (200); with one, 206 and ``Content-Range: bytes a-b/*`` cut at the end
of the share, or 204 when nothing of it is left. The data goes out in
256 KiB pieces through a push producer, so a slow reader pauses the reads
(nothing piles up in memory) and a fast one still lets the reactor run
every 4 MiB. A share that changes length under a streamed read cuts the
connection (the status is already sent).

Upload chunks: the body went straight into the share as it arrived
(shoal.storage.http_sinks); once it is all in, its range is counted as
written and the share is closed (fsync, rename) in a thread, under the
server lock, once nothing is missing.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.web import server

from shoal.protocol import http_storage as hs
from shoal.protocol.http_errors import (
    NO_CONTENT,
    OK,
    PARTIAL_CONTENT,
)
from shoal.protocol.http_ranges import ByteRange, format_content_range, parse_range
from shoal.storage.buckets import ShareStream
from shoal.storage.errors import ShareNotFoundError
from shoal.streaming import ClientGoneError, ConsumerWriter

READ_CHUNK = 256 * 1024  # bytes per share read while streaming an answer
CHUNKS_PER_TURN = 16  # a streaming read gives the reactor a turn after this many chunks


def answer_range(request: server.Request, length: int) -> ByteRange | None:
    """Set the status and headers of a read of a ``length``-byte share; the bytes to send.

    None with status 204 when the range asked for is past the end; None with
    200 for a whole empty share. 416 (HttpRequestError) for a Range shoal
    cannot serve.
    """
    wanted = parse_range(request.getHeader(hs.RANGE))
    request.setHeader(b"Content-Type", hs.OCTET_STREAM.encode("ascii"))
    if wanted is None:
        request.setResponseCode(OK)
        span = ByteRange(0, length) if length else None
    else:
        span = wanted.clipped(length)
        if span is None:
            request.setResponseCode(NO_CONTENT)
            return None
        request.setResponseCode(PARTIAL_CONTENT)
        request.setHeader(hs.CONTENT_RANGE, format_content_range(span))
    request.setHeader(b"Content-Length", b"%d" % (span.length if span else 0))
    return span


async def stream_share(request: server.Request, read: Callable[[int, int], bytes], span: ByteRange | None,
                       next_turn: Callable[[], Awaitable[None]]) -> None:
    """Send ``span`` of the share ``read(offset, length)`` reads, then finish the request."""
    if span is not None:
        out = ConsumerWriter(request)
        request.registerProducer(out, True)
        try:
            await _pour(request, read, span, out, next_turn)
        except ClientGoneError:
            return
        finally:
            if not request._disconnected:
                request.unregisterProducer()
    if not request.finished and not request._disconnected:
        request.finish()


async def _pour(request: server.Request, read: Callable[[int, int], bytes], span: ByteRange,
                out: ConsumerWriter, next_turn: Callable[[], Awaitable[None]]) -> None:
    at, chunks = span.start, 0
    while at < span.end:
        if request._disconnected:
            return
        data = read(at, min(READ_CHUNK, span.end - at))
        if not data or len(data) > span.end - at:
            raise ShareNotFoundError(f"share changed during a read at offset {at}")
        await out.write(data)  # waits while the reader is slow
        at += len(data)
        chunks += 1
        if chunks % CHUNKS_PER_TURN == 0:
            await next_turn()


def finish_chunk(lock: Any, stream: ShareStream) -> list[tuple[int, int]]:
    """Count a fully arrived upload chunk as written and close the share once nothing is
    missing; the ranges still missing (runs in a thread)."""
    writer = stream.writer
    with lock:  # two chunks finishing at once: one closes the share, both answer 201
        stream.commit()
        remaining = writer.remaining()
        if not remaining and not writer.closed:
            writer.close()
        return remaining
