"""What a directory child is, given the caps offered for it: Tahoe-LAFS 1.20's
``NodeMaker.create_from_cap`` and ``UnknownNode`` rules, and its metadata update.

A child is offered as (write cap, read cap), either may be missing. The larger one
is parsed (in an immutable directory with the deep-immutable constraint):

* A cap of a kind Tahoe makes a node for (LIT, CHK, SSK/MDMF write and read caps,
  directory write and read caps, DIR2-CHK, DIR2-LIT) becomes that node: its write
  cap (None if read-only) and its read cap, canonical text, prefixes dropped.
  shoal also takes a CHK verify cap as a read-only node (Tahoe makes a node that
  cannot be stored in a directory at all).
* Anything else (unknown kinds, malformed caps, caps its context forbids, and
  the verify caps of mutable files and of directories) is an *unknown* child,
  kept as text: an unknown write cap is kept only next to a read cap; a lone
  unknown cap must carry ``ro.`` or ``imm.`` and then is a read cap; read caps
  get ``ro.`` (mutable directory) or ``imm.`` (immutable directory) if they do not
  already carry one. The read cap must parse in its context.

`update_metadata` is Tahoe's rule for a link's metadata when a child is added
or replaced: given metadata replaces the old except the ``tahoe`` dict;
``tahoe.linkcrtime`` is kept (or taken from a pre-1.4 ``ctime``), and
``tahoe.linkmotime`` is now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from shoal.caps import (
    ALLEGED_IMMUTABLE_PREFIX,
    ALLEGED_READONLY_PREFIX,
    BadCapError,
    CapConstraintError,
    CHKCap,
    CHKDirectoryCap,
    CHKVerifierCap,
    DirectoryReadCap,
    DirectoryWriteCap,
    LiteralCap,
    LiteralDirectoryCap,
    MDMFDirectoryReadCap,
    MDMFDirectoryWriteCap,
    MDMFReadCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKWriteCap,
    parse_cap,
)
from shoal.caps.parse import Cap, KnownCap
from shoal.dirnode.errors import (
    BadChildCapError,
    ChildCapError,
    MustBeImmutableError,
    MustBeReadonlyError,
    MustNotBeUnknownRWError,
)

# Cap kinds Tahoe's node maker builds a node for (the rest are unknown children).
NODE_KINDS: tuple[type, ...] = (
    LiteralCap, CHKCap, CHKVerifierCap,
    SSKWriteCap, SSKReadCap, MDMFWriteCap, MDMFReadCap,
    DirectoryWriteCap, DirectoryReadCap, MDMFDirectoryWriteCap, MDMFDirectoryReadCap,
    CHKDirectoryCap, LiteralDirectoryCap,
)
DIRECTORY_KINDS: tuple[type, ...] = (
    DirectoryWriteCap, DirectoryReadCap, MDMFDirectoryWriteCap, MDMFDirectoryReadCap,
    CHKDirectoryCap, LiteralDirectoryCap,
)
_IMMUTABLE_CONTEXT = "used in an immutable context"


@attrs.frozen
class Child:
    """A child's caps as a directory stores and reports them (Tahoe's node
    ``get_write_uri()`` / ``get_readonly_uri()``); `known` is the parsed cap of a
    known node, None for an unknown child."""

    write: str | None
    read: str | None
    known: KnownCap | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def is_unknown(self) -> bool:
        return self.known is None

    @property
    def is_directory(self) -> bool:
        return isinstance(self.known, DIRECTORY_KINDS)

    def allowed_in_immutable_directory(self) -> bool:
        if self.known is not None:
            return not self.known.is_mutable
        return self.write is None


@attrs.frozen
class Entry:
    """A directory entry as listed: the name (NFC), the child's write cap (None
    when it has none or the directory is read-only), its read cap, and the link
    metadata. Unknown caps keep their ``ro.``/``imm.`` prefix."""

    name: str
    rw_cap: str | None
    ro_cap: str | None
    metadata: dict[str, Any]

    @property
    def cap(self) -> Cap | None:
        """The strongest cap held (write, else read), parsed; None if neither."""
        for text in (self.rw_cap, self.ro_cap):
            if text:
                try:
                    return parse_cap(text)
                except BadCapError:
                    continue  # a malformed cap kept as an unknown child
        return None

    @property
    def is_directory(self) -> bool:
        return isinstance(self.cap, DIRECTORY_KINDS)

    @property
    def is_unknown(self) -> bool:
        return not isinstance(self.cap, NODE_KINDS)


def _constraint_error(name: str, e: CapConstraintError) -> ChildCapError:
    if e.problem == _IMMUTABLE_CONTEXT:
        return MustBeImmutableError(name, str(e))
    return MustBeReadonlyError(name, str(e))


def _parse(text: str, deep_immutable: bool, name: str) -> Cap:
    try:
        return parse_cap(text, deep_immutable=deep_immutable)
    except CapConstraintError as e:
        raise _constraint_error(name, e) from None
    except BadCapError as e:
        raise BadChildCapError(name, str(e)) from None


def _has_prefix(text: str) -> bool:
    return text.startswith(ALLEGED_READONLY_PREFIX) or text.startswith(ALLEGED_IMMUTABLE_PREFIX)


def _unknown(write: str | None, read: str | None, deep_immutable: bool, name: str) -> Child:
    """Tahoe's UnknownNode: which text is kept in which slot, or the error it records."""
    if write:
        if deep_immutable:
            if write.startswith(ALLEGED_IMMUTABLE_PREFIX) and not read:
                pass  # an immutable cap given as the only cap: it is the read cap
            elif not read:
                raise MustNotBeUnknownRWError(name, "cannot attach an unknown write cap as an immutable child")
            else:
                raise MustBeImmutableError(name, "cannot attach an unknown write cap as an immutable child")
        if not read:
            if not _has_prefix(write):
                raise MustNotBeUnknownRWError(
                    name, f"cannot attach unknown cap {write[:40]!r} as a write cap without a read cap"
                )
            write, read = None, write
        elif read.startswith(ALLEGED_IMMUTABLE_PREFIX):
            raise MustBeImmutableError(name, "a write cap next to an imm. read cap")
    if read:
        _parse(read, deep_immutable, name)  # raises for a bad or forbidden read cap
    if deep_immutable:
        if not read:
            return Child(None, None)
        if read.startswith(ALLEGED_IMMUTABLE_PREFIX):
            return Child(None, read)
        if read.startswith(ALLEGED_READONLY_PREFIX):
            return Child(None, ALLEGED_IMMUTABLE_PREFIX + read[len(ALLEGED_READONLY_PREFIX):])
        return Child(None, ALLEGED_IMMUTABLE_PREFIX + read)
    if read and not _has_prefix(read):
        read = ALLEGED_READONLY_PREFIX + read
    return Child(write or None, read or None)


def resolve_child(write: str | None, read: str | None, *, deep_immutable: bool = False,
                  name: str = "<unknown name>") -> Child:
    """The child Tahoe would make of these caps (see the module docstring).

    Raises a ChildCapError subclass where Tahoe's node records an error:
    MustBeImmutableError, MustBeReadonlyError, MustNotBeUnknownRWError (Tahoe's
    CapConstraintError family) or BadChildCapError (a malformed read cap).
    """
    for text in (write, read):
        if text is not None and not isinstance(text, str):
            raise TypeError(f"child {name!r}: caps are str, not {type(text).__name__}")
    big = write or read
    if not big:
        return Child(None, None)
    try:
        cap: Cap | None = parse_cap(big, deep_immutable=deep_immutable)
    except BadCapError:
        cap = None
    if isinstance(cap, NODE_KINDS):
        known: KnownCap = cap  # type: ignore[assignment]
        text = known.to_string()
        if known.is_readonly:
            return Child(None, text, known)
        return Child(text, known.readonly().to_string(), known)
    return _unknown(write or None, read or None, deep_immutable, name)


def readonly_child(child: Child, *, deep_immutable: bool, name: str) -> Child:
    """The child a ``no-write`` link holds: the read-only form (Tahoe's _create_readonly_node)."""
    if child.known is not None and child.known.is_readonly:
        return child
    return resolve_child(None, child.read, deep_immutable=deep_immutable, name=name)


def update_metadata(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, now: float
) -> dict[str, Any]:
    """The metadata of a link being added (`old` None) or replaced, as Tahoe 1.20 writes
    it; key order matters for the packed bytes and follows Tahoe's. Neither argument
    is modified. A ``tahoe`` value that is not an object is replaced (Tahoe crashes)."""
    metadata: dict[str, Any] = {} if old is None else dict(old)
    old_ctime = metadata.get("ctime")
    if new is not None:
        replaced = {k: v for k, v in new.items() if k != "tahoe"}
        if "tahoe" in metadata:
            replaced["tahoe"] = metadata["tahoe"]
        metadata = replaced
    system = metadata.get("tahoe")
    system = dict(system) if isinstance(system, dict) else {}
    if "linkcrtime" not in system:
        # Before Tahoe 1.4 'ctime' meant what 'tahoe.linkcrtime' means now.
        system["linkcrtime"] = old_ctime if old_ctime is not None else now
    system["linkmotime"] = now
    metadata["tahoe"] = system
    return metadata
