"""Finished share files on disk: parse them and change their leases safely.

One class per container kind, both built on the byte formats in
``shoal.formats`` (immutable_container, mutable_container, lease):

- ``ImmutableShareFile``: 12-byte header, share data, then 72-byte leases.
- ``MutableShareFile``: the 468-byte header with four lease slots, data,
  then the extra-lease count and extra leases.

Both offer the same lease operations, with Tahoe-LAFS 1.20's rules
(storage/immutable.py, storage/mutable.py): a lease whose renew secret
matches is renewed, and only to a later time; otherwise a new lease is added
(immutable: appended; mutable: first empty slot, else a new extra lease).
Containers keep the lease schema they were written with: version 1 stores
secrets as sent, version 2 their BLAKE2b digests.

How changes reach the disk:
- renewing a lease rewrites its 4-byte expiration field in place and fsyncs;
  whatever a crash leaves, the container parses and the lease is intact;
- adding or removing leases changes a copy of the file that is then renamed
  over the original (layout.rewrite_durably), so a crash leaves the old file
  or the new one.
"""

import os
from typing import BinaryIO, cast

from shoal.formats import immutable_container as ic
from shoal.formats import mutable_container as mc
from shoal.formats.errors import FormatError
from shoal.formats.lease import LeaseInfo, LeaseSchema
from shoal.storage.errors import CorruptShareError, ShareNotFoundError
from shoal.storage.layout import fsync_file, si_b2a

IMMUTABLE = "immutable"
MUTABLE = "mutable"
_IMMUTABLE_EXPIRATION_AT = 68  # within a 72-byte immutable lease record
_MUTABLE_EXPIRATION_AT = 4  # within a 92-byte mutable lease record
SNIFF_SIZE = mc.MAGIC_SIZE


def where(storage_index: bytes, shnum: int) -> str:
    """'share <SI>/<shnum>' for messages."""
    return f"share {si_b2a(storage_index)}/{shnum}"


def _read_at(handle: BinaryIO, offset: int, length: int) -> bytes:
    handle.seek(offset)
    return handle.read(length)


def _open(path: str, storage_index: bytes, shnum: int, mode: str = "rb") -> BinaryIO:
    try:
        return cast(BinaryIO, open(path, mode))  # noqa: SIM115 - callers close it
    except FileNotFoundError:
        raise ShareNotFoundError(f"{where(storage_index, shnum)} no longer exists") from None


class ImmutableShareFile:
    """A finished immutable share: its header, data length and leases."""

    sharetype = IMMUTABLE

    def __init__(self, path: str, storage_index: bytes, shnum: int) -> None:
        self.path = path
        self.storage_index = storage_index
        self.shnum = shnum
        with _open(path, storage_index, shnum) as handle:
            head = handle.read(ic.HEADER_SIZE)
            self.size = os.fstat(handle.fileno()).st_size
        try:
            self.header = ic.ImmutableHeader.from_bytes(head)
            self.data_length = self.header.data_length(self.size)
        except FormatError as error:
            raise CorruptShareError(f"{where(storage_index, shnum)}: {error}") from None
        self.lease_offset = ic.DATA_OFFSET + self.data_length

    @property
    def schema(self) -> LeaseSchema:
        return self.header.lease_schema

    def read(self, offset: int, length: int) -> bytes:
        """Share data at [offset, offset+length), cut at the end of the data."""
        length = max(0, min(length, self.data_length - offset))
        if length == 0:
            return b""
        with _open(self.path, self.storage_index, self.shnum) as handle:
            return _read_at(handle, ic.DATA_OFFSET + offset, length)

    def leases(self) -> list[LeaseInfo]:
        with _open(self.path, self.storage_index, self.shnum) as handle:
            area = _read_at(handle, self.lease_offset, self.header.lease_count * ic.LEASE_SIZE)
        try:
            return ic.unpack_leases(area, self.schema)
        except FormatError as error:
            raise CorruptShareError(f"{where(self.storage_index, self.shnum)}: {error}") from None

    def renew_lease(self, renew_secret: bytes, expiration_time: int) -> bool:
        """Renew the first lease with this renew secret; False if none matches."""
        for index, lease in enumerate(self.leases()):
            if lease.matches_renew_secret(renew_secret):
                if expiration_time > lease.expiration_time:
                    at = self.lease_offset + index * ic.LEASE_SIZE + _IMMUTABLE_EXPIRATION_AT
                    _write_in_place(self, at, expiration_time.to_bytes(4, "big"))
                return True
        return False

    def growth_for_new_lease(self) -> int:
        return ic.LEASE_SIZE

    def add_lease_to(self, handle: BinaryIO, lease: LeaseInfo) -> None:
        """Append ``lease`` to the copy of this file open in ``handle``."""
        count = self.header.lease_count
        handle.seek(self.lease_offset + count * ic.LEASE_SIZE)
        handle.write(ic.pack_leases([lease], self.schema))
        handle.seek(ic.LEASE_COUNT_OFFSET)
        handle.write((count + 1).to_bytes(4, "big"))

    def lease_slots(self) -> list[LeaseInfo | None]:
        """The leases by index (an immutable container has no empty slots)."""
        return list(self.leases())

    def drop_leases_in(self, handle: BinaryIO, indexes: set[int]) -> None:
        """Remove the leases at ``indexes`` from the copy in ``handle``, keeping the others in order."""
        keep = [lease for index, lease in enumerate(self.leases()) if index not in indexes]
        handle.seek(self.lease_offset)
        handle.write(ic.pack_leases(keep, self.schema))
        handle.truncate(self.lease_offset + len(keep) * ic.LEASE_SIZE)
        handle.seek(ic.LEASE_COUNT_OFFSET)
        handle.write(len(keep).to_bytes(4, "big"))


class MutableShareFile:
    """A finished mutable share (slot container): header, data length and lease slots."""

    sharetype = MUTABLE

    def __init__(self, path: str, storage_index: bytes, shnum: int) -> None:
        self.path = path
        self.storage_index = storage_index
        self.shnum = shnum
        with _open(path, storage_index, shnum) as handle:
            self.size = os.fstat(handle.fileno()).st_size
            self.header, self.extra_count = read_mutable_header(handle, storage_index, shnum, self.size)

    @property
    def schema(self) -> LeaseSchema:
        return self.header.lease_schema

    @property
    def data_length(self) -> int:
        return self.header.data_length

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.header.data_length - offset))
        if length == 0:
            return b""
        with _open(self.path, self.storage_index, self.shnum) as handle:
            return _read_at(handle, mc.DATA_OFFSET + offset, length)

    def readv(self, readv: list[tuple[int, int]]) -> list[bytes]:
        """Each (offset, length) read, cut at the end of the data; one open for all."""
        end = self.header.data_length
        with _open(self.path, self.storage_index, self.shnum) as handle:
            return [
                _read_at(handle, mc.DATA_OFFSET + offset, min(length, end - offset))
                if offset < end and length > 0
                else b""
                for offset, length in readv
            ]

    def slots(self) -> list[LeaseInfo | None]:
        """Every lease slot in order (four header slots, then extra leases); None if empty."""
        with _open(self.path, self.storage_index, self.shnum) as handle:
            return read_mutable_slots(handle, self.header, self.extra_count, where(self.storage_index, self.shnum))

    def leases(self) -> list[LeaseInfo]:
        return [slot for slot in self.slots() if slot is not None]

    def renew_lease(self, renew_secret: bytes, expiration_time: int) -> bool:
        for index, lease in enumerate(self.slots()):
            if lease is not None and lease.matches_renew_secret(renew_secret):
                if expiration_time > lease.expiration_time:
                    at = mc.lease_slot_offset(index, self.header.extra_lease_offset)
                    _write_in_place(self, at + _MUTABLE_EXPIRATION_AT, expiration_time.to_bytes(4, "big"))
                return True
        return False

    def growth_for_new_lease(self) -> int:
        return 0 if None in self.slots() else mc.LEASE_SIZE

    def add_lease_to(self, handle: BinaryIO, lease: LeaseInfo) -> None:
        add_mutable_lease(handle, lease)

    def lease_slots(self) -> list[LeaseInfo | None]:
        return self.slots()

    def drop_leases_in(self, handle: BinaryIO, indexes: set[int]) -> None:
        """Empty the slots at ``indexes`` in the copy in ``handle`` (Tahoe blanks, never compacts)."""
        for index in sorted(indexes):
            handle.seek(mc.lease_slot_offset(index, self.header.extra_lease_offset))
            handle.write(mc.EMPTY_LEASE_SLOT)


def read_mutable_header(handle: BinaryIO, storage_index: bytes, shnum: int,
                        size: int) -> tuple[mc.MutableHeader, int]:
    """The header and extra-lease count of the mutable container open in ``handle``."""
    try:
        header = mc.MutableHeader.from_bytes(_read_at(handle, 0, mc.HEADER_SIZE))
        count = mc.parse_extra_lease_count(
            _read_at(handle, header.extra_lease_offset, mc.EXTRA_LEASE_COUNT_SIZE)
        )
        end = mc.extra_lease_area_end(header.extra_lease_offset, count)
    except FormatError as error:
        raise CorruptShareError(f"{where(storage_index, shnum)}: {error}") from None
    if end > size:
        raise CorruptShareError(
            f"{where(storage_index, shnum)}: {count} extra leases at offset "
            f"{header.extra_lease_offset} run past the end of the {size}-byte file"
        )
    return header, count


def read_mutable_slots(handle: BinaryIO, header: mc.MutableHeader, extra_count: int,
                       place: str) -> list[LeaseInfo | None]:
    try:
        slots = mc.unpack_lease_slots(
            _read_at(handle, mc.LEASE_SLOTS_OFFSET, mc.LEASE_SLOT_COUNT * mc.LEASE_SIZE),
            header.lease_schema,
        )
        area_size = mc.EXTRA_LEASE_COUNT_SIZE + extra_count * mc.LEASE_SIZE
        slots += mc.unpack_extra_leases(
            _read_at(handle, header.extra_lease_offset, area_size), header.lease_schema
        )
    except FormatError as error:
        raise CorruptShareError(f"{place}: {error}") from None
    return slots


def add_mutable_lease(handle: BinaryIO, lease: LeaseInfo) -> None:
    """Put ``lease`` in the first empty slot of the container in ``handle``, else append one."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    header = mc.MutableHeader.from_bytes(_read_at(handle, 0, mc.HEADER_SIZE))
    count = mc.parse_extra_lease_count(_read_at(handle, header.extra_lease_offset, 4))
    slots = read_mutable_slots(handle, header, count, "container being rewritten")
    record = mc.pack_lease_slot(lease, header.lease_schema)
    if None in slots:
        index = slots.index(None)
    else:
        index = len(slots)
        handle.seek(header.extra_lease_offset)
        handle.write((count + 1).to_bytes(mc.EXTRA_LEASE_COUNT_SIZE, "big"))
    at = mc.lease_slot_offset(index, header.extra_lease_offset)
    assert at <= size
    handle.seek(at)
    handle.write(record)


def _write_in_place(share: "ImmutableShareFile | MutableShareFile", offset: int, data: bytes) -> None:
    with _open(share.path, share.storage_index, share.shnum, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
        fsync_file(handle)


def sniff_sharetype(path: str) -> str | None:
    """MUTABLE, IMMUTABLE, or None for a file that is neither container."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_SIZE)
    except OSError:
        return None
    return kind_of(head)


def kind_of(head: bytes) -> str | None:
    """MUTABLE, IMMUTABLE or None, from the first bytes of a share file (SNIFF_SIZE suffice)."""
    if mc.is_mutable_container(head):
        return MUTABLE
    if len(head) >= 4 and int.from_bytes(head[:4], "big") in ic.VERSIONS:
        return IMMUTABLE
    return None


def open_share(path: str, storage_index: bytes, shnum: int) -> ImmutableShareFile | MutableShareFile | None:
    """The share file at ``path`` parsed as its kind, or None if it is neither container."""
    kind = sniff_sharetype(path)
    if kind == MUTABLE:
        return MutableShareFile(path, storage_index, shnum)
    if kind == IMMUTABLE:
        return ImmutableShareFile(path, storage_index, shnum)
    return None
