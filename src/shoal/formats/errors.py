"""Errors raised when bytes do not parse as the Tahoe-LAFS format they claim to be.

Every message names the field or offset that failed, so a storage operator or
a downloader's log says which part of which share was bad.
"""

from shoal.errors import Fault, ShoalError


class FormatError(ShoalError):
    """Bytes that do not follow the format they are read as (someone else's fault:
    the server that stored or sent them)."""

    fault = Fault.SERVER


class BadUEBError(FormatError):
    """A URI extension block that is malformed, incomplete or inconsistent."""


class BadLeaseError(FormatError):
    """A lease record of the wrong size or with impossible values."""


class CorruptContainerError(FormatError):
    """A share container (immutable or mutable) whose header or lease area is damaged."""


class UnknownContainerVersionError(CorruptContainerError):
    """A container whose version word or magic is not one this code knows.

    Kept apart from plain corruption because a newer Tahoe may have written it.
    """
