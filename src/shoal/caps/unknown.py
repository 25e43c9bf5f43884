"""Caps of kinds shoal does not know, carried opaquely (Tahoe's ``UnknownURI``).

Directories may hold caps of future kinds. Tahoe keeps their text as given,
and marks what is claimed about them with a prefix: ``ro.`` ("alleged
read-only") or ``imm.`` ("alleged immutable", which implies read-only). An
UnknownCap keeps the whole text, prefix included; its text is never one that
shoal.caps.parse.parse_cap would read as a known cap (so parsing what it
writes gives it back), and is always encodable as UTF-8.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

ALLEGED_READONLY_PREFIX = "ro."
ALLEGED_IMMUTABLE_PREFIX = "imm."


def _opaque_text(instance: object, attribute: attrs.Attribute[str], text: str) -> None:
    if type(text) is not str:
        raise TypeError(f"UnknownCap text must be str, not {type(text).__name__}")
    # Imported here: parse imports this module.
    from shoal.caps.parse import check_unknown

    check_unknown(text)


@attrs.frozen(repr=False)
class UnknownCap:
    """A cap of an unrecognised kind: only its text, no claims about it.

    It has no is_mutable / is_readonly / is_directory (Tahoe's UnknownNode
    refuses those questions too); ask alleged_readonly / alleged_immutable.
    """

    text: str = attrs.field(validator=_opaque_text)
    kind: ClassVar[str] = "unknown"

    @property
    def alleged_immutable(self) -> bool:
        return self.text.startswith(ALLEGED_IMMUTABLE_PREFIX)

    @property
    def alleged_readonly(self) -> bool:
        """True for ``ro.`` and for ``imm.`` (immutable implies read-only)."""
        return self.alleged_immutable or self.text.startswith(ALLEGED_READONLY_PREFIX)

    @property
    def storage_index(self) -> None:
        return None

    def readonly(self) -> None:
        """Unknown: shoal cannot diminish a cap it does not understand."""
        return None

    def verifier(self) -> None:
        return None

    def to_string(self) -> str:
        return self.text

    def to_bytes(self) -> bytes:
        return self.text.encode("utf-8")

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 16 else self.text[:16] + "..."
        return f"<UnknownCap {shown!r}>"
