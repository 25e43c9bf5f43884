"""Tahoe-LAFS 1.20 capabilities: frozen values for every cap kind, their text, and parsing.

``parse_cap`` reads any cap text (see shoal.caps.parse for the rules),
``format_cap`` writes it; ``mutable_caps_from_private_key`` derives a
mutable file's caps from its RSA key.
"""

from shoal.caps.base import BadCapError, CapConstraintError
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
    wrap_directory,
)
from shoal.caps.literal import LiteralCap
from shoal.caps.mutable import mutable_caps_from_private_key, writekey_and_fingerprint
from shoal.caps.parse import KNOWN_PREFIXES, Cap, FileCap, KnownCap, format_cap, parse_cap
from shoal.caps.ssk import (
    MDMFReadCap,
    MDMFVerifierCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKVerifierCap,
    SSKWriteCap,
)
from shoal.caps.unknown import ALLEGED_IMMUTABLE_PREFIX, ALLEGED_READONLY_PREFIX, UnknownCap

__all__ = [
    "ALLEGED_IMMUTABLE_PREFIX",
    "ALLEGED_READONLY_PREFIX",
    "KNOWN_PREFIXES",
    "BadCapError",
    "CHKCap",
    "CHKDirectoryCap",
    "CHKDirectoryVerifierCap",
    "CHKVerifierCap",
    "Cap",
    "CapConstraintError",
    "DirectoryCap",
    "DirectoryReadCap",
    "DirectoryVerifierCap",
    "DirectoryWriteCap",
    "FileCap",
    "KnownCap",
    "LiteralCap",
    "LiteralDirectoryCap",
    "MDMFDirectoryReadCap",
    "MDMFDirectoryVerifierCap",
    "MDMFDirectoryWriteCap",
    "MDMFReadCap",
    "MDMFVerifierCap",
    "MDMFWriteCap",
    "SSKReadCap",
    "SSKVerifierCap",
    "SSKWriteCap",
    "UnknownCap",
    "format_cap",
    "mutable_caps_from_private_key",
    "parse_cap",
    "wrap_directory",
    "writekey_and_fingerprint",
]
