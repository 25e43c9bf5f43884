"""Errors a storage server raises, each saying whose fault it was.

``BadRequestError`` and its kin are the caller's fault (a malformed argument,
a write the rules forbid); ``NoSpaceError`` and ``ReadOnlyError`` are this
server's policy; ``CorruptShareError`` is damage found on this server's disk.
Faults are as the server sees them: its caller is the client.
Every message names the storage index (base32), the share number and the
offset involved, so a client's log and the server's log point at one place.

The Tahoe-LAFS names a remote adapter may map these to: ``BadWriteEnablerError``,
``DataTooLargeError``, ``ConflictingWriteError`` and ``NoSpace`` (interfaces.py),
``IndexError`` for a lease that cannot be renewed (storage/immutable.py).
"""

import errno

from shoal.errors import (
    CallerError,
    ConflictError,
    Fault,
    NotFoundError,
    NotWritableError,
    ShoalError,
    TooLargeError,
)


class StorageError(ShoalError):
    """Base class of every error shoal.storage raises on purpose."""


class BadRequestError(StorageError, CallerError):
    """A malformed argument: wrong type or length, negative offset, bad share number."""


class UnsupportedTestOperatorError(BadRequestError):
    """A mutable test vector whose operator is not ``b"eq"`` (the only one Tahoe 1.20 keeps)."""


class BadWriteEnablerError(StorageError, NotWritableError):
    """The write enabler presented for a mutable slot is not the one stored in its shares.

    The message ends with Tahoe's sentence "The write enabler was recorded by
    nodeid '<base32>'." so a client can tell a migrated share apart.
    """


class DataTooLargeError(StorageError, TooLargeError):
    """A write past a bucket's allocated size, or a mutable share past the maximum size."""


class ConflictingWriteError(StorageError, ConflictError):
    """An immutable write that disagrees with bytes already written at the same offsets."""


class BucketClosedError(StorageError, CallerError):
    """A write or close on a bucket writer that was already closed or aborted."""


class NoSpaceError(StorageError):
    """The write would exceed reserved_space (free disk) or max_space (bytes used by shares),
    or the disk itself said it is full (ENOSPC, EDQUOT)."""

    fault = Fault.SERVER


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(error: BaseException, what: str) -> "NoSpaceError | None":
    """A NoSpaceError naming `what` when `error` is the disk saying it is full, else None."""
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return NoSpaceError(f"{what}: the disk is full ({error.strerror})")
    return None


class ReadOnlyError(StorageError):
    """The server is read-only: it refuses new share data, immutable and mutable alike."""

    fault = Fault.SERVER


class NoSuchLeaseError(StorageError, NotFoundError):
    """No share of this storage index holds a lease with the presented renew secret."""


class ShareNotFoundError(StorageError):
    """A share that was there when a reader was handed out has since been removed."""

    fault = Fault.SERVER


class CorruptShareError(StorageError):
    """A share file on this server's disk that does not parse as the container it claims to be."""

    fault = Fault.SERVER
