"""LIT caps of Tahoe-LAFS 1.20: ``URI:LIT:<base32 of the file's bytes>``.

Small files (Tahoe: at most 55 bytes) live inside their cap; nothing is
stored on any server, so there is no storage index and no verify cap. The
empty file is ``URI:LIT:``. The parser sets no size limit, as Tahoe's does not.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from shoal.caps.base import CapBase, any_bytes, decode_b32
from shoal.encoding.base32 import b2a


@attrs.frozen(repr=False)
class LiteralCap(CapBase):
    """An immutable file whose whole content is `data`."""

    PREFIX: ClassVar[str] = "URI:LIT:"
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    is_directory: ClassVar[bool] = False
    is_verifier: ClassVar[bool] = False
    format: ClassVar[str] = "LIT"

    data: bytes = attrs.field(validator=any_bytes)

    @property
    def storage_index(self) -> None:
        return None

    @property
    def size(self) -> int:
        return len(self.data)

    def readonly(self) -> LiteralCap:
        return self

    def verifier(self) -> None:
        return None

    def _body(self) -> str:
        return b2a(self.data)

    @classmethod
    def _from_body(cls, body: str, kind: str) -> LiteralCap:
        return cls(decode_b32(kind, "data", body, None))

    def _abbrev(self) -> str:
        return f"{len(self.data)} bytes"

