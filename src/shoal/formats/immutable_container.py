"""The Tahoe-LAFS 1.20 immutable share container (the file ``shares/<pp>/<SI>/<shnum>``).

    0x00  container version, 4 bytes big-endian: 1 or 2 (new files: 2)
    0x04  legacy share-data length, 4 bytes: the size allocated for the share,
          saturated at 2**32-1; written for servers older than Tahoe 1.3.0,
          never used when reading
    0x08  lease count, 4 bytes
    0x0c  share data (see share_layout), then the leases, 72 bytes each

A reader finds the leases from the end: they are the last count*72 bytes of
the file, and the share data is everything between the header and them. A
server creating a share writes the header alone and places the first lease
at 0x0c + allocated size, so the file grows to exactly data + leases.

Version 1 stores lease secrets as sent; version 2 stores their BLAKE2b-256
digests (see lease). Nothing here touches a file: these build and parse the
bytes a storage server reads and writes.
"""

from collections.abc import Iterable

import attrs

from shoal.formats.errors import CorruptContainerError, UnknownContainerVersionError
from shoal.formats.lease import (
    IMMUTABLE_LEASE_SIZE,
    MAX_UINT32,
    LeaseInfo,
    LeaseSchema,
    pack_immutable_lease,
    unpack_immutable_lease,
)

HEADER_SIZE = 12
DATA_OFFSET = 0x0C
LEASE_COUNT_OFFSET = 0x08
LEASE_SIZE = IMMUTABLE_LEASE_SIZE
CURRENT_VERSION = 2
VERSIONS = (1, 2)

_SCHEMAS = {1: LeaseSchema.PLAINTEXT, 2: LeaseSchema.HASHED}


def schema_for_version(version: int) -> LeaseSchema:
    """The lease schema of an immutable container version."""
    try:
        return _SCHEMAS[version]
    except KeyError:
        raise UnknownContainerVersionError(
            f"immutable container version {version} at offset 0 is not one of {VERSIONS}"
        ) from None


def _version(_instance: object, _attribute: object, value: int) -> None:
    if value not in VERSIONS:
        raise ValueError(f"immutable container version must be one of {VERSIONS}, not {value!r}")


def _uint32(_instance: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_UINT32:
        raise ValueError(f"{attribute.name} must be an int in [0, 2**32), not {value!r}")


@attrs.frozen
class ImmutableHeader:
    """The 12-byte header of an immutable container."""

    version: int = attrs.field(validator=_version)
    legacy_data_length: int = attrs.field(validator=_uint32)
    lease_count: int = attrs.field(validator=_uint32)

    @classmethod
    def for_new_share(cls, allocated_size: int, version: int = CURRENT_VERSION) -> "ImmutableHeader":
        """The header a server writes when it creates a share of this allocated size."""
        if allocated_size < 0:
            raise ValueError(f"allocated size must not be negative, got {allocated_size}")
        return cls(version, min(allocated_size, MAX_UINT32), 0)

    @classmethod
    def from_bytes(cls, data: bytes) -> "ImmutableHeader":
        """Parse the header from the first 12 bytes of a container."""
        if len(data) < HEADER_SIZE:
            raise CorruptContainerError(
                f"immutable container header needs {HEADER_SIZE} bytes, got {len(data)}"
            )
        version = int.from_bytes(data[0:4], "big")
        schema_for_version(version)
        return cls(
            version,
            int.from_bytes(data[4:8], "big"),
            int.from_bytes(data[8:12], "big"),
        )

    def to_bytes(self) -> bytes:
        return b"".join(
            field.to_bytes(4, "big")
            for field in (self.version, self.legacy_data_length, self.lease_count)
        )

    @property
    def lease_schema(self) -> LeaseSchema:
        return schema_for_version(self.version)

    def with_lease_count(self, lease_count: int) -> "ImmutableHeader":
        return attrs.evolve(self, lease_count=lease_count)

    def lease_offset(self, file_size: int) -> int:
        """Where the leases of a container file of ``file_size`` bytes start."""
        offset = file_size - self.lease_count * LEASE_SIZE
        if offset < DATA_OFFSET:
            raise CorruptContainerError(
                f"immutable container of {file_size} bytes cannot hold "
                f"{self.lease_count} leases of {LEASE_SIZE} bytes after its header"
            )
        return offset

    def data_length(self, file_size: int) -> int:
        """How many bytes of share data a container file of ``file_size`` bytes holds."""
        return self.lease_offset(file_size) - DATA_OFFSET

    def lease_record_offset(self, file_size: int, index: int) -> int:
        """Where lease number ``index`` (0-based, < lease_count) starts in the file."""
        if not 0 <= index < self.lease_count:
            raise IndexError(f"lease {index} of a container holding {self.lease_count}")
        return self.lease_offset(file_size) + index * LEASE_SIZE


def pack_leases(leases: Iterable[LeaseInfo], schema: LeaseSchema) -> bytes:
    """The lease area: each lease's 72-byte record, in order."""
    return b"".join(pack_immutable_lease(lease, schema) for lease in leases)


def unpack_leases(data: bytes, schema: LeaseSchema) -> list[LeaseInfo]:
    """Read a lease area (from the lease offset to the end of the file)."""
    if len(data) % LEASE_SIZE:
        raise CorruptContainerError(
            f"immutable lease area of {len(data)} bytes is not whole {LEASE_SIZE}-byte records"
        )
    return [
        unpack_immutable_lease(data[at : at + LEASE_SIZE], schema)
        for at in range(0, len(data), LEASE_SIZE)
    ]
