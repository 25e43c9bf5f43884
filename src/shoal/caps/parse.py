"""Reading any cap text, as Tahoe-LAFS 1.20's ``uri.from_string`` does.

Rules (what Tahoe does, and where shoal differs):

1. Text may be str or bytes; bytes must be UTF-8 and str must encode as
   UTF-8 (Tahoe encodes str to UTF-8 and would crash on lone surrogates;
   shoal raises BadCapError for both).
2. One alleged prefix is stripped: ``imm.`` (then the cap may be neither
   mutable nor writeable) or else ``ro.`` (then it may not be writeable).
   ``deep_immutable=True`` (a child of an immutable directory) imposes the
   ``imm.`` constraint without a prefix. Only one prefix is removed:
   ``imm.ro.URI:...`` is unknown.
3. The text left is matched against the known prefixes (case-sensitive,
   including the colon after the kind). A known cap that its context forbids
   (a write cap after ``ro.``, a mutable read or write cap after ``imm.``)
   raises CapConstraintError, checked before the fields, as Tahoe does; a
   known cap with a bad field raises BadCapError naming the kind and field.
   Verify caps are allowed in every context. A parsed cap drops the prefix:
   ``ro.URI:CHK:...`` gives a CHKCap.
4. Anything else, including ``""``, ``URI:CHK`` without its colon, and
   ``URI:FUTURE:...``, is an UnknownCap holding the whole original text.
   (Tahoe's ``x-tahoe-future-test-writeable:`` / ``-mutable:`` test kinds
   raise CapConstraintError where Tahoe records the same error.)

Where Tahoe records an error in an ``UnknownURI`` (BadURIError,
MustBeReadonlyError, MustBeDeepImmutableError), shoal raises: BadCapError
or its subclass CapConstraintError. A directory reader that wants Tahoe's
opaque-node behaviour catches BadCapError per entry. No other exception
leaves parse_cap for any str or bytes.
"""

from __future__ import annotations

from typing import cast

from shoal.caps.base import BadCapError, CapBase, CapConstraintError, kind_of
from shoal.caps.chk import CHKCap, CHKVerifierCap
from shoal.caps.directory import (
    CHKDirectoryCap,
    CHKDirectoryVerifierCap,
    DirectoryCap,
    DirectoryReadCap,
    DirectoryVerifierCap,
    DirectoryWriteCap,
    LiteralDirectoryCap,
    MDMFDirectoryReadCap,
    MDMFDirectoryVerifierCap,
    MDMFDirectoryWriteCap,
)
from shoal.caps.literal import LiteralCap
from shoal.caps.ssk import (
    MDMFReadCap,
    MDMFVerifierCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKVerifierCap,
    SSKWriteCap,
)
from shoal.caps.unknown import ALLEGED_IMMUTABLE_PREFIX, ALLEGED_READONLY_PREFIX, UnknownCap

FileCap = (
    LiteralCap | CHKCap | CHKVerifierCap
    | SSKWriteCap | SSKReadCap | SSKVerifierCap
    | MDMFWriteCap | MDMFReadCap | MDMFVerifierCap
)
KnownCap = FileCap | DirectoryCap
Cap = KnownCap | UnknownCap

_KNOWN_CLASSES: tuple[type[CapBase], ...] = (
    LiteralCap, CHKCap, CHKVerifierCap,
    SSKWriteCap, SSKReadCap, SSKVerifierCap,
    MDMFWriteCap, MDMFReadCap, MDMFVerifierCap,
    DirectoryWriteCap, DirectoryReadCap, DirectoryVerifierCap,
    MDMFDirectoryWriteCap, MDMFDirectoryReadCap, MDMFDirectoryVerifierCap,
    CHKDirectoryCap, CHKDirectoryVerifierCap, LiteralDirectoryCap,
)
KNOWN_PREFIXES: dict[str, type[CapBase]] = {cls.PREFIX: cls for cls in _KNOWN_CLASSES}

# Tahoe's hooks for testing how future caps behave in constrained contexts.
_FUTURE_TEST_WRITEABLE = "x-tahoe-future-test-writeable:"
_FUTURE_TEST_MUTABLE = "x-tahoe-future-test-mutable:"

_READONLY_CONTEXT = "used in a read-only context"
_IMMUTABLE_CONTEXT = "used in an immutable context"


def _as_text(raw: str | bytes) -> str:
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadCapError(
                "cap", "text", "is not UTF-8",
                f"cap is not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r})",
            ) from None
    if not isinstance(raw, str):
        raise TypeError(f"a cap is str or bytes, not {type(raw).__name__}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadCapError(
            "cap", "text", "is not encodable",
            f"cap text has a character UTF-8 cannot encode at {e.start}",
        ) from None
    return raw


def _known_class(text: str) -> type[CapBase] | None:
    if not text.startswith("URI:"):
        return None
    end = text.find(":", 4)
    return None if end < 0 else KNOWN_PREFIXES.get(text[: end + 1])


def _classify(text: str, deep_immutable: bool) -> type[CapBase] | None:
    """The known class `text` must parse as, None if it is unknown; raise
    CapConstraintError if its context forbids it."""
    can_be_mutable = can_be_writeable = not deep_immutable
    rest = text
    if rest.startswith(ALLEGED_IMMUTABLE_PREFIX):
        can_be_mutable = can_be_writeable = False
        rest = rest[len(ALLEGED_IMMUTABLE_PREFIX):]
    elif rest.startswith(ALLEGED_READONLY_PREFIX):
        can_be_writeable = False
        rest = rest[len(ALLEGED_READONLY_PREFIX):]

    cls = _known_class(rest)
    if cls is not None:
        kind = kind_of(cls)
        mutable, writeable = cls.is_mutable, not cls.is_readonly
    elif rest.startswith(_FUTURE_TEST_WRITEABLE):
        kind, mutable, writeable = _FUTURE_TEST_WRITEABLE[:-1], False, True
    elif rest.startswith(_FUTURE_TEST_MUTABLE):
        kind, mutable, writeable = _FUTURE_TEST_MUTABLE[:-1], True, False
    else:
        return None
    # Prefer the stronger complaint, as Tahoe does.
    if (mutable or writeable) and not can_be_mutable:
        raise CapConstraintError(kind, _IMMUTABLE_CONTEXT)
    if writeable and not can_be_writeable:
        raise CapConstraintError(kind, _READONLY_CONTEXT)
    return cls


def _strip_alleged(text: str) -> str:
    for prefix in (ALLEGED_IMMUTABLE_PREFIX, ALLEGED_READONLY_PREFIX):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def parse_cap(text: str | bytes, *, deep_immutable: bool = False) -> Cap:
    """Read cap text (see the module docstring for the rules).

    Returns a known cap, or an UnknownCap for an unrecognised kind; raises
    BadCapError (CapConstraintError for a forbidden context) otherwise.
    """
    s = _as_text(text)
    cls = _classify(s, deep_immutable)
    if cls is None:
        return UnknownCap(s)
    return cast(KnownCap, cls.from_string(_strip_alleged(s)))


def format_cap(cap: Cap) -> str:
    """The text of a cap: canonical for known kinds, as given for unknown ones."""
    return cap.to_string()


def check_unknown(text: str) -> None:
    """Raise BadCapError unless parse_cap(text) would be UnknownCap(text).

    (UnknownCap's validator: an opaque cap must not be a readable one.)
    """
    _as_text(text)
    cls = _classify(text, False)
    if cls is not None:
        raise BadCapError(kind_of(cls), "kind", "is known; parse it instead of keeping it opaque")
