"""Where a storage server keeps things on disk, and how it changes files durably.

The layout is Tahoe-LAFS 1.20's (storage/server.py, storage/common.py), so
either program can serve the other's directory::

    storage/shares/<pp>/<SI>/<shnum>            a finished share (pp: first 2 base32 chars)
    storage/shares/incoming/<pp>/<SI>/<shnum>   an immutable share being uploaded
    storage/corruption-advisories/              one text file per advisory

shoal adds ``storage/shares/incoming/tmp/`` for the temporary files of its
atomic rewrites. Everything under ``incoming/`` is thrown away when a server
starts (Tahoe does the same), so a crash can leave nothing behind that a
reader sees. Share files are named by their decimal share number; other
names in a bucket directory are ignored, as Tahoe ignores them.

Durability rules (see docs/storage.md): a file is fsync'd before it is
renamed into place, and the directory that gained or lost a name is fsync'd
after the rename, so a share is either wholly present or absent after a crash.
"""

import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable
from typing import BinaryIO

from shoal.encoding import base32
from shoal.storage.errors import BadRequestError

SHARES = "shares"
INCOMING = "incoming"
TMP = "tmp"
CORRUPTION_ADVISORIES = "corruption-advisories"
STORAGE_INDEX_LENGTH = 16
PREFIX_LENGTH = 2
SHARE_NAME = re.compile(r"\A[0-9]+\Z")
# The 1024 prefix directories a crawler walks, in Tahoe's (sorted) order.
ALL_PREFIXES = tuple(sorted(a + b for a in base32.ALPHABET for b in base32.ALPHABET))


def si_b2a(storage_index: bytes) -> str:
    """The 26-character base32 form of a storage index, as directory names use it."""
    return base32.b2a(storage_index)


def si_a2b(text: str) -> bytes:
    """The storage index a bucket directory is named for; BadRequestError if it is not one."""
    if not base32.is_base32(text, STORAGE_INDEX_LENGTH):
        raise BadRequestError(f"{text[:40]!r} is not a base32 storage index")
    return base32.a2b(text)


def fsync_dir(path: str) -> None:
    """Make the names in directory ``path`` durable (new, renamed or removed entries)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs_durably(path: str) -> None:
    """Create ``path`` and any missing parents, fsyncing each parent that gained a name."""
    path = os.path.abspath(path)
    missing: list[str] = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue
        fsync_dir(os.path.dirname(directory))


def remove_empty_dir(path: str) -> bool:
    """Remove directory ``path`` if it exists and is empty; True if it was removed."""
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True


def fsync_file(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


class StorageLayout:
    """The paths under one ``storage/`` directory, and the temporary-file area."""

    def __init__(self, storage_dir: str) -> None:
        self.root = os.path.abspath(storage_dir)
        self.shares_dir = os.path.join(self.root, SHARES)
        self.incoming_dir = os.path.join(self.shares_dir, INCOMING)
        self.tmp_dir = os.path.join(self.incoming_dir, TMP)
        self.advisory_dir = os.path.join(self.root, CORRUPTION_ADVISORIES)

    def prepare(self) -> None:
        """Create the directories and discard everything left in ``incoming/``.

        Called once when a server starts: partial uploads and half-built
        rewrites of a previous run are dropped, as Tahoe drops them.
        """
        makedirs_durably(self.shares_dir)
        if os.path.lexists(self.incoming_dir):
            shutil.rmtree(self.incoming_dir)
            fsync_dir(self.shares_dir)
        makedirs_durably(self.tmp_dir)
        makedirs_durably(self.advisory_dir)

    def bucket_dir(self, storage_index: bytes) -> str:
        text = si_b2a(storage_index)
        return os.path.join(self.shares_dir, text[:PREFIX_LENGTH], text)

    def share_path(self, storage_index: bytes, shnum: int) -> str:
        return os.path.join(self.bucket_dir(storage_index), "%d" % shnum)

    def incoming_path(self, storage_index: bytes, shnum: int) -> str:
        text = si_b2a(storage_index)
        return os.path.join(self.incoming_dir, text[:PREFIX_LENGTH], text, "%d" % shnum)

    def prefix_dir(self, prefix: str) -> str:
        return os.path.join(self.shares_dir, prefix)

    def list_shares(self, storage_index: bytes) -> list[tuple[int, str]]:
        """(share number, path) of each finished share of a storage index, in order."""
        return list_share_files(self.bucket_dir(storage_index))

    def list_buckets(self, prefix: str) -> list[str]:
        """The base32 storage indexes held under one prefix directory, sorted."""
        try:
            names = os.listdir(self.prefix_dir(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(name for name in names if base32.is_base32(name, STORAGE_INDEX_LENGTH))

    def temp_path(self) -> str:
        """A fresh name in the temporary area, on the same file system as the shares."""
        return os.path.join(self.tmp_dir, uuid.uuid4().hex)


def list_share_files(bucket_dir: str) -> list[tuple[int, str]]:
    try:
        names = os.listdir(bucket_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(int(name), os.path.join(bucket_dir, name)) for name in names if SHARE_NAME.match(name)]
    return sorted(found)


def replace_durably(temp: str, final: str) -> None:
    """Rename a finished, fsync'd temporary file over ``final`` and fsync its directory."""
    os.replace(temp, final)
    fsync_dir(os.path.dirname(final))


def write_file_durably(final: str, data: bytes, temp: str) -> None:
    """Give ``final`` exactly ``data``: write ``temp``, fsync, rename over, fsync the directory."""
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            fsync_file(handle)
        replace_durably(temp, final)
    except BaseException:
        _discard(temp)
        raise


def prepare_rewrite(path: str | None, temp: str, modify: Callable[[BinaryIO], None]) -> int:
    """Copy ``path`` to ``temp`` (or start ``temp`` empty), change it with ``modify``, fsync.

    The original is untouched; ``replace_durably(temp, path)`` commits the
    change. If anything fails the copy is removed. Returns the copy's size.
    """
    try:
        if path is None:
            open(temp, "xb").close()
        else:
            copy_sparse(path, temp)
        with open(temp, "r+b") as handle:
            modify(handle)
            fsync_file(handle)
            size = os.fstat(handle.fileno()).st_size
    except BaseException:
        _discard(temp)
        raise
    return size


_COPY_CHUNK = 1 << 20


def _data_extents(fd: int, start: int, end: int) -> list[tuple[int, int]]:
    """The [start, end) pieces of a file that hold data (holes left out).

    Uses SEEK_DATA/SEEK_HOLE and puts the descriptor's offset back as it was
    (a buffered file object over it keeps its idea of the position); where
    the file system cannot say, the whole range counts as data.
    """
    saved = os.lseek(fd, 0, os.SEEK_CUR)
    extents = []
    at = start
    try:
        while at < end:
            try:
                data = os.lseek(fd, at, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # only a hole from here to the end
                    break
                return [(start, end)]
            if data >= end:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            extents.append((data, hole))
            at = hole
    finally:
        os.lseek(fd, saved, os.SEEK_SET)
    return extents


def _copy_range(src: int, dst: int, start: int, end: int) -> None:
    """Bytes [start, end) of `src` to the same place in `dst`: in the kernel where it can."""
    at = start
    while at < end:
        try:
            copied = os.copy_file_range(src, dst, min(end - at, _COPY_CHUNK * 64), at, at)
        except OSError:  # a file system that cannot: through user space
            chunk = os.pread(src, min(end - at, _COPY_CHUNK), at)
            copied = os.pwrite(dst, chunk, at) if chunk else 0
        if copied == 0:
            break  # the source ended early (it shrank under us): the truncate sets the size
        at += copied


def copy_sparse(source: str, destination: str) -> None:
    """Copy a file, keeping its holes: a sparse share is never written out as zeros."""
    src = os.open(source, os.O_RDONLY)
    try:
        dst = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            size = os.fstat(src).st_size
            for start, end in _data_extents(src, 0, size):
                _copy_range(src, dst, start, end)
            os.ftruncate(dst, size)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def zero_range(handle: BinaryIO, start: int, end: int) -> None:
    """Make [start, end) of a file read as zeros, writing zeros only where it holds data.

    Past the end of the file nothing is written (a later write leaves a hole).
    """
    handle.flush()
    fd = handle.fileno()
    end = min(end, os.fstat(fd).st_size)
    for data, stop in _data_extents(fd, start, end):
        handle.seek(data)
        remaining = stop - data
        while remaining > 0:
            step = min(remaining, _COPY_CHUNK)
            handle.write(bytes(step))
            remaining -= step


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def rewrite_durably(path: str, temp: str, modify: Callable[[BinaryIO], None]) -> int:
    """Change ``path`` through a modified copy renamed over it: old or new after a crash."""
    size = prepare_rewrite(path, temp, modify)
    try:
        replace_durably(temp, path)
    except BaseException:
        _discard(temp)
        raise
    return size


def discard(path: str) -> None:
    """Remove a temporary file if it is still there."""
    _discard(path)
