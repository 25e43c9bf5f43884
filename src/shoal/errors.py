"""The root of shoal's exception tree, and whose fault an error is.

Each package defines its own subclasses; a message always names what failed
(the share, server, offset or key or field) so a user sees one useful line.
Every class says whose fault it is (`fault`): the caller's (a bad cap, name,
range or request: fix the request), the grid's (not enough servers or shares
right now: try later or repair), one storage server's (it refused, lied, is
full, timed out: another server may do), or a bug in shoal. Surfaces (the web
API, the CLI) choose status codes and wording from that, never from class
names or message text.

A few subclasses say more precisely what kind of fault it is, so a surface
can pick a status from the type alone: NotFoundError, ConflictError,
PreconditionFailedError,
NotWritableError, TooLargeError, UnsupportedError, ContradictoryCapError
(the caller's), and
UnrecoverableError, NotEnoughSharesError, GridFullError (the grid's). A
package's error joins one of them by inheriting from it as well as from its
package's base.
"""

import enum
from typing import ClassVar


class Fault(enum.Enum):
    CALLER = "caller"  # the request was wrong; retrying it unchanged fails again
    GRID = "grid"  # the grid cannot do it now (too few servers or shares)
    SERVER = "server"  # one storage server misbehaved or is unavailable
    BUG = "bug"  # shoal itself is wrong


class ShoalError(Exception):
    """Base class of every error shoal raises on purpose."""

    fault: ClassVar[Fault] = Fault.BUG


class CallerError(ShoalError):
    """The caller asked for something wrong: fix the request (the web API: 400)."""

    fault = Fault.CALLER


class GridError(ShoalError):
    """The grid as a whole cannot do it now (too few servers connected, an
    unhappy upload): try later (the web API: 503)."""

    fault = Fault.GRID


class EncodingError(ShoalError):
    """Malformed base32 text or netstring (whoever sent it: callers that parse
    their own data re-raise as their own kind)."""

    fault = Fault.CALLER


# -- what kind of caller fault (the web API answers 404, 409, 403, 413, 501) --


class NotFoundError(CallerError):
    """The request names something that is not there (a child, a handle, a blob)."""


class ConflictError(CallerError):
    """The request conflicts with what is there now (an existing child, another
    writer's newer version, an id already taken)."""


class PreconditionFailedError(ConflictError):
    """A conditional request whose condition no longer holds (the web API's If-Match
    naming a version that is not the current one): 412."""


class NotWritableError(CallerError):
    """A write through a cap or credential that grants only reading."""


class TooLargeError(CallerError):
    """The request carries more bytes than the operation takes."""


class ContradictoryCapError(CallerError):
    """A well-formed cap whose fields contradict what the grid proves about the
    object it names (a CHK cap with the wrong size): nothing can be read through
    it. Tahoe-LAFS 1.20 fails the download (every share fails validation), so the
    web API answers 410 as Tahoe does."""


class UnsupportedError(CallerError):
    """The request asks for something this node does not do (not configured, or
    not implemented by shoal); asking again fails again."""


# -- what kind of grid fault (the web API answers 410, 507, else 503) ----------


class UnrecoverableError(GridError):
    """The object exists (its cap says so) but the grid cannot give back its
    contents: too few good shares, or contents that do not decode."""


class NotEnoughSharesError(UnrecoverableError):
    """Fewer than k good shares of a file could be found; the message says what
    was found where and what failed."""


class GridFullError(GridError):
    """The servers that could take the data refused it for lack of space."""
