"""Errors of mutable files; each says whose fault it was and names the file or share."""

from shoal import errors
from shoal.errors import (
    CallerError,
    ConflictError,
    Fault,
    GridError,
    NotWritableError,
    PreconditionFailedError,
    ShoalError,
)


class MutableError(ShoalError):
    """Base class of every mutable-file error."""


class MutableUsageError(MutableError, CallerError):
    """A request no mutable file can satisfy: bad encoding parameters, a cap
    that is not a mutable file's, reading through a verify cap, an offset
    outside the file."""


class UncoordinatedWriteError(MutableError, ConflictError):
    """Another writer changed the file while we were writing it (a test-and-set
    write failed, or a version we did not expect appeared). Nobody's bug: two
    writers without a shared lock; re-read and try again."""


class VersionChangedError(MutableError, PreconditionFailedError):
    """A conditional overwrite named a version (its tag) that is no longer the file's
    current one: another writer got there first. Re-read, then decide again."""


class NotEnoughSharesError(MutableError, errors.NotEnoughSharesError):
    """Fewer than k good shares of any version could be found (the grid's fault:
    servers missing, or their shares corrupt)."""


class NotEnoughServersError(MutableError, GridError):
    """Too few servers accepted shares to publish a recoverable version."""


class MutableFullError(NotEnoughServersError, errors.GridFullError):
    """Too few servers accepted shares because the others said they had no room
    (and none failed in any other way): the grid is full (the web API: 507)."""


class ReadOnlyError(MutableError, NotWritableError):
    """A write through a read-only or verify cap (the caller's mistake)."""


class CorruptShareError(MutableError):
    """One share failed a check (signature, hash chain, block hash, private key):
    the server holding it stored or served bad bytes."""

    fault = Fault.SERVER

    def __init__(self, shnum: int, server: str, reason: str) -> None:
        super().__init__(f"share {shnum} on server {server}: {reason}")
        self.shnum = shnum
        self.server = server
        self.reason = reason
