"""The /stream/{user} body framing of Soledad's blob server (app-apis.md 1.2).

Download response: per blob, in request order, the size as 8 lower-case hex
digits, the 24-character base64url of its 16-byte tag, one space, then the
stored bytes. Upload request: one line holding a JSON list of [blob_id, size]
pairs, then the blobs' stored bytes concatenated in that order. Pure.
"""

import base64
import json
from collections.abc import Iterable, Iterator

from shoal.apps.blobmanager.errors import FramingError
from shoal.encoding import bounded_json

SIZE_DIGITS = 8
TAG_CHARS = 24
HEADER = SIZE_DIGITS + TAG_CHARS + 1


def encode_upload(blobs: Iterable[tuple[str, bytes]]) -> bytes:
    items = list(blobs)
    head = json.dumps([[blob_id, len(data)] for blob_id, data in items]).encode("utf-8")
    return head + b"\n" + b"".join(data for _, data in items)


def decode_upload(body: bytes) -> list[tuple[str, bytes]]:
    head, sep, rest = body.partition(b"\n")
    if not sep:
        raise FramingError("stream upload body has no header line")
    out, pos = [], 0
    for blob_id, size in bounded_json.loads(head):
        if pos + size > len(rest):
            raise FramingError(f"stream upload: blob {blob_id} wants {size} bytes, {len(rest) - pos} left")
        out.append((blob_id, rest[pos:pos + size]))
        pos += size
    if pos != len(rest):
        raise FramingError(f"stream upload: {len(rest) - pos} bytes after the last blob")
    return out


def encode_download(blobs: Iterable[bytes]) -> bytes:
    parts = []
    for data in blobs:
        tag = base64.urlsafe_b64encode(data[-16:].rjust(16, b"\0")).decode("ascii")
        parts.append(b"%08x%s " % (len(data), tag.encode("ascii")) + data)
    return b"".join(parts)


class DownloadParser:
    """Incremental parser of a stream download body: feed() chunks, get (size, tag, bytes)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> Iterator[tuple[str, bytes]]:
        """Yield (tag, stored bytes) for every blob completed by this chunk."""
        self._buf += chunk
        while len(self._buf) >= HEADER:
            head = bytes(self._buf[:HEADER])
            try:
                size = int(head[:SIZE_DIGITS].decode("ascii"), 16)
            except (UnicodeDecodeError, ValueError):
                raise FramingError(f"stream download: bad size field {head[:SIZE_DIGITS]!r}") from None
            if head[-1:] != b" ":
                raise FramingError(f"stream download: no space after tag in {head!r}")
            if len(self._buf) < HEADER + size:
                return
            tag = head[SIZE_DIGITS:SIZE_DIGITS + TAG_CHARS].decode("ascii", "replace")
            data = bytes(self._buf[HEADER:HEADER + size])
            del self._buf[:HEADER + size]
            yield tag, data

    def close(self) -> None:
        if self._buf:
            raise FramingError(f"stream download: {len(self._buf)} bytes of an unfinished blob at the end")


def decode_download(body: bytes) -> list[tuple[str, bytes]]:
    parser = DownloadParser()
    out = list(parser.feed(body))
    parser.close()
    return out
