"""Mutable file caps of Tahoe-LAFS 1.20, SDMF (``URI:SSK*``) and MDMF (``URI:MDMF*``).

Both formats use the same "signed subset key" scheme and the same fields:

* write cap:  ``URI:SSK:<writekey>:<fingerprint>``, ``URI:MDMF:...``
* read cap:   ``URI:SSK-RO:<readkey>:<fingerprint>``, ``URI:MDMF-RO:...``
* verify cap: ``URI:SSK-Verifier:<storage_index>:<fingerprint>``, ``URI:MDMF-Verifier:...``

Keys and storage index are 16 bytes, the fingerprint (tagged hash of the
SubjectPublicKeyInfo DER verifying key) 32 bytes. readkey = tagged hash of
writekey, storage index = tagged hash of readkey, so each cap derives the
weaker ones.

Quirk kept from Tahoe: the MDMF parsers end in ``(:|$)``, so after the
fingerprint a ``:`` and anything at all may follow (early MDMF caps carried
``:k:segsize`` hints there). It is ignored and not written back. SDMF caps
must end after the fingerprint. As in Tahoe, verify caps report
``is_mutable`` False (which is why they may sit behind an ``imm.`` prefix).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from shoal.caps.base import (
    HASH_BYTES,
    KEY_BYTES,
    CapBase,
    decode_b32,
    hash_bytes,
    key_bytes,
    split_fields,
)
from shoal.crypto.hashes import ssk_readkey_hash, ssk_storage_index_hash
from shoal.encoding.base32 import b2a


class _MutableCap(CapBase):
    """Shared body text and parsing of the six mutable file cap classes."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[str, str]]
    EXTENSIBLE: ClassVar[bool]
    is_directory: ClassVar[bool] = False

    fingerprint: bytes

    def _first(self) -> bytes:
        raise NotImplementedError

    def _body(self) -> str:
        return f"{b2a(self._first())}:{b2a(self.fingerprint)}"

    @classmethod
    def _decode(cls, body: str, kind: str) -> tuple[bytes, bytes]:
        first, fp = split_fields(kind, body, cls._FIELDS, extensible=cls.EXTENSIBLE)
        return (
            decode_b32(kind, cls._FIELDS[0], first, KEY_BYTES),
            decode_b32(kind, "fingerprint", fp, HASH_BYTES),
        )


class _WriteCap(_MutableCap):
    __slots__ = ()
    _FIELDS = ("writekey", "fingerprint")
    is_mutable: ClassVar[bool] = True
    is_readonly: ClassVar[bool] = False
    writekey: bytes

    def _first(self) -> bytes:
        return self.writekey

    @property
    def readkey(self) -> bytes:
        return ssk_readkey_hash(self.writekey)

    @property
    def storage_index(self) -> bytes:
        return ssk_storage_index_hash(self.readkey)


class _ReadCap(_MutableCap):
    __slots__ = ()
    _FIELDS = ("readkey", "fingerprint")
    is_mutable: ClassVar[bool] = True
    is_readonly: ClassVar[bool] = True
    readkey: bytes

    def _first(self) -> bytes:
        return self.readkey

    @property
    def storage_index(self) -> bytes:
        return ssk_storage_index_hash(self.readkey)


class _VerifierCap(_MutableCap):
    __slots__ = ()
    _FIELDS = ("storage_index", "fingerprint")
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    storage_index: bytes

    def _first(self) -> bytes:
        return self.storage_index


# --- SDMF ---------------------------------------------------------------------

@attrs.frozen(repr=False)
class SSKVerifierCap(_VerifierCap):
    """Verify cap of an SDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:SSK-Verifier:"
    EXTENSIBLE: ClassVar[bool] = False

    storage_index: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def readonly(self) -> SSKVerifierCap:
        return self

    def verifier(self) -> SSKVerifierCap:
        return self

    @classmethod
    def _from_body(cls, body: str, kind: str) -> SSKVerifierCap:
        return cls(*cls._decode(body, kind))


@attrs.frozen(repr=False)
class SSKReadCap(_ReadCap):
    """Read cap of an SDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:SSK-RO:"
    EXTENSIBLE: ClassVar[bool] = False

    readkey: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def readonly(self) -> SSKReadCap:
        return self

    def verifier(self) -> SSKVerifierCap:
        return SSKVerifierCap(self.storage_index, self.fingerprint)

    @classmethod
    def _from_body(cls, body: str, kind: str) -> SSKReadCap:
        return cls(*cls._decode(body, kind))


@attrs.frozen(repr=False)
class SSKWriteCap(_WriteCap):
    """Write cap of an SDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:SSK:"
    EXTENSIBLE: ClassVar[bool] = False

    writekey: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def readonly(self) -> SSKReadCap:
        return SSKReadCap(self.readkey, self.fingerprint)

    def verifier(self) -> SSKVerifierCap:
        return SSKVerifierCap(self.storage_index, self.fingerprint)

    @classmethod
    def _from_body(cls, body: str, kind: str) -> SSKWriteCap:
        return cls(*cls._decode(body, kind))


# --- MDMF ---------------------------------------------------------------------

@attrs.frozen(repr=False)
class MDMFVerifierCap(_VerifierCap):
    """Verify cap of an MDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:MDMF-Verifier:"
    EXTENSIBLE: ClassVar[bool] = True

    storage_index: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def readonly(self) -> MDMFVerifierCap:
        return self

    def verifier(self) -> MDMFVerifierCap:
        return self

    @classmethod
    def _from_body(cls, body: str, kind: str) -> MDMFVerifierCap:
        return cls(*cls._decode(body, kind))


@attrs.frozen(repr=False)
class MDMFReadCap(_ReadCap):
    """Read cap of an MDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:MDMF-RO:"
    EXTENSIBLE: ClassVar[bool] = True

    readkey: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def readonly(self) -> MDMFReadCap:
        return self

    def verifier(self) -> MDMFVerifierCap:
        return MDMFVerifierCap(self.storage_index, self.fingerprint)

    @classmethod
    def _from_body(cls, body: str, kind: str) -> MDMFReadCap:
        return cls(*cls._decode(body, kind))


@attrs.frozen(repr=False)
class MDMFWriteCap(_WriteCap):
    """Write cap of an MDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:MDMF:"
    EXTENSIBLE: ClassVar[bool] = True

    writekey: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def readonly(self) -> MDMFReadCap:
        return MDMFReadCap(self.readkey, self.fingerprint)

    def verifier(self) -> MDMFVerifierCap:
        return MDMFVerifierCap(self.storage_index, self.fingerprint)

    @classmethod
    def _from_body(cls, body: str, kind: str) -> MDMFWriteCap:
        return cls(*cls._decode(body, kind))
