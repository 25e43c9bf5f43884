"""The body framing of ``POST /stream/{user}`` (Soledad's ``_streaming_resource.py``
and its client's stream code). Pure: bytes in, values or bytes out.

Download (``?direction=download``): the request body is a JSON list of blob
ids; the response is, per id in the order asked, the size as 8 lower-case
hex digits, the 24-character Tag, one space, then the blob's bytes.

Upload (``?direction=upload``): the request body's first line is a JSON list
of ``[blob_id, size]`` pairs; after its newline come the blobs' bytes,
concatenated in the same order, nothing else.
"""

import json
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import attrs

from shoal.apps.blobs.errors import BadRequest, InvalidRequest
from shoal.apps.blobs.rules import TAG_CHARS, check_name
from shoal.encoding import bounded_json

SIZE_DIGITS = 8
MAX_FRAMED_SIZE = 16**SIZE_DIGITS - 1
HEADER_BYTES = SIZE_DIGITS + TAG_CHARS + 1


def frame_header(size: int, tag: str) -> bytes:
    """What precedes a blob's bytes in a download stream."""
    if not 0 <= size <= MAX_FRAMED_SIZE:
        raise BadRequest(f"a {size}-byte blob cannot be framed in /stream (8 hex digits of size)")
    if len(tag) != TAG_CHARS:
        raise ValueError(f"a Tag is {TAG_CHARS} characters, not {len(tag)}")
    return b"%08x%s " % (size, tag.encode("ascii"))


def _json(body: bytes, what: str) -> object:
    try:
        return bounded_json.loads(body)
    except bounded_json.BadJSONError:
        raise InvalidRequest(f"{what} is not JSON: {body[:60]!r}") from None


def parse_download_request(body: bytes) -> list[str]:
    """The blob ids of a download request body (checked names)."""
    ids = _json(body, "a /stream download body")
    if not isinstance(ids, list):
        raise InvalidRequest("a /stream download body is a JSON list of blob ids")
    _check_entries(len(ids), "a /stream download body")
    return [check_name("blob id", blob_id) for blob_id in ids]


MAX_STREAM_ENTRIES = 1000  # blob ids in one /stream request (shoal's BlobManager sends 200)


def _check_entries(count: int, what: str) -> None:
    if count > MAX_STREAM_ENTRIES:
        raise BadRequest(f"{what} names {count} blobs; at most {MAX_STREAM_ENTRIES} in one request")


MAX_MANIFEST_LINE = 1024 * 1024  # the first line of a /stream upload: some 20,000 entries


def read_manifest_line(body: BinaryIO) -> bytes:
    """The first line of a /stream upload body, read at most MAX_MANIFEST_LINE bytes far."""
    line = body.readline(MAX_MANIFEST_LINE + 1)
    if len(line) > MAX_MANIFEST_LINE:
        raise BadRequest(f"a /stream upload manifest line is longer than {MAX_MANIFEST_LINE} bytes")
    return line


def parse_upload_manifest(line: bytes) -> list[tuple[str, int]]:
    """The (blob id, size) pairs of an upload body's first line. The ids are
    checked names, each at most once; sizes are whole numbers."""
    pairs = _json(line, "a /stream upload manifest")
    if not isinstance(pairs, list):
        raise InvalidRequest("a /stream upload manifest is a JSON list of [blob_id, size]")
    _check_entries(len(pairs), "a /stream upload manifest")
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for pair in pairs:
        if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], int)
                or isinstance(pair[1], bool) or pair[1] < 0):
            raise BadRequest(f"a /stream upload manifest entry is [blob_id, size], not {pair!r}")
        blob_id = check_name("blob id", pair[0])
        if blob_id in seen:
            raise BadRequest(f"blob id {blob_id} appears twice in one /stream upload")
        seen.add(blob_id)
        out.append((blob_id, pair[1]))
    return out


def upload_body(blobs: Iterable[tuple[str, bytes]]) -> bytes:
    """A whole upload request body (for clients, tests and the benchmark)."""
    items = list(blobs)
    manifest = json.dumps([[blob_id, len(data)] for blob_id, data in items]).encode("ascii")
    return b"".join([manifest, b"\n", *(data for _, data in items)])


@attrs.frozen
class Frame:
    size: int
    tag: str
    data: bytes


class DownloadStreamParser:
    """Incremental reader of a download response (h11-style: feed bytes, take
    complete frames). `done()` says whether the input ended on a frame boundary."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Frame]:
        self._buffer += data
        while len(self._buffer) >= HEADER_BYTES:
            header = bytes(self._buffer[:HEADER_BYTES])
            try:
                size = int(header[:SIZE_DIGITS], 16)
            except ValueError:
                raise BadRequest(f"a /stream frame starts with 8 hex digits, not {header[:SIZE_DIGITS]!r}") from None
            if header[-1:] != b" ":
                raise BadRequest(f"a /stream frame header ends with a space: {header!r}")
            if len(self._buffer) < HEADER_BYTES + size:
                return
            tag = header[SIZE_DIGITS:-1].decode("ascii")
            data = bytes(self._buffer[HEADER_BYTES:HEADER_BYTES + size])
            del self._buffer[:HEADER_BYTES + size]
            yield Frame(size, tag, data)

    def done(self) -> bool:
        return not self._buffer


def parse_download_stream(body: bytes) -> list[Frame]:
    parser = DownloadStreamParser()
    frames = list(parser.feed(body))
    if not parser.done():
        raise BadRequest(f"a /stream download response ends inside a frame ({len(body)} bytes)")
    return frames
