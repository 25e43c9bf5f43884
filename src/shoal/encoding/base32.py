"""RFC 4648 base32 as Tahoe-LAFS writes it: lower case, no '=' padding.

Decoding is strict: only the lower-case alphabet, and the trailing character
must not carry bits beyond the encoded length (so each byte string has exactly
one text form, as Tahoe's cap regexes demand).
"""

import base64
import re

from shoal.errors import EncodingError

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_VALID = re.compile(r"\A[a-z2-7]*\Z")
# Characters of text length (mod 8) that cannot end a canonical encoding.
_BAD_LENGTHS = {1, 3, 6}
_VALUE = {c: i for i, c in enumerate(ALPHABET)}


def b2a(data: bytes) -> str:
    """Encode bytes as lower-case unpadded base32 text."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def b2a_bytes(data: bytes) -> bytes:
    """Like b2a, but the text as ASCII bytes (caps and netstrings hold bytes)."""
    return b2a(data).encode("ascii")


def encoded_length(nbytes: int) -> int:
    """Number of base32 characters that encode nbytes bytes."""
    return (nbytes * 8 + 4) // 5


def a2b(text: str | bytes) -> bytes:
    """Decode strict lower-case unpadded base32; raise EncodingError otherwise."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise EncodingError("base32 text is not ASCII") from None
    if not _VALID.match(text):
        raise EncodingError(f"not lower-case base32: {text[:40]!r}")
    if len(text) % 8 in _BAD_LENGTHS:
        raise EncodingError(f"impossible base32 length {len(text)}")
    padded = text.upper() + "=" * (-len(text) % 8)
    data = base64.b32decode(padded)
    stray_bits = len(text) * 5 - len(data) * 8  # bits of the last character beyond the data
    if stray_bits and _VALUE[text[-1]] & ((1 << stray_bits) - 1):
        raise EncodingError(f"non-canonical base32 (stray trailing bits): {text[:40]!r}")
    return data


def is_base32(text: str, nbytes: int) -> bool:
    """True when text is the canonical encoding of exactly nbytes bytes."""
    if len(text) != encoded_length(nbytes):
        return False
    try:
        a2b(text)
    except EncodingError:
        return False
    return True
