"""Directory caps of Tahoe-LAFS 1.20: a ``URI:DIR2*`` prefix over a file cap's fields.

A directory is stored as a file; its cap is the file cap with the prefix
swapped, the fields unchanged:

===========================  =====================  ==========================
directory prefix             wraps                  class
===========================  =====================  ==========================
``URI:DIR2:``                ``URI:SSK:``           DirectoryWriteCap
``URI:DIR2-RO:``             ``URI:SSK-RO:``        DirectoryReadCap
``URI:DIR2-Verifier:``       ``URI:SSK-Verifier:``  DirectoryVerifierCap
``URI:DIR2-MDMF:``           ``URI:MDMF:``          MDMFDirectoryWriteCap
``URI:DIR2-MDMF-RO:``        ``URI:MDMF-RO:``       MDMFDirectoryReadCap
``URI:DIR2-MDMF-Verifier:``  ``URI:MDMF-Verifier:`` MDMFDirectoryVerifierCap
``URI:DIR2-CHK:``            ``URI:CHK:``           CHKDirectoryCap
``URI:DIR2-CHK-Verifier:``   ``URI:CHK-Verifier:``  CHKDirectoryVerifierCap
``URI:DIR2-LIT:``            ``URI:LIT:``           LiteralDirectoryCap
===========================  =====================  ==========================

Each field is parsed by the wrapped kind's rules, so the MDMF directory caps
inherit the tolerated ``:``-extension tail. As in Tahoe, only write and read
caps of mutable directories report ``is_mutable``. Tahoe quirk not copied:
there ``get_verify_cap()`` of a ``URI:DIR2-MDMF-Verifier:`` or
``URI:DIR2-CHK-Verifier:`` cap builds a ``URI:DIR2-Verifier:`` object that
cannot be serialised; here a verify cap's verifier() is itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import attrs
from attrs.validators import instance_of

from shoal.caps.base import BadCapError, CapBase
from shoal.caps.chk import CHKCap, CHKVerifierCap
from shoal.caps.literal import LiteralCap
from shoal.caps.ssk import (
    MDMFReadCap,
    MDMFVerifierCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKVerifierCap,
    SSKWriteCap,
)

_F = TypeVar("_F", bound=CapBase)


def _parse_inner(file_class: type[_F], body: str, kind: str) -> _F:
    """Parse the fields by the wrapped kind's rules, naming the directory kind in errors."""
    try:
        return file_class._from_body(body, kind)
    except BadCapError as e:
        if e.kind == kind:
            raise
        raise BadCapError(kind, e.field, e.problem) from None


class _DirectoryCap(CapBase):
    __slots__ = ()
    is_directory: ClassVar[bool] = True
    file_cap: CapBase

    def _body(self) -> str:
        return self.file_cap._body()

    @property
    def storage_index(self) -> bytes | None:
        si: bytes | None = getattr(self.file_cap, "storage_index", None)
        return si


# --- over SDMF ------------------------------------------------------------------

@attrs.frozen(repr=False)
class DirectoryVerifierCap(_DirectoryCap):
    PREFIX: ClassVar[str] = "URI:DIR2-Verifier:"
    is_verifier: ClassVar[bool] = True
    format: ClassVar[str] = "SDMF"
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    file_cap: SSKVerifierCap = attrs.field(validator=instance_of(SSKVerifierCap))

    def readonly(self) -> DirectoryVerifierCap:
        return self

    def verifier(self) -> DirectoryVerifierCap:
        return self

    @classmethod
    def _from_body(cls, body: str, kind: str) -> DirectoryVerifierCap:
        return cls(_parse_inner(SSKVerifierCap, body, kind))


@attrs.frozen(repr=False)
class DirectoryReadCap(_DirectoryCap):
    PREFIX: ClassVar[str] = "URI:DIR2-RO:"
    is_verifier: ClassVar[bool] = False
    format: ClassVar[str] = "SDMF"
    is_mutable: ClassVar[bool] = True
    is_readonly: ClassVar[bool] = True
    file_cap: SSKReadCap = attrs.field(validator=instance_of(SSKReadCap))

    def readonly(self) -> DirectoryReadCap:
        return self

    def verifier(self) -> DirectoryVerifierCap:
        return DirectoryVerifierCap(self.file_cap.verifier())

    @classmethod
    def _from_body(cls, body: str, kind: str) -> DirectoryReadCap:
        return cls(_parse_inner(SSKReadCap, body, kind))


@attrs.frozen(repr=False)
class DirectoryWriteCap(_DirectoryCap):
    PREFIX: ClassVar[str] = "URI:DIR2:"
    is_verifier: ClassVar[bool] = False
    format: ClassVar[str] = "SDMF"
    is_mutable: ClassVar[bool] = True
    is_readonly: ClassVar[bool] = False
    file_cap: SSKWriteCap = attrs.field(validator=instance_of(SSKWriteCap))

    def readonly(self) -> DirectoryReadCap:
        return DirectoryReadCap(self.file_cap.readonly())

    def verifier(self) -> DirectoryVerifierCap:
        return DirectoryVerifierCap(self.file_cap.verifier())

    @classmethod
    def _from_body(cls, body: str, kind: str) -> DirectoryWriteCap:
        return cls(_parse_inner(SSKWriteCap, body, kind))


# --- over MDMF ------------------------------------------------------------------

@attrs.frozen(repr=False)
class MDMFDirectoryVerifierCap(_DirectoryCap):
    PREFIX: ClassVar[str] = "URI:DIR2-MDMF-Verifier:"
    is_verifier: ClassVar[bool] = True
    format: ClassVar[str] = "MDMF"
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    file_cap: MDMFVerifierCap = attrs.field(validator=instance_of(MDMFVerifierCap))

    def readonly(self) -> MDMFDirectoryVerifierCap:
        return self

    def verifier(self) -> MDMFDirectoryVerifierCap:
        return self

    @classmethod
    def _from_body(cls, body: str, kind: str) -> MDMFDirectoryVerifierCap:
        return cls(_parse_inner(MDMFVerifierCap, body, kind))


@attrs.frozen(repr=False)
class MDMFDirectoryReadCap(_DirectoryCap):
    PREFIX: ClassVar[str] = "URI:DIR2-MDMF-RO:"
    is_verifier: ClassVar[bool] = False
    format: ClassVar[str] = "MDMF"
    is_mutable: ClassVar[bool] = True
    is_readonly: ClassVar[bool] = True
    file_cap: MDMFReadCap = attrs.field(validator=instance_of(MDMFReadCap))

    def readonly(self) -> MDMFDirectoryReadCap:
        return self

    def verifier(self) -> MDMFDirectoryVerifierCap:
        return MDMFDirectoryVerifierCap(self.file_cap.verifier())

    @classmethod
    def _from_body(cls, body: str, kind: str) -> MDMFDirectoryReadCap:
        return cls(_parse_inner(MDMFReadCap, body, kind))


@attrs.frozen(repr=False)
class MDMFDirectoryWriteCap(_DirectoryCap):
    PREFIX: ClassVar[str] = "URI:DIR2-MDMF:"
    is_verifier: ClassVar[bool] = False
    format: ClassVar[str] = "MDMF"
    is_mutable: ClassVar[bool] = True
    is_readonly: ClassVar[bool] = False
    file_cap: MDMFWriteCap = attrs.field(validator=instance_of(MDMFWriteCap))

    def readonly(self) -> MDMFDirectoryReadCap:
        return MDMFDirectoryReadCap(self.file_cap.readonly())

    def verifier(self) -> MDMFDirectoryVerifierCap:
        return MDMFDirectoryVerifierCap(self.file_cap.verifier())

    @classmethod
    def _from_body(cls, body: str, kind: str) -> MDMFDirectoryWriteCap:
        return cls(_parse_inner(MDMFWriteCap, body, kind))


# --- immutable ----------------------------------------------------------------

@attrs.frozen(repr=False)
class CHKDirectoryVerifierCap(_DirectoryCap):
    PREFIX: ClassVar[str] = "URI:DIR2-CHK-Verifier:"
    is_verifier: ClassVar[bool] = True
    format: ClassVar[str] = "CHK"
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    file_cap: CHKVerifierCap = attrs.field(validator=instance_of(CHKVerifierCap))

    def readonly(self) -> CHKDirectoryVerifierCap:
        return self

    def verifier(self) -> CHKDirectoryVerifierCap:
        return self

    @classmethod
    def _from_body(cls, body: str, kind: str) -> CHKDirectoryVerifierCap:
        return cls(_parse_inner(CHKVerifierCap, body, kind))


@attrs.frozen(repr=False)
class CHKDirectoryCap(_DirectoryCap):
    """A deep-immutable directory."""

    PREFIX: ClassVar[str] = "URI:DIR2-CHK:"
    is_verifier: ClassVar[bool] = False
    format: ClassVar[str] = "CHK"
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    file_cap: CHKCap = attrs.field(validator=instance_of(CHKCap))

    def readonly(self) -> CHKDirectoryCap:
        return self

    def verifier(self) -> CHKDirectoryVerifierCap:
        return CHKDirectoryVerifierCap(self.file_cap.verifier())

    @classmethod
    def _from_body(cls, body: str, kind: str) -> CHKDirectoryCap:
        return cls(_parse_inner(CHKCap, body, kind))


@attrs.frozen(repr=False)
class LiteralDirectoryCap(_DirectoryCap):
    """A tiny deep-immutable directory held inside its cap; no verify cap."""

    PREFIX: ClassVar[str] = "URI:DIR2-LIT:"
    is_verifier: ClassVar[bool] = False
    format: ClassVar[str] = "LIT"
    is_mutable: ClassVar[bool] = False
    is_readonly: ClassVar[bool] = True
    file_cap: LiteralCap = attrs.field(validator=instance_of(LiteralCap))

    def readonly(self) -> LiteralDirectoryCap:
        return self

    def verifier(self) -> None:
        return None

    @classmethod
    def _from_body(cls, body: str, kind: str) -> LiteralDirectoryCap:
        return cls(_parse_inner(LiteralCap, body, kind))

    def _abbrev(self) -> str:
        return f"{self.file_cap.size} bytes"


DirectoryCap = (
    DirectoryWriteCap | DirectoryReadCap | DirectoryVerifierCap
    | MDMFDirectoryWriteCap | MDMFDirectoryReadCap | MDMFDirectoryVerifierCap
    | CHKDirectoryCap | CHKDirectoryVerifierCap | LiteralDirectoryCap
)

_WRAPPERS: dict[type[CapBase], Callable[[Any], DirectoryCap]] = {
    SSKWriteCap: DirectoryWriteCap,
    SSKReadCap: DirectoryReadCap,
    SSKVerifierCap: DirectoryVerifierCap,
    MDMFWriteCap: MDMFDirectoryWriteCap,
    MDMFReadCap: MDMFDirectoryReadCap,
    MDMFVerifierCap: MDMFDirectoryVerifierCap,
    CHKCap: CHKDirectoryCap,
    CHKVerifierCap: CHKDirectoryVerifierCap,
    LiteralCap: LiteralDirectoryCap,
}


def wrap_directory(file_cap: CapBase) -> DirectoryCap:
    """The directory cap over a file cap (the file holds the directory's entries)."""
    wrapper = _WRAPPERS.get(type(file_cap))
    if wrapper is None:
        raise TypeError(f"no directory cap wraps a {type(file_cap).__name__}")
    return wrapper(file_cap)
