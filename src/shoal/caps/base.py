"""What every Tahoe-LAFS 1.20 cap shares: its errors, field rules and text fields.

A cap's text is ``URI:<KIND>:`` followed by ``:``-separated fields. Binary
fields are RFC 4648 base32, lower case, unpadded, of an exact length (26
characters for 16 bytes, 52 for 32) whose last character carries no stray
bits; numbers are plain ASCII decimal. These are the rules of the regexes in
Tahoe's ``src/allmydata/uri.py``, which accept exactly one spelling of each
binary value.
"""

from __future__ import annotations

import re
from typing import ClassVar, Self

import attrs

from shoal.encoding import base32
from shoal.errors import CallerError, EncodingError

KEY_BYTES = 16  # AES keys, mutable write/read keys, storage indexes
HASH_BYTES = 32  # UEB hashes, public-key fingerprints
MAX_SHARES = 256
MAX_SIZE = 2**64 - 1  # v2 immutable shares hold 8-byte sizes; Tahoe sets no bound
_DECIMAL = re.compile(r"[0-9]+")  # ASCII digits only, unlike str.isdigit()


class BadCapError(CallerError):
    """Not a valid cap: text of a known kind with a bad field, text that is not
    UTF-8, or an out-of-range value given to a cap constructor.

    `kind` is the cap kind (``URI:CHK`` ...), `field` the part at fault.
    """

    def __init__(self, kind: str, field: str, problem: str, message: str | None = None) -> None:
        super().__init__(message or f"malformed {kind} cap: {field} {problem}")
        self.kind = kind
        self.field = field
        self.problem = problem


class CapConstraintError(BadCapError):
    """A well-formed cap where its context forbids it: a write cap behind a
    ``ro.`` prefix or in a read-only slot, a mutable cap behind ``imm.`` or
    in an immutable directory (Tahoe's MustBeReadonlyError and
    MustBeDeepImmutableError)."""

    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(kind, "context", problem, f"{kind} cap {problem}")


class CapBase:
    """Text form and repr shared by the known cap classes.

    Subclasses set PREFIX and implement _body(); their repr names the
    storage index only, so logging a cap never leaks a key.
    """

    __slots__ = ()
    PREFIX: ClassVar[str]
    is_mutable: ClassVar[bool]
    """Tahoe's is_mutable(): True for read and write caps of mutable files and
    directories, False for immutable caps and for every verify cap."""
    is_readonly: ClassVar[bool]
    """False only for write caps."""
    is_directory: ClassVar[bool]
    is_verifier: ClassVar[bool]
    """True for verify caps (they find and check shares, never read)."""
    format: ClassVar[str]
    """The file format: ``LIT``, ``CHK``, ``SDMF`` or ``MDMF`` (a directory's: of the file holding it)."""
    kind: ClassVar[str]
    """A short stable name: the prefix without ``URI:`` and the colon, lower case
    (``chk``, ``ssk-ro``, ``dir2-mdmf-verifier``)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "PREFIX" in cls.__dict__:
            cls.kind = cls.PREFIX[len("URI:"):-1].lower()

    @property
    def is_mutable_file(self) -> bool:
        """A cap of a mutable file, verify caps included (not of a directory)."""
        return self.format in ("SDMF", "MDMF") and not self.is_directory

    def _body(self) -> str:
        raise NotImplementedError

    @classmethod
    def _from_body(cls, body: str, kind: str) -> Self:
        raise NotImplementedError

    @classmethod
    def from_string(cls, text: str) -> Self:
        """Parse text that must be this kind of cap; raise BadCapError if it is not.

        No ``ro.``/``imm.`` prefixes here: shoal.caps.parse.parse_cap handles those.
        """
        if not isinstance(text, str):
            raise TypeError(f"cap text must be str, not {type(text).__name__}")
        if not text.startswith(cls.PREFIX):
            raise BadCapError(kind_of(cls), "prefix", f"is missing from {text[:30]!r}")
        return cls._from_body(text[len(cls.PREFIX):], kind_of(cls))

    def to_string(self) -> str:
        """The canonical text of the cap."""
        return self.PREFIX + self._body()

    def to_bytes(self) -> bytes:
        """The canonical text as ASCII bytes (how directories and the wire carry caps)."""
        return self.to_string().encode("ascii")

    def _abbrev(self) -> str:
        si = getattr(self, "storage_index", None)
        return "no storage index" if si is None else "si=" + base32.b2a(si)[:10]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._abbrev()}>"


def kind_of(cls: type[CapBase]) -> str:
    """``URI:CHK:`` -> ``URI:CHK`` (how errors name a kind)."""
    return cls.PREFIX[:-1]


# --- attrs validators (they raise BadCapError naming the class's kind) ------

def _kind(instance: object) -> str:
    return kind_of(type(instance)) if isinstance(instance, CapBase) else type(instance).__name__


def _check_bytes(instance: object, attribute: attrs.Attribute[bytes], value: bytes, n: int) -> None:
    if type(value) is not bytes:
        raise TypeError(f"{attribute.name} must be bytes, not {type(value).__name__}")
    if len(value) != n:
        raise BadCapError(_kind(instance), attribute.name, f"must be {n} bytes, not {len(value)}")


def key_bytes(instance: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    """Validator: a 16-byte key or storage index."""
    _check_bytes(instance, attribute, value, KEY_BYTES)


def hash_bytes(instance: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    """Validator: a 32-byte hash."""
    _check_bytes(instance, attribute, value, HASH_BYTES)


def any_bytes(instance: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    if type(value) is not bytes:
        raise TypeError(f"{attribute.name} must be bytes, not {type(value).__name__}")


def _check_int(instance: object, name: str, value: int, low: int, high: int) -> None:
    if type(value) is not int:
        raise TypeError(f"{name} must be int, not {type(value).__name__}")
    if not low <= value <= high:
        raise BadCapError(_kind(instance), name, f"{value} is outside {low}..{high}")


def check_encoding(instance: object, needed: int, total: int, size: int) -> None:
    """1 <= needed <= total <= 256 and 0 <= size < 2**64.

    Tahoe's parser takes any digits here; shoal refuses caps no Tahoe
    could download (k = 0, k > N, N > 256).
    """
    _check_int(instance, "needed", needed, 1, MAX_SHARES)
    _check_int(instance, "total", total, 1, MAX_SHARES)
    if needed > total:
        raise BadCapError(_kind(instance), "needed", f"{needed} exceeds total {total}")
    _check_int(instance, "size", size, 0, MAX_SIZE)


# --- text fields --------------------------------------------------------------

def split_fields(kind: str, body: str, names: tuple[str, ...], *, extensible: bool = False) -> list[str]:
    """Split the text after the prefix into exactly the named fields.

    With extensible=True (MDMF), a ``:`` and anything at all may follow the
    last field and is dropped, as Tahoe's MDMF regexes end in ``(:|$)``.
    """
    n = len(names)
    parts = body.split(":", n) if extensible else body.split(":")
    if extensible and len(parts) > n:
        parts = parts[:n]
    if len(parts) != n:
        raise BadCapError(
            kind, "field count", f"is {len(parts)}, expected {n} ({', '.join(names)})"
        )
    return parts


def decode_b32(kind: str, name: str, text: str, nbytes: int | None) -> bytes:
    """Strict base32 of exactly nbytes bytes (any length if nbytes is None)."""
    if nbytes is not None and len(text) != base32.encoded_length(nbytes):
        raise BadCapError(
            kind, name,
            f"must be {base32.encoded_length(nbytes)} base32 characters, not {len(text)}",
        )
    try:
        return base32.a2b(text)
    except EncodingError:
        raise BadCapError(
            kind, name, f"is not canonical lower-case base32: {text[:60]!r}"
        ) from None


def decode_int(kind: str, name: str, text: str) -> int:
    """ASCII decimal digits; leading zeros are accepted (Tahoe's ``[0-9]+``)."""
    if not _DECIMAL.fullmatch(text):
        raise BadCapError(kind, name, f"is not a decimal number: {text[:30]!r}")
    significant = text.lstrip("0")
    if len(significant) > len(str(MAX_SIZE)):
        raise BadCapError(kind, name, f"has too many digits ({len(significant)})")
    return int(significant or "0")
