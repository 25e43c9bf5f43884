"""CHK (immutable file) caps of Tahoe-LAFS 1.20.

* read cap:   ``URI:CHK:<key>:<ueb_hash>:<k>:<N>:<size>``
* verify cap: ``URI:CHK-Verifier:<storage_index>:<ueb_hash>:<k>:<N>:<size>``

key and storage index are 16 bytes (26 base32 chars), the UEB hash 32 bytes
(52 chars); k, N and the file size are decimal. The storage index is the
tagged hash of the key. The cap's k and N are authoritative (the copies in
the UEB are ignored by downloaders).

Tahoe quirks: its ``URI:CHK-Verifier:`` regex has no end anchor, so it
accepts any junk after the size digits (``...:1000xyz``); shoal does not.
Both parsers accept leading zeros in the numbers (``[0-9]+``); shoal does
too, and writes them without.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from shoal.caps.base import (
    HASH_BYTES,
    KEY_BYTES,
    CapBase,
    check_encoding,
    decode_b32,
    decode_int,
    hash_bytes,
    key_bytes,
    split_fields,
)
from shoal.crypto.hashes import storage_index_hash
from shoal.encoding.base32 import b2a

_FIELDS = ("key", "ueb_hash", "needed", "total", "size")
_VERIFIER_FIELDS = ("storage_index", "ueb_hash", "needed", "total", "size")


def _numbers(kind: str, parts: list[str]) -> tuple[int, int, int]:
    return (
        decode_int(kind, "needed", parts[2]),
        decode_int(kind, "total", parts[3]),
        decode_int(kind, "size", parts[4]),
    )


@attrs.frozen(repr=False)
class CHKCap(CapBase):
    """Read cap of an immutable file: decryption key plus integrity root."""

    PREFIX: ClassVar[str] = "URI:CHK:"
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    is_directory: ClassVar[bool] = False
    is_verifier: ClassVar[bool] = False
    format: ClassVar[str] = "CHK"

    key: bytes = attrs.field(validator=key_bytes)
    ueb_hash: bytes = attrs.field(validator=hash_bytes)
    needed: int
    total: int
    size: int

    def __attrs_post_init__(self) -> None:
        check_encoding(self, self.needed, self.total, self.size)

    @property
    def storage_index(self) -> bytes:
        return storage_index_hash(self.key)

    def readonly(self) -> CHKCap:
        return self

    def verifier(self) -> CHKVerifierCap:
        return CHKVerifierCap(self.storage_index, self.ueb_hash, self.needed, self.total, self.size)

    def _body(self) -> str:
        return f"{b2a(self.key)}:{b2a(self.ueb_hash)}:{self.needed}:{self.total}:{self.size}"

    @classmethod
    def _from_body(cls, body: str, kind: str) -> CHKCap:
        parts = split_fields(kind, body, _FIELDS)
        key = decode_b32(kind, "key", parts[0], KEY_BYTES)
        ueb_hash = decode_b32(kind, "ueb_hash", parts[1], HASH_BYTES)
        return cls(key, ueb_hash, *_numbers(kind, parts))


@attrs.frozen(repr=False)
class CHKVerifierCap(CapBase):
    """Verify cap of an immutable file: finds and checks shares, cannot decrypt."""

    PREFIX: ClassVar[str] = "URI:CHK-Verifier:"
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    is_directory: ClassVar[bool] = False
    is_verifier: ClassVar[bool] = True
    format: ClassVar[str] = "CHK"

    storage_index: bytes = attrs.field(validator=key_bytes)
    ueb_hash: bytes = attrs.field(validator=hash_bytes)
    needed: int
    total: int
    size: int

    def __attrs_post_init__(self) -> None:
        check_encoding(self, self.needed, self.total, self.size)

    def readonly(self) -> CHKVerifierCap:
        return self

    def verifier(self) -> CHKVerifierCap:
        return self

    def _body(self) -> str:
        si = b2a(self.storage_index)
        return f"{si}:{b2a(self.ueb_hash)}:{self.needed}:{self.total}:{self.size}"

    @classmethod
    def _from_body(cls, body: str, kind: str) -> CHKVerifierCap:
        parts = split_fields(kind, body, _VERIFIER_FIELDS)
        si = decode_b32(kind, "storage_index", parts[0], KEY_BYTES)
        ueb_hash = decode_b32(kind, "ueb_hash", parts[1], HASH_BYTES)
        return cls(si, ueb_hash, *_numbers(kind, parts))
