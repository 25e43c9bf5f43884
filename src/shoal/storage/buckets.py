"""Immutable buckets: the writer that uploads one share and the reader that serves it.

Tahoe-LAFS 1.20's rules (storage/immutable.py):

- a writer creates ``shares/incoming/<pp>/<SI>/<shnum>`` holding the 12-byte
  header and the uploader's lease, placed right after the allocated size, so
  the finished file is header + allocated bytes + leases; bytes never written
  read as zeros;
- writes may come in any order; a write past the allocated size fails
  (DataTooLargeError); a write that overlaps bytes already written must repeat
  them exactly (ConflictingWriteError otherwise); the file is not changed by a
  refused write;
- ``close`` moves the file to ``shares/<pp>/<SI>/<shnum>`` and removes the
  emptied incoming directories; ``abort`` deletes it; abort after close does
  nothing; a writer idle for 30 minutes is aborted by the server;
- a reader returns data cut at the end of the share data; reads starting past
  it return b"".

shoal adds: the incoming file is fsync'd before the rename and the bucket
directory after it, so a share is visible only complete; write or close
after close (or abort) raise BucketClosedError.
"""

import bisect
import os
from typing import TYPE_CHECKING, Any

from shoal.formats import immutable_container as ic
from shoal.formats.lease import LeaseInfo
from shoal.storage import layout
from shoal.storage.errors import (
    BucketClosedError,
    ConflictingWriteError,
    DataTooLargeError,
    disk_full,
)
from shoal.storage.shares import ImmutableShareFile, where
from shoal.storage.validate import MAX_READ_LENGTH, check_data, check_offset

if TYPE_CHECKING:
    from shoal.storage.server import StorageServer

IDLE_TIMEOUT = 30 * 60  # seconds without a write before the server aborts a writer


class WrittenRanges:
    """Disjoint, merged [start, end) ranges of bytes already written."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def overlaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) already written, in order."""
        found: list[tuple[int, int]] = []
        if start >= end:
            return found
        index = bisect.bisect_right(self._ends, start)
        while index < len(self._starts) and self._starts[index] < end:
            found.append((max(start, self._starts[index]), min(end, self._ends[index])))
            index += 1
        return found

    def add(self, start: int, end: int) -> None:
        if start >= end:
            return
        low = bisect.bisect_left(self._ends, start)
        high = bisect.bisect_right(self._starts, end)
        if low < high:
            start = min(start, self._starts[low])
            end = max(end, self._ends[high - 1])
        self._starts[low:high] = [start]
        self._ends[low:high] = [end]

    def total(self) -> int:
        return sum(end - start for start, end in zip(self._starts, self._ends, strict=True))

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The [start, end) ranges of [0, size) not yet written."""
        gaps, at = [], 0
        for start, end in zip(self._starts, self._ends, strict=True):
            if start > at:
                gaps.append((at, start))
            at = end
        if at < size:
            gaps.append((at, size))
        return gaps


def container_size(allocated_size: int) -> int:
    """Bytes a finished share of this allocated size takes with its first lease."""
    return ic.HEADER_SIZE + allocated_size + ic.LEASE_SIZE


class BucketWriter:
    """Uploads one immutable share into ``incoming/``; ``close`` makes it visible."""

    def __init__(self, server: "StorageServer", storage_index: bytes, shnum: int,
                 allocated_size: int, lease: LeaseInfo, incoming: str, final: str) -> None:
        self._server = server
        self.storage_index = storage_index
        self.shnum = shnum
        self.allocated_size = allocated_size
        self.incoming_path = incoming
        self.final_path = final
        self.closed = False
        self.aborted = False
        self._written = WrittenRanges()
        self.last_activity = server.clock()
        os.makedirs(os.path.dirname(incoming), exist_ok=True)
        header = ic.ImmutableHeader.for_new_share(allocated_size)
        try:
            with open(incoming, "xb") as handle:
                handle.write(header.with_lease_count(1).to_bytes())
                handle.seek(ic.DATA_OFFSET + allocated_size)
                handle.write(ic.pack_leases([lease], header.lease_schema))
        except OSError as e:
            full = disk_full(e, where(storage_index, shnum))
            if full is None:
                raise
            layout.discard(incoming)
            raise full from e

    def __repr__(self) -> str:
        return f"<BucketWriter {where(self.storage_index, self.shnum)}>"

    def _where(self) -> str:
        return where(self.storage_index, self.shnum)

    def _check_open(self, action: str) -> None:
        if self.closed:
            state = "aborted" if self.aborted else "closed"
            raise BucketClosedError(f"{self._where()}: cannot {action}, the bucket is already {state}")

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of the share data."""
        with self._server.lock:
            self._check_open("write")
            check_offset(self.storage_index, "write offset", offset)
            check_data(self.storage_index, "write data", data)
            try:
                with open(self.incoming_path, "r+b") as handle:
                    self._write_checked(handle, offset, data, offset + len(data))
            except OSError as e:
                raise self._os_error(e, offset) from e
            self._written.add(offset, offset + len(data))

    def _write_checked(self, handle: Any, offset: int, data: bytes | memoryview, limit: int) -> None:
        """Write ``data`` at ``offset`` through ``handle`` if it passes every check (under the lock);
        ``limit`` is where the caller's own range ends."""
        self._check_open("write")
        check_offset(self.storage_index, "write offset", offset)
        end = offset + len(data)
        if end > self.allocated_size or end > limit:
            raise DataTooLargeError(
                f"{self._where()}: write of {len(data)} bytes at offset {offset} passes "
                f"the allocated size {self.allocated_size}" if end > self.allocated_size else
                f"{self._where()}: write of {len(data)} bytes at offset {offset} passes its range's end {limit}"
            )
        self.last_activity = self._server.clock()
        for start, stop in self._written.overlaps(offset, end):
            handle.seek(ic.DATA_OFFSET + start)
            if handle.read(stop - start) != data[start - offset : stop - offset]:
                raise ConflictingWriteError(
                    f"{self._where()}: write at offset {offset} disagrees with the "
                    f"bytes already written at offsets {start}-{stop}"
                )
        handle.seek(ic.DATA_OFFSET + offset)
        handle.write(data)

    def _os_error(self, e: OSError, offset: int) -> Exception:
        full = disk_full(e, f"{self._where()}: write at offset {offset}")
        return e if full is None else full

    def stream(self, start: int, end: int) -> "ShareStream":
        """A write of share data ``[start, end)`` that arrives in pieces (an HTTP request body)."""
        return ShareStream(self, start, end)

    def remaining(self) -> list[tuple[int, int]]:
        """The [start, end) ranges of the share data not written yet."""
        with self._server.lock:
            return self._written.missing(self.allocated_size)

    def close(self) -> None:
        """Make the share durable and visible under ``shares/``."""
        with self._server.lock:
            self._check_open("close")
            bucket = os.path.dirname(self.final_path)
            try:
                with open(self.incoming_path, "r+b") as handle:
                    layout.fsync_file(handle)
                layout.makedirs_durably(bucket)
                os.rename(self.incoming_path, self.final_path)
            except BaseException:
                self.abort()
                raise
            self.closed = True
            self._remove_incoming_dirs()
            self._server._bucket_finished(self, committed=True)
            layout.fsync_dir(bucket)

    def abort(self) -> None:
        """Throw the upload away; nothing happens if the bucket is already closed."""
        with self._server.lock:
            if self.closed:
                return
            self.closed = True
            self.aborted = True
            layout.discard(self.incoming_path)
            self._remove_incoming_dirs()
            self._server._bucket_finished(self, committed=False)

    def _remove_incoming_dirs(self) -> None:
        bucket = os.path.dirname(self.incoming_path)
        if layout.remove_empty_dir(bucket):
            layout.remove_empty_dir(os.path.dirname(bucket))


class ShareStream:
    """One write of ``[start, end)`` into a BucketWriter's share, fed a piece at a time.

    Each piece is checked as ``BucketWriter.write`` checks a whole write
    (bytes already written must be repeated exactly, nothing past the
    allocated size or the range's end) and written straight into the
    incoming file, but the range counts as written only when ``commit``
    finds every byte of it arrived. A stream that is ``abandon``-ed (its
    connection dropped) or failed leaves its range missing, so the client
    can send it again; the bytes it left in that missing range are
    overwritten by the next write of it and never read before then.
    """

    def __init__(self, writer: BucketWriter, start: int, end: int) -> None:
        self.writer = writer
        self.start = start
        self.end = end
        self.at = start
        self._handle: Any = None

    def write(self, data: bytes | memoryview) -> None:
        writer = self.writer
        with writer._server.lock:
            try:
                writer._check_open("write")
                if self._handle is None:
                    self._handle = open(writer.incoming_path, "r+b", buffering=0)
                writer._write_checked(self._handle, self.at, data, self.end)
            except OSError as e:
                self.abandon()
                raise writer._os_error(e, self.at) from e
            except BaseException:
                self.abandon()
                raise
        self.at += len(data)

    def commit(self) -> None:
        """Count the range as written (every byte arrived); ValueError if some did not."""
        with self.writer._server.lock:
            self.abandon()
            if self.at != self.end:
                raise ValueError(f"stream ended at offset {self.at} of {self.start}-{self.end}")
            self.writer._check_open("write")
            self.writer._written.add(self.start, self.end)

    def abandon(self) -> None:
        """Stop: the range stays missing."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


class BucketReader:
    """Serves reads of one finished immutable share."""

    def __init__(self, server: "StorageServer", share: ImmutableShareFile) -> None:
        self._server = server
        self._share = share
        self.storage_index = share.storage_index
        self.shnum = share.shnum

    def __repr__(self) -> str:
        return f"<BucketReader {where(self.storage_index, self.shnum)}>"

    def get_length(self) -> int:
        """The length of the share data."""
        return self._share.data_length

    def read(self, offset: int, length: int) -> bytes:
        """Share data at [offset, offset+length), cut at the end of the data."""
        check_offset(self.storage_index, "read offset", offset)
        check_offset(self.storage_index, "read length", length, MAX_READ_LENGTH)
        with self._server.lock:
            return self._share.read(offset, length)

    def advise_corrupt_share(self, reason: bytes) -> None:
        self._server.advise_corrupt_share(b"immutable", self.storage_index, self.shnum, reason)
