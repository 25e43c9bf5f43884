"""Lease records of Tahoe-LAFS 1.20 storage containers.

A lease asks a server to keep a share until its expiration time. Two on-disk
records exist, all fields big-endian:

    immutable container, 72 bytes: owner (4), renew secret (32),
                                    cancel secret (32), expiration (4)
    mutable container, 92 bytes:    owner (4), expiration (4), renew secret (32),
                                    cancel secret (32), nodeid (20)

Expiration is in whole seconds since the epoch. In a mutable slot an owner
number of 0 marks an empty slot.

Two schemas decide what the secret fields hold. Version 1 containers store
the secrets the client sent. Version 2 containers store BLAKE2b-256 digests
of them (unkeyed, no salt or personalisation: what PyNaCl's
``blake2b(secret, digest_size=32)`` computes), so that reading a share file
does not reveal a secret that could renew or cancel the lease. A presented
secret is checked by hashing it the same way and comparing in constant time.
"""

import enum
import hashlib
import hmac
import struct
from collections.abc import Callable

import attrs

from shoal.formats.errors import BadLeaseError

SECRET_LENGTH = 32
NODEID_LENGTH = 20
IMMUTABLE_LEASE_SIZE = 72
MUTABLE_LEASE_SIZE = 92
MAX_UINT32 = 2**32 - 1

_IMMUTABLE = struct.Struct(">L32s32sL")
_MUTABLE = struct.Struct(">LL32s32s20s")
assert _IMMUTABLE.size == IMMUTABLE_LEASE_SIZE
assert _MUTABLE.size == MUTABLE_LEASE_SIZE


class LeaseSchema(enum.Enum):
    """How a container stores lease secrets; the value is the container version."""

    PLAINTEXT = 1
    HASHED = 2


def hash_lease_secret(secret: bytes) -> bytes:
    """The form a version-2 container stores a renew or cancel secret in."""
    if not isinstance(secret, bytes):
        raise TypeError("lease secrets are bytes")
    return hashlib.blake2b(secret, digest_size=SECRET_LENGTH).digest()


def _uint32(name: str) -> Callable[[object, object, int], None]:
    def check(_instance: object, _attribute: object, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"lease {name} must be an int, not {type(value).__name__}")
        if not 0 <= value <= MAX_UINT32:
            raise ValueError(f"lease {name} {value} does not fit in 32 unsigned bits")

    return check


def _sized_bytes(name: str, length: int) -> Callable[[object, object, bytes], None]:
    def check(_instance: object, _attribute: object, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"lease {name} must be bytes, not {type(value).__name__}")
        if len(value) != length:
            raise ValueError(f"lease {name} must be {length} bytes, not {len(value)}")

    return check


def _optional_nodeid(_instance: object, _attribute: object, value: bytes | None) -> None:
    if value is not None:
        _sized_bytes("nodeid", NODEID_LENGTH)(_instance, _attribute, value)


@attrs.frozen
class LeaseInfo:
    """One lease as held in memory.

    ``hashed`` says whether ``renew_secret`` and ``cancel_secret`` are the
    client's secrets (False) or their BLAKE2b-256 digests as a version-2
    container stores them (True). ``nodeid`` is the 20-byte id of the server
    that accepted the lease; only mutable records carry it.
    """

    owner_num: int = attrs.field(validator=_uint32("owner number"))
    renew_secret: bytes = attrs.field(validator=_sized_bytes("renew secret", SECRET_LENGTH), repr=False)
    cancel_secret: bytes = attrs.field(validator=_sized_bytes("cancel secret", SECRET_LENGTH), repr=False)
    expiration_time: int = attrs.field(validator=_uint32("expiration time"))
    nodeid: bytes | None = attrs.field(default=None, validator=_optional_nodeid)
    hashed: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def renewed(self, expiration_time: int) -> "LeaseInfo":
        """The same lease with a new expiration time (secrets untouched)."""
        return attrs.evolve(self, expiration_time=expiration_time)

    def with_hashed_secrets(self) -> "LeaseInfo":
        """This lease as a version-2 container stores it.

        Hashing twice would make the lease unmatchable, so an already hashed
        lease is refused.
        """
        if self.hashed:
            raise ValueError("lease secrets are already hashed")
        return attrs.evolve(
            self,
            renew_secret=hash_lease_secret(self.renew_secret),
            cancel_secret=hash_lease_secret(self.cancel_secret),
            hashed=True,
        )

    def for_schema(self, schema: LeaseSchema) -> "LeaseInfo":
        """This lease in the form ``schema`` stores: hashed if it must be.

        A hashed lease cannot go into a plaintext container: the real secrets
        are gone.
        """
        if schema is LeaseSchema.HASHED:
            return self if self.hashed else self.with_hashed_secrets()
        if self.hashed:
            raise ValueError("a plaintext (v1) container cannot hold a lease with hashed secrets")
        return self

    def matches_renew_secret(self, candidate: bytes) -> bool:
        """Whether a client's renew secret is this lease's, in constant time."""
        return _matches(self.renew_secret, candidate, self.hashed)

    def matches_cancel_secret(self, candidate: bytes) -> bool:
        """Whether a client's cancel secret is this lease's, in constant time."""
        return _matches(self.cancel_secret, candidate, self.hashed)


def _matches(stored: bytes, candidate: bytes, hashed: bool) -> bool:
    if not isinstance(candidate, bytes):
        raise TypeError("lease secrets are bytes")
    presented = hash_lease_secret(candidate) if hashed else candidate
    return hmac.compare_digest(stored, presented)


def pack_immutable_lease(lease: LeaseInfo, schema: LeaseSchema) -> bytes:
    """The 72-byte record for an immutable container of ``schema``.

    Plaintext leases are hashed on the way into a hashed container; the nodeid
    is not stored.
    """
    stored = lease.for_schema(schema)
    return _IMMUTABLE.pack(
        stored.owner_num, stored.renew_secret, stored.cancel_secret, stored.expiration_time
    )


def unpack_immutable_lease(data: bytes, schema: LeaseSchema) -> LeaseInfo:
    """Read a 72-byte immutable lease record."""
    if len(data) != IMMUTABLE_LEASE_SIZE:
        raise BadLeaseError(
            f"immutable lease record is {len(data)} bytes, not {IMMUTABLE_LEASE_SIZE}"
        )
    owner, renew, cancel, expiration = _IMMUTABLE.unpack(data)
    return LeaseInfo(owner, renew, cancel, expiration, None, schema is LeaseSchema.HASHED)


def pack_mutable_lease(lease: LeaseInfo, schema: LeaseSchema) -> bytes:
    """The 92-byte record for a mutable container of ``schema``; needs a nodeid."""
    if lease.nodeid is None:
        raise ValueError("a mutable lease record needs the accepting server's nodeid")
    stored = lease.for_schema(schema)
    return _MUTABLE.pack(
        stored.owner_num,
        stored.expiration_time,
        stored.renew_secret,
        stored.cancel_secret,
        stored.nodeid,
    )


def unpack_mutable_lease(data: bytes, schema: LeaseSchema) -> LeaseInfo:
    """Read a 92-byte mutable lease record (owner 0 is returned as is)."""
    if len(data) != MUTABLE_LEASE_SIZE:
        raise BadLeaseError(f"mutable lease record is {len(data)} bytes, not {MUTABLE_LEASE_SIZE}")
    owner, expiration, renew, cancel, nodeid = _MUTABLE.unpack(data)
    return LeaseInfo(owner, renew, cancel, expiration, nodeid, schema is LeaseSchema.HASHED)
