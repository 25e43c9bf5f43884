"""The byte ranges of Tahoe-LAFS 1.20's HTTP storage protocol: ``Range`` and ``Content-Range``.

As Tahoe 1.20 writes and reads them (werkzeug's forms, RFC 9110 syntax):

- a share read asks for exactly one closed range, ``Range: bytes=<first>-<last>``
  (inclusive; Tahoe's client never asks for 0 bytes). Several ranges, a
  suffix range, an open end, other units or garbage: 416. No header: the
  whole share (200);
- the answer to a range read is 206 with ``Content-Range: bytes <first>-<last>/*``,
  cut at the end of the share; a range starting at or past the end is 204
  with no body (an empty range cannot be written as a Content-Range);
- an immutable upload chunk says where it goes with
  ``Content-Range: bytes <first>-<last>/<total or *>``; anything else is 416.

Values are half-open ``ByteRange(start, end)``, Python's convention.
"""

import re

import attrs

from shoal.protocol.http_errors import RANGE_NOT_SATISFIABLE, HttpRequestError

MAX_OFFSET = 2**64 - 1
_DIGITS = 20  # enough for any 64-bit offset; longer is refused before int()


def _check_range(instance: object, attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_OFFSET + 1:
        raise ValueError(f"range bound {value!r} is not an offset")


@attrs.frozen
class ByteRange:
    """Bytes [start, end) of a share; never empty."""

    start: int = attrs.field(validator=_check_range)
    end: int = attrs.field(validator=_check_range)

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty or reversed range {self.start}-{self.end}")

    @property
    def length(self) -> int:
        return self.end - self.start

    def clipped(self, size: int) -> "ByteRange | None":
        """This range cut at ``size`` bytes; None when nothing of it is below ``size``."""
        end = min(self.end, size)
        return ByteRange(self.start, end) if self.start < end else None


_WS = "[ \t]*"
_RANGE = re.compile(rf"{_WS}([A-Za-z]+){_WS}={_WS}([0-9]{{1,{_DIGITS}}}){_WS}-{_WS}([0-9]{{1,{_DIGITS}}}){_WS}")
_CONTENT_RANGE = re.compile(
    rf"{_WS}bytes ([0-9]{{1,{_DIGITS}}})-([0-9]{{1,{_DIGITS}}})/(\*|[0-9]{{1,{_DIGITS}}}){_WS}"
)


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise HttpRequestError(RANGE_NOT_SATISFIABLE, f"{what} header is not ASCII") from None


def _closed(first: int, last: int, what: str) -> ByteRange:
    if last < first or last > MAX_OFFSET:
        raise HttpRequestError(RANGE_NOT_SATISFIABLE, f"{what} {first}-{last} is not a range")
    return ByteRange(first, last + 1)


def format_range(byte_range: ByteRange) -> bytes:
    """The ``Range`` value asking for ``byte_range``."""
    return b"bytes=%d-%d" % (byte_range.start, byte_range.end - 1)


def parse_range(value: bytes | None) -> ByteRange | None:
    """The one closed range a ``Range`` header asks for; None when there is no header; 416 otherwise."""
    if value is None:
        return None
    match = _RANGE.fullmatch(_text(value, "Range"))
    if match is None or match.group(1).lower() != "bytes":
        raise HttpRequestError(RANGE_NOT_SATISFIABLE, "Range must be one closed range of bytes")
    return _closed(int(match.group(2)), int(match.group(3)), "Range")


def format_content_range(byte_range: ByteRange, total: int | None = None) -> bytes:
    """The ``Content-Range`` value for ``byte_range`` (total length unknown: ``*``)."""
    end = b"*" if total is None else b"%d" % total
    return b"bytes %d-%d/%s" % (byte_range.start, byte_range.end - 1, end)


@attrs.frozen
class ContentRange:
    """A parsed ``Content-Range``: the bytes it covers and the total length, if given."""

    range: ByteRange
    total: int | None


def parse_content_range(value: bytes | None) -> ContentRange:
    """The range a ``Content-Range`` header gives; 416 when it is missing or not one closed range."""
    if value is None:
        raise HttpRequestError(RANGE_NOT_SATISFIABLE, "Content-Range is required")
    match = _CONTENT_RANGE.fullmatch(_text(value, "Content-Range"))
    if match is None:
        raise HttpRequestError(RANGE_NOT_SATISFIABLE, "Content-Range must be 'bytes <first>-<last>/<total>'")
    byte_range = _closed(int(match.group(1)), int(match.group(2)), "Content-Range")
    total = None if match.group(3) == "*" else int(match.group(3))
    if total is not None and byte_range.end > total:
        raise HttpRequestError(RANGE_NOT_SATISFIABLE, "Content-Range ends past its total length")
    return ContentRange(byte_range, total)
