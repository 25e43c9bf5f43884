"""Decimal numbers from untrusted text, read without int()'s surprises.

``int()`` refuses more than 4,300 digits with a ValueError (a 500 where a
caller forgot it), accepts other scripts' digits, ``_`` and signs. A header
or URL number here is ASCII digits only, and one longer than any size shoal
handles is clamped: every byte count and offset fits in 64 bits.
"""

import re

CEILING = 2**64  # larger than any size or offset: "more than anything"
_DIGITS = re.compile(r"\A[0-9]+\Z")
_MAX_DIGITS = len(str(CEILING))


def is_decimal(text: str) -> bool:
    """Whether `text` is one or more ASCII digits."""
    return _DIGITS.match(text) is not None


def clamped(text: str) -> int:
    """The value of ASCII digits `text`, or CEILING when it is larger (ValueError if not digits)."""
    if not is_decimal(text):
        raise ValueError(f"not a decimal number: {text[:40]!r}")
    stripped = text.lstrip("0") or "0"
    if len(stripped) > _MAX_DIGITS:
        return CEILING
    return min(int(stripped), CEILING)
