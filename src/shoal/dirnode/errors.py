"""Errors of directory operations. Each says whose fault it was and names the child.

Caller's fault: NoSuchChildError, ExistingChildError, NotDirectoryError,
NotReadableError (a verify cap asked for contents), ReadOnlyDirectoryError, ChildNameError and the ChildCapError family (Tahoe's
CapConstraintError family plus malformed caps). Someone else's fault: a
CorruptDirectoryError (the stored directory does not parse: an
UnrecoverableError, the grid's).
"""

from shoal.errors import (
    CallerError,
    ConflictError,
    NotFoundError,
    NotWritableError,
    ShoalError,
    UnrecoverableError,
)


class DirnodeError(ShoalError):
    """Base of every directory error."""


class CorruptDirectoryError(DirnodeError, UnrecoverableError):
    """The stored contents of a directory do not parse (whoever wrote them erred)."""


class NoSuchChildError(DirnodeError, NotFoundError):
    def __init__(self, name: str, where: str = "") -> None:
        self.name = name
        super().__init__(f"no child named {name!r}" + (f" in {where}" if where else ""))


class ExistingChildError(DirnodeError, ConflictError):
    def __init__(self, name: str, problem: str = "already exists") -> None:
        self.name = name
        super().__init__(f"child {name!r} {problem}")


class NotDirectoryError(DirnodeError, CallerError):
    """A path walks through something that is not a directory."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"{path!r} is not a directory")


class NotReadableError(DirnodeError, CallerError):
    """The contents (or size) of an object were asked of its verify cap, which can
    only find and check its shares."""

    def __init__(self, cap: object) -> None:
        self.cap = cap
        super().__init__(f"{cap!r} is a verify cap: it can check the shares, not read the contents")


class ReadOnlyDirectoryError(DirnodeError, NotWritableError):
    """A write to a directory held through a read-only (or immutable) cap."""


class ChildNameError(DirnodeError, CallerError):
    """A child name UTF-8 cannot hold."""


class BadMetadataError(DirnodeError, CallerError):
    """Link metadata that is not a JSON object."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"child {name!r}: {problem}")


class ChildCapError(DirnodeError, CallerError):
    """A child cap that cannot be stored where it was meant to go (caller's fault)."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"child {name!r}: {problem}")


class BadChildCapError(ChildCapError):
    """A cap of a known kind with a malformed field, or text that is not UTF-8."""


class MustBeImmutableError(ChildCapError):
    """A mutable (or possibly writeable unknown) child of an immutable directory
    (Tahoe's MustBeDeepImmutableError)."""


class MustBeReadonlyError(ChildCapError):
    """A write cap given where only a read cap may go (after ``ro.``)."""


class MustNotBeUnknownRWError(ChildCapError):
    """An unknown cap given only as a write cap: shoal cannot tell whether it grants
    write authority nor diminish it, so it will not store it (as Tahoe)."""
