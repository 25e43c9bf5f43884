"""The root of shoal's exception tree.

Each package defines its own subclasses; a message always names what failed
(the share, server, offset, key or field) so a user sees one useful line.
"""


class ShoalError(Exception):
    """Base class of every error shoal raises on purpose."""


class EncodingError(ShoalError):
    """Malformed base32 text or netstring."""
