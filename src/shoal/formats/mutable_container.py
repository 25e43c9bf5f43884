"""The Tahoe-LAFS 1.20 mutable slot container (one file per share of a mutable file).

    offset size
    0      32   magic: b"Tahoe mutable container v1\\n" + 75 09 44 03 8e (v1), or
                b"Tahoe mutable container v2\\n" + 5 bytes of tagged hash (v2)
    32     20   nodeid of the server that recorded the write enabler
    52     32   write enabler
    84     8    data length (share data actually present)
    92     8    offset of the extra-lease count (after the data)
    100    368  four lease slots of 92 bytes; owner 0 marks an empty slot
    468    -    share data
    (x)    4    count of extra leases, at the offset stored at 92
    x+4    -    extra leases, 92 bytes each

All integers are big-endian. A new container is these 472 bytes with zero
data length, all four slots zero and the extra-lease count at 468. The
container never shrinks: the extra-lease area moves to the end of the data
only when the data grows past it, so the bytes between the data's end and
the extra-lease count may be stale. Version 1 stores lease secrets as sent,
version 2 their BLAKE2b-256 digests (see lease).

Pure byte building and parsing; the storage server does the file I/O.
"""

from collections.abc import Sequence

import attrs

from shoal.crypto.hashes import mutable_container_magic_suffix
from shoal.formats.errors import CorruptContainerError, UnknownContainerVersionError
from shoal.formats.lease import (
    MUTABLE_LEASE_SIZE,
    NODEID_LENGTH,
    SECRET_LENGTH,
    LeaseInfo,
    LeaseSchema,
    pack_mutable_lease,
    unpack_mutable_lease,
)


def _magic(version: int) -> bytes:
    text = b"Tahoe mutable container v%d\n" % version
    if version == 1:
        return text + b"\x75\x09\x44\x03\x8e"  # fixed bytes of every v1 container
    return text + mutable_container_magic_suffix(text)


MAGIC_SIZE = 32
MAGIC_V1 = _magic(1)
MAGIC_V2 = _magic(2)
CURRENT_VERSION = 2
VERSIONS = (1, 2)
_MAGICS = {1: MAGIC_V1, 2: MAGIC_V2}
_SCHEMAS = {1: LeaseSchema.PLAINTEXT, 2: LeaseSchema.HASHED}

WRITE_ENABLER_NODEID_OFFSET = 32
WRITE_ENABLER_OFFSET = 52
DATA_LENGTH_OFFSET = 84
EXTRA_LEASE_POINTER_OFFSET = 92  # where the offset of the extra-lease count is stored
HEADER_SIZE = 100  # the fixed fields, without the lease slots
LEASE_SIZE = MUTABLE_LEASE_SIZE
LEASE_SLOTS_OFFSET = HEADER_SIZE
LEASE_SLOT_COUNT = 4
DATA_OFFSET = LEASE_SLOTS_OFFSET + LEASE_SLOT_COUNT * LEASE_SIZE
EXTRA_LEASE_COUNT_SIZE = 4
NEW_CONTAINER_SIZE = DATA_OFFSET + EXTRA_LEASE_COUNT_SIZE
MAX_DATA_LENGTH = 69_105 * 1000**4  # Tahoe's MAX_MUTABLE_SHARE_SIZE, "69105 TB"
EMPTY_LEASE_SLOT = bytes(LEASE_SIZE)
assert DATA_OFFSET == 468


def version_from_magic(prefix: bytes) -> int:
    """The container version whose magic starts ``prefix``."""
    for version, magic in _MAGICS.items():
        if prefix[:MAGIC_SIZE] == magic:
            return version
    raise UnknownContainerVersionError(
        f"mutable container magic at offset 0 is unknown: {bytes(prefix[:MAGIC_SIZE])!r}"
    )


def is_mutable_container(prefix: bytes) -> bool:
    """Whether a share file starting with ``prefix`` is a mutable container.

    A storage server tells mutable from immutable shares this way.
    """
    return any(prefix[:MAGIC_SIZE] == magic for magic in _MAGICS.values())


def schema_for_version(version: int) -> LeaseSchema:
    """The lease schema of a mutable container version."""
    try:
        return _SCHEMAS[version]
    except KeyError:
        raise UnknownContainerVersionError(
            f"mutable container version {version} is not one of {VERSIONS}"
        ) from None


def _check_header(version: int, nodeid: bytes, write_enabler: bytes, data_length: int,
                  extra_lease_offset: int) -> str | None:
    """Why these header fields are impossible, or None."""
    if version not in VERSIONS:
        return f"version {version!r} is not one of {VERSIONS}"
    if not isinstance(nodeid, bytes) or len(nodeid) != NODEID_LENGTH:
        return f"write-enabler nodeid (offset {WRITE_ENABLER_NODEID_OFFSET}) must be {NODEID_LENGTH} bytes"
    if not isinstance(write_enabler, bytes) or len(write_enabler) != SECRET_LENGTH:
        return f"write enabler (offset {WRITE_ENABLER_OFFSET}) must be {SECRET_LENGTH} bytes"
    if not 0 <= data_length <= MAX_DATA_LENGTH:
        return (
            f"data length {data_length} (offset {DATA_LENGTH_OFFSET}) "
            f"exceeds the maximum {MAX_DATA_LENGTH}"
        )
    if not DATA_OFFSET + data_length <= extra_lease_offset <= DATA_OFFSET + MAX_DATA_LENGTH:
        return (
            f"extra-lease offset {extra_lease_offset} (offset {EXTRA_LEASE_POINTER_OFFSET}) "
            f"is not between the end of the data ({DATA_OFFSET + data_length}) "
            f"and the largest container"
        )
    return None


@attrs.frozen
class MutableHeader:
    """The fixed 100 bytes at the start of a mutable container."""

    version: int
    write_enabler_nodeid: bytes
    write_enabler: bytes = attrs.field(repr=False)
    data_length: int = 0
    extra_lease_offset: int = DATA_OFFSET

    def __attrs_post_init__(self) -> None:
        problem = _check_header(
            self.version,
            self.write_enabler_nodeid,
            self.write_enabler,
            self.data_length,
            self.extra_lease_offset,
        )
        if problem is not None:
            raise ValueError(f"mutable container header: {problem}")

    @classmethod
    def from_bytes(cls, data: bytes) -> "MutableHeader":
        """Parse the first 100 bytes of a mutable container."""
        if len(data) < HEADER_SIZE:
            raise CorruptContainerError(
                f"mutable container header needs {HEADER_SIZE} bytes, got {len(data)}"
            )
        version = version_from_magic(data)
        nodeid = bytes(data[WRITE_ENABLER_NODEID_OFFSET:WRITE_ENABLER_OFFSET])
        write_enabler = bytes(data[WRITE_ENABLER_OFFSET:DATA_LENGTH_OFFSET])
        data_length = int.from_bytes(data[DATA_LENGTH_OFFSET:EXTRA_LEASE_POINTER_OFFSET], "big")
        extra_lease_offset = int.from_bytes(data[EXTRA_LEASE_POINTER_OFFSET:HEADER_SIZE], "big")
        problem = _check_header(version, nodeid, write_enabler, data_length, extra_lease_offset)
        if problem is not None:
            raise CorruptContainerError(f"mutable container header: {problem}")
        return cls(version, nodeid, write_enabler, data_length, extra_lease_offset)

    def to_bytes(self) -> bytes:
        return b"".join(
            [
                _MAGICS[self.version],
                self.write_enabler_nodeid,
                self.write_enabler,
                self.data_length.to_bytes(8, "big"),
                self.extra_lease_offset.to_bytes(8, "big"),
            ]
        )

    @property
    def lease_schema(self) -> LeaseSchema:
        return _SCHEMAS[self.version]

    def with_data_length(self, data_length: int) -> "MutableHeader":
        return attrs.evolve(self, data_length=data_length)

    def with_extra_lease_offset(self, extra_lease_offset: int) -> "MutableHeader":
        return attrs.evolve(self, extra_lease_offset=extra_lease_offset)


def extra_lease_area_end(extra_lease_offset: int, extra_lease_count: int) -> int:
    """Where an extra-lease area of ``extra_lease_count`` leases ends: the container's size."""
    return extra_lease_offset + EXTRA_LEASE_COUNT_SIZE + extra_lease_count * LEASE_SIZE


def new_container(
    write_enabler_nodeid: bytes, write_enabler: bytes, version: int = CURRENT_VERSION
) -> bytes:
    """The 472 bytes of a freshly created, empty container."""
    header = MutableHeader(version, write_enabler_nodeid, write_enabler)
    return header.to_bytes() + EMPTY_LEASE_SLOT * LEASE_SLOT_COUNT + bytes(EXTRA_LEASE_COUNT_SIZE)


def lease_slot_offset(index: int, extra_lease_offset: int) -> int:
    """Where lease slot ``index`` starts: 0-3 are in the header, 4 on are extra leases."""
    if index < 0:
        raise IndexError(f"lease slot {index}")
    if index < LEASE_SLOT_COUNT:
        return LEASE_SLOTS_OFFSET + index * LEASE_SIZE
    return extra_lease_offset + EXTRA_LEASE_COUNT_SIZE + (index - LEASE_SLOT_COUNT) * LEASE_SIZE


def pack_lease_slot(lease: LeaseInfo | None, schema: LeaseSchema) -> bytes:
    """One 92-byte slot: the lease's record, or zeros for an empty slot."""
    if lease is None:
        return EMPTY_LEASE_SLOT
    if lease.owner_num == 0:
        raise ValueError("owner number 0 marks an empty lease slot; a lease needs another")
    return pack_mutable_lease(lease, schema)


def unpack_lease_slot(data: bytes, schema: LeaseSchema) -> LeaseInfo | None:
    """Read one 92-byte slot; an owner number of 0 means the slot is empty."""
    lease = unpack_mutable_lease(data, schema)
    return None if lease.owner_num == 0 else lease


def pack_lease_slots(slots: Sequence[LeaseInfo | None], schema: LeaseSchema) -> bytes:
    """The four header slots (368 bytes at offset 100)."""
    if len(slots) != LEASE_SLOT_COUNT:
        raise ValueError(f"a mutable container has {LEASE_SLOT_COUNT} lease slots, got {len(slots)}")
    return b"".join(pack_lease_slot(slot, schema) for slot in slots)


def unpack_lease_slots(data: bytes, schema: LeaseSchema) -> list[LeaseInfo | None]:
    """Read the four header slots from the 368 bytes at offset 100."""
    size = LEASE_SLOT_COUNT * LEASE_SIZE
    if len(data) != size:
        raise CorruptContainerError(
            f"mutable lease slots at offset {LEASE_SLOTS_OFFSET} are {len(data)} bytes, not {size}"
        )
    return _unpack_slots(data, 0, LEASE_SLOT_COUNT, schema)


def pack_extra_leases(slots: Sequence[LeaseInfo | None], schema: LeaseSchema) -> bytes:
    """The extra-lease area: a 4-byte count, then one 92-byte slot each."""
    return len(slots).to_bytes(EXTRA_LEASE_COUNT_SIZE, "big") + b"".join(
        pack_lease_slot(slot, schema) for slot in slots
    )


def parse_extra_lease_count(data: bytes) -> int:
    """The count at the start of the extra-lease area (the first 4 bytes of ``data``)."""
    if len(data) < EXTRA_LEASE_COUNT_SIZE:
        raise CorruptContainerError(
            f"extra-lease count needs {EXTRA_LEASE_COUNT_SIZE} bytes, got {len(data)}"
        )
    return int.from_bytes(data[:EXTRA_LEASE_COUNT_SIZE], "big")


def unpack_extra_leases(data: bytes, schema: LeaseSchema) -> list[LeaseInfo | None]:
    """Read a whole extra-lease area: the count and exactly that many slots."""
    count = parse_extra_lease_count(data)
    expected = EXTRA_LEASE_COUNT_SIZE + count * LEASE_SIZE
    if len(data) != expected:
        raise CorruptContainerError(
            f"extra-lease area holding {count} leases should be {expected} bytes, got {len(data)}"
        )
    return _unpack_slots(data, EXTRA_LEASE_COUNT_SIZE, count, schema)


def _unpack_slots(data: bytes, start: int, count: int, schema: LeaseSchema) -> list[LeaseInfo | None]:
    return [
        unpack_lease_slot(data[at : at + LEASE_SIZE], schema)
        for at in range(start, start + count * LEASE_SIZE, LEASE_SIZE)
    ]
