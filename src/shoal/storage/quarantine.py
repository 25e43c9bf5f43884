"""Quarantine: shares that fail their own hashes are moved aside, not deleted.

shoal's addition to Tahoe-LAFS 1.20, whose servers keep serving a corrupt
share forever (so its repairer can never put a good copy on that server).
A share found damaged, by the check run when a client sends
advise_corrupt_share or by the scrubbing crawler, is renamed into::

    storage/quarantine/<SI base32>/<shnum>--<UTC time>          the share file itself
    storage/quarantine/<SI base32>/<shnum>--<UTC time>.reason   UTF-8: what failed, who found it

It is no longer served (get_buckets, slot reads) or counted (space, the
crawler), and a new share with that number may be uploaded. Nothing here
deletes a quarantined file; an operator inspects and removes them.

What is checked (see ``integrity``): the container must parse and the
share data must agree with the hashes it carries (a mutable share: also
with its signature; a slot holding no SDMF/MDMF share, or more than
MAX_MUTABLE_CHECK bytes, is not checked; nor is a slot whose data does not
parse as a share at all: slot bytes are the client's, and a share written in
several calls looks like that until its last write). A file that is not a
container at all is damaged too. A share that passes is
left alone, so a false advisory changes nothing. The check reads the file without holding the
server's lock (a share's data never changes in place; lease changes rename a
copy over it) and moves it only if the same inode is still in place.

Durability: the reason file is written (temp, fsync, rename), then the share
is renamed into the quarantine directory and both directories are fsync'd;
a crash leaves the share either in place or quarantined.
"""

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from shoal.formats import immutable_container as ic
from shoal.formats import mutable_container as mc
from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import MDMF_VERSION, SDMF_VERSION, unpack_share
from shoal.storage import layout
from shoal.storage.advisories import iso_utc
from shoal.storage.integrity import ImmutableShareCheck, ShareDamage, check_mutable_layout
from shoal.storage.shares import IMMUTABLE, MUTABLE, SNIFF_SIZE, kind_of, where

if TYPE_CHECKING:
    from shoal.storage.server import StorageServer

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
REASON_SUFFIX = ".reason"
CLEAN_MEMORY = 10_000  # (share, inode) pairs remembered as checked clean
CLEAN_FOR = 3600.0  # seconds an advisory about a share just found clean is not re-checked
CHECK_SPAN = 1024 * 1024
MAX_MUTABLE_CHECK = 64 * 1024 * 1024  # mutable shares are checked whole: bigger ones are not checked

GOOD, QUARANTINED, ABSENT, UNCHECKED = "good", "quarantined", "absent", "unchecked"


@attrs.frozen
class Verdict:
    """What checking one share found: GOOD, QUARANTINED, ABSENT or UNCHECKED, and why."""

    outcome: str
    detail: str = ""


Identity = tuple[int, int]  # (st_dev, st_ino) of the file that was checked


class OpenShare:
    """A share file held open: its inode, kind, and its share data read through the descriptor."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        try:
            st = os.fstat(self.fd)
            self.identity: Identity = (st.st_dev, st.st_ino)
            self.size = st.st_size
            head = os.pread(self.fd, max(SNIFF_SIZE, ic.HEADER_SIZE), 0)
        except BaseException:
            os.close(self.fd)
            raise
        self.kind = kind_of(head)
        self.data_length = 0
        self.problem: str | None = None
        self.data_offset = ic.DATA_OFFSET
        if self.kind == IMMUTABLE:
            try:
                header = ic.ImmutableHeader.from_bytes(head)
                self.data_length = header.data_length(self.size)
            except FormatError as e:
                self.problem = f"container header: {e}"
        elif self.kind == MUTABLE:
            self.data_offset = mc.DATA_OFFSET
            try:
                mutable = mc.MutableHeader.from_bytes(os.pread(self.fd, mc.HEADER_SIZE, 0))
                self.data_length = mutable.data_length
            except FormatError as e:
                self.problem = f"mutable container header: {e}"
        elif self.kind is None:
            self.problem = "not an immutable or mutable share container"

    def read(self, offset: int, length: int) -> bytes:
        """Share data [offset, offset+length), cut at its end."""
        length = max(0, min(length, self.data_length - offset))
        return os.pread(self.fd, length, self.data_offset + offset) if length else b""

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> "OpenShare":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def quarantine_root(store: layout.StorageLayout) -> str:
    return os.path.join(store.root, QUARANTINE)


class Quarantine:
    """Checks shares on one server's disk and moves damaged ones aside."""

    def __init__(self, server: "StorageServer", *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self._monotonic = monotonic
        self._clean: OrderedDict[tuple[bytes, int, Identity], float] = OrderedDict()
        self._clean_lock = threading.Lock()
        self.counts = {"checked": 0, "quarantined": 0, "advisories-ignored-clean": 0}

    # -- checking ----------------------------------------------------------

    def check(self, storage_index: bytes, shnum: int, found_by: str, *,
              trust_recent: bool = False) -> Verdict:
        """Check one share whole (thread-safe; runs without the server lock).

        ``trust_recent``: skip a share found clean in the last hour (an
        advisory must not make the server hash the same share again and again).
        """
        path = self._server.layout.share_path(storage_index, shnum)
        for _attempt in range(3):
            try:
                share = OpenShare(path)
            except FileNotFoundError:
                return Verdict(ABSENT)
            with share:
                key = (storage_index, shnum, share.identity)
                if trust_recent and self._recently_clean(key):
                    self.counts["advisories-ignored-clean"] += 1
                    return Verdict(GOOD, "checked clean less than an hour ago")
                if share.kind == MUTABLE and share.problem is None:
                    why_not = mutable_uncheckable(share)
                    if why_not is not None:
                        return Verdict(UNCHECKED, why_not)
                self.counts["checked"] += 1
                try:
                    problem = share.problem or damage_in(share, shnum, CHECK_SPAN)
                except NotAShare as e:
                    return Verdict(UNCHECKED, str(e))
                if problem is None:
                    self._remember_clean(key)
                    return Verdict(GOOD)
                moved = self.move(storage_index, shnum, share.identity, problem, found_by)
            if moved is not None:
                return Verdict(QUARANTINED, problem)
            # the file was replaced while we read it: check the new one
        return Verdict(UNCHECKED, "the share kept changing while it was checked")

    def _recently_clean(self, key: tuple[bytes, int, Identity]) -> bool:
        with self._clean_lock:
            when = self._clean.get(key)
            return when is not None and self._monotonic() - when < CLEAN_FOR

    def _remember_clean(self, key: tuple[bytes, int, Identity]) -> None:
        with self._clean_lock:
            self._clean[key] = self._monotonic()
            self._clean.move_to_end(key)
            while len(self._clean) > CLEAN_MEMORY:
                self._clean.popitem(last=False)

    # -- moving ------------------------------------------------------------

    def move(self, storage_index: bytes, shnum: int, identity: Identity, problem: str,
             found_by: str) -> str | None:
        """Move the share into quarantine if the file checked (``identity``) is
        still the one in place; return its new path, or None if it changed."""
        server = self._server
        store = server.layout
        path = store.share_path(storage_index, shnum)
        with server.lock:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                return None
            if (st.st_dev, st.st_ino) != identity:
                return None
            si = layout.si_b2a(storage_index)
            qdir = os.path.join(quarantine_root(store), si)
            layout.makedirs_durably(qdir)
            now = server.clock()
            base = os.path.join(qdir, f"{shnum}--{iso_utc(now)}".replace(":", ""))
            dest, serial = base, 1
            while os.path.lexists(dest) or os.path.lexists(dest + REASON_SUFFIX):
                serial += 1
                dest = f"{base}.{serial}"
            note = (
                f"share: {si}/{shnum}\nquarantined: {iso_utc(now)}\nfound by: {found_by}\n"
                f"size: {st.st_size}\nproblem: {problem}\n"
            )
            layout.write_file_durably(dest + REASON_SUFFIX, note.encode("utf-8"), store.temp_path())
            os.rename(path, dest)
            bucket = os.path.dirname(path)
            layout.fsync_dir(bucket)
            layout.fsync_dir(qdir)
            if layout.remove_empty_dir(bucket):
                layout.fsync_dir(os.path.dirname(bucket))
            server.space.changed(-st.st_size)
            self.counts["quarantined"] += 1
        log.warning("quarantined %s (%s): %s", where(storage_index, shnum), found_by, problem)
        return dest

    # -- reporting ---------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        """Every quarantined share: storage index, share number, path, and its reason text."""
        root = quarantine_root(self._server.layout)
        found = []
        try:
            buckets = sorted(os.listdir(root))
        except FileNotFoundError:
            return []
        for si in buckets:
            directory = os.path.join(root, si)
            if not os.path.isdir(directory):
                continue
            for name in sorted(os.listdir(directory)):
                if name.endswith(REASON_SUFFIX) or "--" not in name:
                    continue
                path = os.path.join(directory, name)
                try:
                    with open(path + REASON_SUFFIX, "rb") as handle:
                        reason = handle.read().decode("utf-8", errors="replace")
                except OSError:
                    reason = ""
                shnum = name.split("--", 1)[0]
                found.append({
                    "storage-index": si,
                    "shnum": int(shnum) if shnum.isdigit() else None,
                    "path": path,
                    "reason": reason,
                })
        return found


def mutable_uncheckable(share: OpenShare) -> str | None:
    """Why a mutable share is not checked, or None. A slot that does not hold
    an SDMF or MDMF share at all (empty, or another version byte) has nothing
    to check against; one over MAX_MUTABLE_CHECK bytes would take too long."""
    if share.data_length > MAX_MUTABLE_CHECK:
        return f"mutable share of {share.data_length} bytes: too big to check whole"
    if share.data_length == 0 or share.read(0, 1)[0] not in (SDMF_VERSION, MDMF_VERSION):
        return "the slot holds no SDMF or MDMF share"
    return None


class NotAShare(Exception):
    """The slot's data is not laid out as an SDMF or MDMF share: opaque bytes, or a
    write in progress by a client that writes a share in several calls."""


def damage_in(share: OpenShare, shnum: int, span: int) -> str | None:
    """What is wrong with an open share, or None if it agrees with its hashes.

    A mutable slot is only a share if its data parses as one (``unpack_share``):
    slot contents are the client's, and a storage server must not take bytes
    that never claimed to be a share out of service (NotAShare)."""
    try:
        if share.kind == MUTABLE:
            try:
                laid_out = unpack_share(share.read(0, share.data_length))
            except FormatError as e:
                raise NotAShare(f"the slot's data is not laid out as an SDMF or MDMF share: {e}") from None
            check_mutable_layout(laid_out, shnum)
            return None
        check = ImmutableShareCheck(share.read, shnum)
        segnum = 0
        while segnum < check.num_segments:
            segnum = check.check_blocks(segnum, span)
    except ShareDamage as e:
        return str(e)
    return None


def structure_of(share: OpenShare, shnum: int) -> ImmutableShareCheck:
    """The proven structure of an open immutable share (ShareDamage if it is bad)."""
    if share.problem is not None:
        raise ShareDamage(share.problem)
    return ImmutableShareCheck(share.read, shnum)


__all__ = [
    "ABSENT",
    "GOOD",
    "QUARANTINED",
    "UNCHECKED",
    "NotAShare",
    "OpenShare",
    "Quarantine",
    "Verdict",
    "damage_in",
    "quarantine_root",
    "structure_of",
]
