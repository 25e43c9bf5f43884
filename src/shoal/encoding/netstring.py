"""Netstrings (D. J. Bernstein): b"<decimal length>:<bytes>,".

Tahoe-LAFS wraps hash tags, hash-pair operands, UEB values and directory
entries in netstrings.
"""

from shoal.errors import EncodingError


def netstring(data: bytes) -> bytes:
    """Wrap bytes in a netstring."""
    if not isinstance(data, bytes):
        raise TypeError("netstring() takes bytes")
    return b"%d:%s," % (len(data), data)


def split_netstring(data: bytes, count: int | None = None, start: int = 0) -> tuple[list[bytes], int]:
    """Parse consecutive netstrings from data[start:].

    Returns (items, end offset). With count, exactly that many are read and
    the rest of data is left alone; without, data must be netstrings to its end.
    """
    items: list[bytes] = []
    pos = start
    while (count is None and pos < len(data)) or (count is not None and len(items) < count):
        colon = data.find(b":", pos, pos + 21)
        if colon < 0:
            raise EncodingError(f"netstring at offset {pos}: no length prefix")
        digits = data[pos:colon]
        if not digits.isdigit() or (len(digits) > 1 and digits[:1] == b"0"):
            raise EncodingError(f"netstring at offset {pos}: bad length {digits[:20]!r}")
        length = int(digits)
        end = colon + 1 + length
        if end >= len(data) or data[end : end + 1] != b",":
            raise EncodingError(f"netstring at offset {pos}: truncated or missing ','")
        items.append(data[colon + 1 : end])
        pos = end + 1
    return items, pos
