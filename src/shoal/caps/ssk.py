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

from typing import Any, ClassVar, Generic, Self, TypeVar, cast

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
    """Text and parsing shared by every mutable file cap: two fields, a key (or
    storage index) then the fingerprint."""

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
    def _from_body(cls, body: str, kind: str) -> Self:
        first, fp = split_fields(kind, body, cls._FIELDS, extensible=cls.EXTENSIBLE)
        return cls(
            decode_b32(kind, cls._FIELDS[0], first, KEY_BYTES),  # type: ignore[call-arg]
            decode_b32(kind, "fingerprint", fp, HASH_BYTES),
        )


class _SDMF:
    """The SDMF family: caps end after the fingerprint."""

    __slots__ = ()
    EXTENSIBLE: ClassVar[bool] = False
    format: ClassVar[str] = "SDMF"


class _MDMF:
    """The MDMF family: anything after a ``:`` behind the fingerprint is ignored."""

    __slots__ = ()
    EXTENSIBLE: ClassVar[bool] = True
    format: ClassVar[str] = "MDMF"


@attrs.frozen(repr=False)
class _VerifierCap(_MutableCap):
    _FIELDS = ("storage_index", "fingerprint")
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    is_verifier: ClassVar[bool] = True

    storage_index: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def _first(self) -> bytes:
        return self.storage_index

    def readonly(self) -> Self:
        return self

    def verifier(self) -> Self:
        return self


_V = TypeVar("_V", bound=_VerifierCap)


@attrs.frozen(repr=False)
class _ReadCap(_MutableCap, Generic[_V]):
    _FIELDS = ("readkey", "fingerprint")
    _VERIFIER: ClassVar[type[Any]]  # the verify cap class of the same family
    is_mutable: ClassVar[bool] = True
    is_readonly: ClassVar[bool] = True
    is_verifier: ClassVar[bool] = False

    readkey: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def _first(self) -> bytes:
        return self.readkey

    @property
    def storage_index(self) -> bytes:
        return ssk_storage_index_hash(self.readkey)

    def readonly(self) -> Self:
        return self

    def verifier(self) -> _V:
        return cast(_V, self._VERIFIER(self.storage_index, self.fingerprint))


_R = TypeVar("_R", bound=_ReadCap[Any])


@attrs.frozen(repr=False)
class _WriteCap(_MutableCap, Generic[_R, _V]):
    _FIELDS = ("writekey", "fingerprint")
    _READ: ClassVar[type[Any]]  # the read cap class of the same family
    _VERIFIER: ClassVar[type[Any]]
    is_mutable: ClassVar[bool] = True
    is_readonly: ClassVar[bool] = False
    is_verifier: ClassVar[bool] = False

    writekey: bytes = attrs.field(validator=key_bytes)
    fingerprint: bytes = attrs.field(validator=hash_bytes)

    def _first(self) -> bytes:
        return self.writekey

    @property
    def readkey(self) -> bytes:
        return ssk_readkey_hash(self.writekey)

    @property
    def storage_index(self) -> bytes:
        return ssk_storage_index_hash(self.readkey)

    def readonly(self) -> _R:
        return cast(_R, self._READ(self.readkey, self.fingerprint))

    def verifier(self) -> _V:
        return cast(_V, self._VERIFIER(self.storage_index, self.fingerprint))


# --- SDMF ---------------------------------------------------------------------

@attrs.frozen(repr=False)
class SSKVerifierCap(_SDMF, _VerifierCap):
    """Verify cap of an SDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:SSK-Verifier:"


@attrs.frozen(repr=False)
class SSKReadCap(_SDMF, _ReadCap[SSKVerifierCap]):
    """Read cap of an SDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:SSK-RO:"
    _VERIFIER = SSKVerifierCap


@attrs.frozen(repr=False)
class SSKWriteCap(_SDMF, _WriteCap[SSKReadCap, SSKVerifierCap]):
    """Write cap of an SDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:SSK:"
    _READ = SSKReadCap
    _VERIFIER = SSKVerifierCap


# --- MDMF ---------------------------------------------------------------------

@attrs.frozen(repr=False)
class MDMFVerifierCap(_MDMF, _VerifierCap):
    """Verify cap of an MDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:MDMF-Verifier:"


@attrs.frozen(repr=False)
class MDMFReadCap(_MDMF, _ReadCap[MDMFVerifierCap]):
    """Read cap of an MDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:MDMF-RO:"
    _VERIFIER = MDMFVerifierCap


@attrs.frozen(repr=False)
class MDMFWriteCap(_MDMF, _WriteCap[MDMFReadCap, MDMFVerifierCap]):
    """Write cap of an MDMF mutable file."""

    PREFIX: ClassVar[str] = "URI:MDMF:"
    _READ = MDMFReadCap
    _VERIFIER = MDMFVerifierCap
