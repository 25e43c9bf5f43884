"""The root of shoal's exception tree, and whose fault an error is.

Each package defines its own subclasses; a message always names what failed
(the share, server, offset or key or field) so a user sees one useful line.
Every class says whose fault it is (`fault`): the caller's (a bad cap, name,
range or request: fix the request), the grid's (not enough servers or shares
right now: try later or repair), one storage server's (it refused, lied, is
full, timed out: another server may do), or a bug in shoal. Surfaces (the web
API, the CLI) choose status codes and wording from that, never from class
names or message text.
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
    """The caller asked for something wrong (a mix-in base: the request's fault)."""

    fault = Fault.CALLER


class GridError(ShoalError):
    """The grid as a whole cannot do it now."""

    fault = Fault.GRID


class EncodingError(ShoalError):
    """Malformed base32 text or netstring (whoever sent it: callers that parse
    their own data re-raise as their own kind)."""

    fault = Fault.CALLER
