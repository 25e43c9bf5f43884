"""Mutable slots: one test-and-set call, applied all or nothing.

Tahoe-LAFS 1.20's rules (storage/server.py, storage/mutable.py, interfaces.py):

1. every existing share of the slot must hold the presented write enabler,
   else BadWriteEnablerError naming the nodeid that recorded it;
2. each test vector ``(offset, length, b"eq", specimen)`` compares the share's
   data at [offset, offset+length), cut at the end of the data (a missing share
   reads as empty), with the specimen;
3. the read vector is applied to every existing share of the slot *before*
   any write, whether or not the tests pass;
4. if every test passes, the write vectors are applied in order: a write that
   reaches past the end of the data extends it, filling any gap with zeros,
   and moves the extra-lease area to the new end when the data grows past it
   (the container never shrinks); then ``new_length`` truncates the data if
   it is smaller (a larger one is ignored) and ``new_length == 0`` deletes
   the share, and its bucket directory once empty; shares that remain get a
   renewed or new lease (owner 1, this server's nodeid).

shoal's atomicity: every changed share is built as a new container in the
temporary area (a copy of the old one, changed), fsync'd, and only when all
of them are ready are they renamed into place and the bucket directory
fsync'd. A failed test, a bad write enabler or a refused space check leaves
the disk untouched; a crash during the renames leaves each share old or new.
"""

import hmac
import os
from collections.abc import Callable
from typing import BinaryIO

from shoal.encoding import base32
from shoal.formats import mutable_container as mc
from shoal.formats.lease import LeaseInfo
from shoal.storage import layout
from shoal.storage.errors import BadRequestError, BadWriteEnablerError, DataTooLargeError
from shoal.storage.layout import StorageLayout
from shoal.storage.shares import (
    MutableShareFile,
    add_mutable_lease,
    read_mutable_header,
    sniff_sharetype,
    where,
)
from shoal.storage.validate import TestAndWrite, TestVector, WriteVector

_ZERO_CHUNK = 1 << 20


def load_slot(store: StorageLayout, storage_index: bytes) -> dict[int, MutableShareFile]:
    """The existing mutable shares of a storage index; an immutable share there is refused."""
    found = {}
    for shnum, path in store.list_shares(storage_index):
        if sniff_sharetype(path) != "mutable":
            raise BadRequestError(
                f"{where(storage_index, shnum)} is not a mutable share; "
                f"storage index {layout.si_b2a(storage_index)} is not a mutable slot"
            )
        found[shnum] = MutableShareFile(path, storage_index, shnum)
    return found


def check_write_enabler(shares: dict[int, MutableShareFile], write_enabler: bytes) -> None:
    for shnum, share in shares.items():
        if not _equal(share.header.write_enabler, write_enabler):
            nodeid = base32.b2a(share.header.write_enabler_nodeid)
            raise BadWriteEnablerError(
                f"{where(share.storage_index, shnum)}: bad write enabler. "
                f"The write enabler was recorded by nodeid '{nodeid}'."
            )


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def tests_pass(vectors: dict[int, TestAndWrite], shares: dict[int, MutableShareFile]) -> bool:
    """Whether every test vector of every share holds (missing shares read as empty)."""
    for shnum, (tests, _writes, _new_length) in vectors.items():
        share = shares.get(shnum)
        if not _share_passes(share, tests):
            return False
    return True


def _share_passes(share: MutableShareFile | None, tests: list[TestVector]) -> bool:
    if not tests:
        return True
    actual = share.readv([(offset, length) for offset, length, _op, _s in tests]) if share else None
    for index, (_offset, _length, _operator, specimen) in enumerate(tests):
        data = actual[index] if actual is not None else b""
        if data != specimen:
            return False
    return True


def read_slot(shares: dict[int, MutableShareFile], readv: list[tuple[int, int]],
              wanted: set[int] | None = None) -> dict[int, list[bytes]]:
    """The read vector applied to every share (or to those in ``wanted``, when not empty)."""
    return {
        shnum: share.readv(readv)
        for shnum, share in shares.items()
        if not wanted or shnum in wanted
    }


def _final_extra_lease_offset(extra_lease_offset: int, writes: list[WriteVector]) -> int:
    ends = [mc.DATA_OFFSET + offset + len(data) for offset, data in writes]
    return max([extra_lease_offset, *ends])


class SlotUpdate:
    """What one call does to one share: the plan, its size change, and the new container."""

    def __init__(self, storage_index: bytes, shnum: int, share: MutableShareFile | None,
                 vector: TestAndWrite, lease: LeaseInfo) -> None:
        self.storage_index = storage_index
        self.shnum = shnum
        self.share = share
        _tests, self.writes, self.new_length = vector
        self.lease = lease
        for offset, data in self.writes:
            if offset + len(data) > mc.MAX_DATA_LENGTH:
                raise DataTooLargeError(
                    f"{where(storage_index, shnum)}: write of {len(data)} bytes at offset "
                    f"{offset} passes the maximum mutable share size {mc.MAX_DATA_LENGTH}"
                )
        self.delete = self.new_length == 0
        self.renew_only = False
        self.needs_new_lease = True
        if share is not None and not self.delete:
            matching = [
                lease for lease in share.leases() if lease.matches_renew_secret(self.lease.renew_secret)
            ]
            self.needs_new_lease = not matching
            truncates = self.new_length is not None and self.new_length < self._length_after_writes()
            self.renew_only = not self.writes and not truncates and not self.needs_new_lease

    def _length_after_writes(self) -> int:
        length = self.share.data_length if self.share is not None else 0
        for offset, data in self.writes:
            if offset + len(data) >= length:
                length = offset + len(data)
        return length

    @property
    def old_size(self) -> int:
        return self.share.size if self.share is not None else 0

    def growth(self) -> int:
        """Bytes this update adds to the slot on disk (negative when it deletes a share)."""
        if self.delete:
            return -self.old_size
        if self.renew_only:
            return 0
        if self.share is not None:
            extra_offset = self.share.header.extra_lease_offset
            extra_count = self.share.extra_count
            free_slot = None in self.share.slots()
        else:
            extra_offset, extra_count, free_slot = mc.DATA_OFFSET, 0, True
        if self.needs_new_lease and not free_slot:
            extra_count += 1
        new_offset = _final_extra_lease_offset(extra_offset, self.writes)
        return mc.extra_lease_area_end(new_offset, extra_count) - self.old_size

    def build(self, temp: str, nodeid: bytes, write_enabler: bytes) -> None:
        """Write the new container to ``temp`` and fsync it."""

        def change(handle: BinaryIO) -> None:
            if self.share is None:
                handle.write(mc.new_container(nodeid, write_enabler))
            _apply(handle, self.storage_index, self.shnum, self.writes, self.new_length)
            if self.needs_new_lease:
                add_mutable_lease(handle, self.lease)
            else:
                _renew_in_copy(handle, self.lease)

        layout.prepare_rewrite(self.share.path if self.share else None, temp, change)


def _apply(handle: BinaryIO, storage_index: bytes, shnum: int, writes: list[WriteVector],
           new_length: int | None) -> None:
    handle.seek(0, os.SEEK_END)
    header, _count = read_mutable_header(handle, storage_index, shnum, handle.tell())
    for offset, data in writes:
        header = _write(handle, header, offset, data)
    if new_length is not None and new_length < header.data_length:
        header = header.with_data_length(new_length)
    handle.seek(0)
    handle.write(header.to_bytes())


def _write(handle: BinaryIO, header: mc.MutableHeader, offset: int, data: bytes) -> mc.MutableHeader:
    end = offset + len(data)
    if end >= header.data_length:
        physical_end = handle.seek(0, os.SEEK_END)  # past this, the file has only holes (zeros)
        if mc.DATA_OFFSET + end > header.extra_lease_offset:
            header = _move_extra_leases(handle, header, mc.DATA_OFFSET + end)
        if offset > header.data_length:
            gap_start = mc.DATA_OFFSET + header.data_length
            gap_end = min(mc.DATA_OFFSET + offset, max(gap_start, physical_end))
            # stale bytes inside the old file are zeroed; a gap past its end is left a hole,
            # so a write at a huge offset costs no zero-filling (the space check still counts it)
            _zero_fill(handle, gap_start, gap_end - gap_start)
        header = header.with_data_length(end)
    handle.seek(mc.DATA_OFFSET + offset)
    handle.write(data)
    return header


def _move_extra_leases(handle: BinaryIO, header: mc.MutableHeader, new_offset: int) -> mc.MutableHeader:
    handle.seek(header.extra_lease_offset)
    count = mc.parse_extra_lease_count(handle.read(mc.EXTRA_LEASE_COUNT_SIZE))
    size = mc.EXTRA_LEASE_COUNT_SIZE + count * mc.LEASE_SIZE
    handle.seek(header.extra_lease_offset)
    area = handle.read(size)
    # Zero the old area, as Tahoe does, so no stale lease shows through as data.
    handle.seek(header.extra_lease_offset)
    handle.write(bytes(size))
    handle.seek(new_offset)
    handle.write(area)
    return header.with_extra_lease_offset(new_offset)


def _zero_fill(handle: BinaryIO, at: int, length: int) -> None:
    handle.seek(at)
    while length > 0:
        step = min(length, _ZERO_CHUNK)
        handle.write(bytes(step))
        length -= step


def _renew_in_copy(handle: BinaryIO, lease: LeaseInfo) -> None:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    header = mc.MutableHeader.from_bytes(_read(handle, 0, mc.HEADER_SIZE))
    count = mc.parse_extra_lease_count(_read(handle, header.extra_lease_offset, 4))
    assert mc.extra_lease_area_end(header.extra_lease_offset, count) <= size
    for index in range(mc.LEASE_SLOT_COUNT + count):
        at = mc.lease_slot_offset(index, header.extra_lease_offset)
        slot = mc.unpack_lease_slot(_read(handle, at, mc.LEASE_SIZE), header.lease_schema)
        if slot is not None and slot.matches_renew_secret(lease.renew_secret):
            if lease.expiration_time > slot.expiration_time:
                handle.seek(at + 4)
                handle.write(lease.expiration_time.to_bytes(4, "big"))
            return


def _read(handle: BinaryIO, offset: int, length: int) -> bytes:
    handle.seek(offset)
    return handle.read(length)


def commit(store: StorageLayout, storage_index: bytes, built: dict[int, str],
           deleted: list[str], renewals: list[Callable[[], object]]) -> None:
    """Rename every built container into place, delete, fsync, then renew in place."""
    bucket = store.bucket_dir(storage_index)
    if built:
        layout.makedirs_durably(bucket)
    for shnum, temp in sorted(built.items()):
        os.replace(temp, os.path.join(bucket, "%d" % shnum))
    for path in deleted:
        os.unlink(path)
    if built or deleted:
        layout.fsync_dir(bucket)
    if deleted and layout.remove_empty_dir(bucket):
        layout.fsync_dir(os.path.dirname(bucket))
    for renew in renewals:
        renew()
