"""The ``Range`` header of ``GET /blobs/{user}/{blob_id}``: Soledad's form and RFC 7233's.

Soledad's server takes ``bytes=START-END`` and sends END - START bytes from
START (an exclusive end), answering 206 with ``content-range: bytes
START-END/SIZE``; shoal keeps exactly that for the closed form, so a client
written against Soledad gets what it got there. Soledad broke on the open
forms; shoal serves them as RFC 7233 says: ``bytes=START-`` (to the end) and
``bytes=-N`` (the last N bytes), with an RFC content-range (inclusive last
byte). An END past the blob is cut at its size. Anything unparseable, a
START at or past the end, an empty range, several ranges or another unit is
416 with ``content-range: bytes */SIZE``. Pure.
"""

import re

import attrs

from shoal.apps.blobs.errors import RangeNotSatisfiable
from shoal.encoding import digits

_FORM = re.compile(r"^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$")


@attrs.frozen
class ByteRange:
    start: int
    length: int
    content_range: str  # the response header's value


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The part of a `size`-byte blob a Range header asks for (None: all of it)."""
    if header is None or header.strip() == "":
        return None
    m = _FORM.match(header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise RangeNotSatisfiable(header, size)
    first, last = m.groups()
    if first == "":  # RFC suffix: the last N bytes
        n = min(digits.clamped(last), size)
        if n <= 0:
            raise RangeNotSatisfiable(header, size)
        return ByteRange(size - n, n, f"bytes {size - n}-{size - 1}/{size}")
    start = digits.clamped(first)
    if start >= size:
        raise RangeNotSatisfiable(header, size)
    if last == "":  # RFC open range: from START to the end
        return ByteRange(start, size - start, f"bytes {start}-{size - 1}/{size}")
    end = min(digits.clamped(last), size)  # Soledad's closed form: END is exclusive
    if end <= start:
        raise RangeNotSatisfiable(header, size)
    return ByteRange(start, end - start, f"bytes {start}-{end}/{size}")


def unsatisfiable_header(size: int) -> str:
    return f"bytes */{size}"
