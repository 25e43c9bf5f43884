"""The transport-free storage server: Tahoe-LAFS 1.20's RIStorageServer as plain methods.

Each method here is one remote method of RIStorageServer (interfaces.py):
an adapter (Foolscap now, HTTP later) decodes a call, calls one method and
encodes the answer. Nothing here knows about sockets, reactors or canaries;
the shell calls ``abort_idle_writers`` periodically and ``BucketWriter.abort``
when a client disconnects, and drives ``crawler.run_slice`` and
``scrubber.run_slice`` (shoal's share checker, see scrubber and quarantine).

Behaviour follows storage/server.py of Tahoe-LAFS 1.20 wherever a client
could notice; the module docstrings of buckets, slots, shares and space say
which rule comes from where, and docs/storage.md lists what shoal changes
(atomic share writes, read-only that refuses mutable writes too, max_space).
All methods hold one lock, so calls from several threads never interleave.
"""

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from shoal.encoding import base32
from shoal.formats.lease import MAX_UINT32, LeaseInfo
from shoal.formats.mutable_container import MAX_DATA_LENGTH
from shoal.protocol.version import ServerVersion
from shoal.storage import advisories, layout, slots
from shoal.storage.buckets import IDLE_TIMEOUT, BucketReader, BucketWriter, container_size
from shoal.storage.crawler import MINIMUM_CYCLE_TIME, LeaseCrawler
from shoal.storage.errors import (
    BadRequestError,
    CorruptShareError,
    NoSpaceError,
    NoSuchLeaseError,
    ReadOnlyError,
    StorageError,
)
from shoal.storage.expiration import LEASE_DURATION, ExpirationPolicy
from shoal.storage.layout import StorageLayout
from shoal.storage.quarantine import Quarantine
from shoal.storage.scrubber import Scrubber
from shoal.storage.shares import (
    IMMUTABLE,
    ImmutableShareFile,
    MutableShareFile,
    open_share,
    sniff_sharetype,
    where,
)
from shoal.storage.space import SpaceAccountant, Statvfs
from shoal.storage.validate import (
    check_data,
    check_offset,
    check_read_vector,
    check_secret,
    check_share_list,
    check_sharenums,
    check_shnum,
    check_storage_index,
    check_test_and_write_vectors,
)

log = logging.getLogger(__name__)

NODEID_LENGTH = 20
MUTABLE_LEASE_OWNER = 1  # Tahoe's add_lease and mutable writes use owner 1
MAX_REASON_LENGTH = 64 * 1024
SHARE_TYPES = (b"immutable", b"mutable")


class StorageServer:
    """Holds shares under ``storage_dir`` (a node's ``storage/`` directory)."""

    def __init__(self, storage_dir: str, nodeid: bytes, *, reserved_space: int = 0,
                 max_space: int | None = None, readonly: bool = False,
                 clock: Callable[[], float] = time.time,
                 expiration: ExpirationPolicy | None = None,
                 app_version: bytes = b"shoal/0.1.0",
                 statvfs: Statvfs = os.statvfs,
                 crawler_minimum_cycle_time: float | None = None) -> None:
        if not isinstance(nodeid, bytes) or len(nodeid) != NODEID_LENGTH:
            raise ValueError(f"nodeid must be {NODEID_LENGTH} bytes")
        if not isinstance(app_version, bytes):
            raise TypeError("app_version must be bytes")
        self.nodeid = nodeid
        self.readonly = readonly
        self.clock = clock
        self.app_version = app_version
        self.lock = threading.RLock()
        self.layout = StorageLayout(storage_dir)
        self.layout.prepare()
        self.space = SpaceAccountant(self.layout, reserved_space, max_space, statvfs)
        self._writers: dict[tuple[bytes, int], BucketWriter] = {}
        self.expiration = expiration if expiration is not None else ExpirationPolicy()
        self.quarantine = Quarantine(self)
        self.scrubber = Scrubber(self)
        self.crawler = LeaseCrawler(
            self,
            self.expiration,
            minimum_cycle_time=(
                MINIMUM_CYCLE_TIME if crawler_minimum_cycle_time is None else crawler_minimum_cycle_time
            ),
        )

    def have_shares(self) -> bool:
        """Whether anything is stored under shares/ (Tahoe uses this to keep an old permutation seed)."""
        try:
            return bool(set(os.listdir(self.layout.shares_dir)) - {layout.INCOMING})
        except FileNotFoundError:
            return False

    def __repr__(self) -> str:
        return f"<StorageServer {base32.b2a(self.nodeid)[:8]} at {self.layout.root}>"

    # -- version and space ---------------------------------------------------

    def available_space(self) -> int:
        """Bytes new shares may still take: 0 when read-only, else the tighter limit."""
        if self.readonly:
            return 0
        try:
            return self.space.headroom()
        except OSError:
            log.warning("statvfs failed on %s", self.layout.shares_dir)
            return 0

    def get_version(self) -> dict[bytes, Any]:
        with self.lock:
            remaining = self.available_space()
        return ServerVersion(
            maximum_immutable_share_size=remaining,
            maximum_mutable_share_size=MAX_DATA_LENGTH,
            available_space=remaining,
            tolerates_immutable_read_overrun=True,
            delete_mutable_shares_with_zero_length_writev=True,
            fills_holes_with_zero_bytes=True,
            prevents_read_past_end_of_share_data=True,
            application_version=self.app_version,
        ).to_wire()

    def _lease(self, owner_num: int, renew_secret: bytes, cancel_secret: bytes) -> LeaseInfo:
        expiration = min(int(self.clock()) + LEASE_DURATION, MAX_UINT32)
        return LeaseInfo(owner_num, renew_secret, cancel_secret, expiration, self.nodeid)

    def _add_or_renew(self, share: ImmutableShareFile | MutableShareFile, lease: LeaseInfo) -> None:
        if share.renew_lease(lease.renew_secret, lease.expiration_time):
            return
        growth = share.growth_for_new_lease()
        if growth and growth > self.space.headroom():
            raise NoSpaceError(f"{where(share.storage_index, share.shnum)}: no room for a new lease")
        size = layout.rewrite_durably(
            share.path, self.layout.temp_path(), lambda handle: share.add_lease_to(handle, lease)
        )
        self.space.changed(size - share.size)

    # -- immutable -----------------------------------------------------------

    def allocate_buckets(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes,
                         sharenums: set[int], allocated_size: int,
                         owner_num: int = 0) -> tuple[set[int], dict[int, BucketWriter]]:
        """Writers for the requested shares this server will take, and every share it holds.

        Shares already held or being uploaded by another writer get no
        writer; every share held gets the uploader's lease (renewed if its
        renew secret matches). Shares that do not fit get no writer.
        """
        si = check_storage_index(storage_index)
        check_secret(si, "renew secret", renew_secret)
        check_secret(si, "cancel secret", cancel_secret)
        wanted = check_sharenums(si, sharenums)
        check_offset(si, "allocated size", allocated_size)
        check_offset(si, "owner number", owner_num, MAX_UINT32)
        with self.lock:
            lease = self._lease(owner_num, renew_secret, cancel_secret)
            held = self._immutable_shares(si, skip_corrupt=True)  # a new upload replaces a corrupt share
            for share in held.values():
                self._add_or_renew(share, lease)
            writers: dict[int, BucketWriter] = {}
            if self.readonly:
                return set(held), writers
            room = self.space.headroom()
            cost = container_size(allocated_size)
            for shnum in wanted:
                incoming = self.layout.incoming_path(si, shnum)
                if shnum in held or (si, shnum) in self._writers or os.path.lexists(incoming):
                    continue
                if cost > room:
                    continue
                writer = BucketWriter(self, si, shnum, allocated_size, lease, incoming,
                                      self.layout.share_path(si, shnum))
                self._writers[(si, shnum)] = writer
                self.space.reserve(cost)
                room -= cost
                writers[shnum] = writer
            return set(held), writers

    def _immutable_shares(self, si: bytes, *, skip_corrupt: bool = False) -> dict[int, ImmutableShareFile]:
        found = {}
        for shnum, path in self.layout.list_shares(si):
            kind = sniff_sharetype(path)
            if kind == "mutable":
                raise BadRequestError(
                    f"{where(si, shnum)} is a mutable share; storage index "
                    f"{layout.si_b2a(si)} is not an immutable bucket"
                )
            try:
                if kind != IMMUTABLE:
                    raise CorruptShareError(f"{where(si, shnum)} is not a share container")
                found[shnum] = ImmutableShareFile(path, si, shnum)
            except CorruptShareError as error:
                if not skip_corrupt:
                    raise
                log.warning("skipping %s", error)
        return found

    def _bucket_finished(self, writer: BucketWriter, committed: bool) -> None:
        self._writers.pop((writer.storage_index, writer.shnum), None)
        self.space.release(container_size(writer.allocated_size), committed)

    def get_buckets(self, storage_index: bytes) -> dict[int, BucketReader]:
        """A reader for every immutable share held under this storage index."""
        si = check_storage_index(storage_index)
        with self.lock:
            shares = self._immutable_shares(si, skip_corrupt=True)
            return {shnum: BucketReader(self, share) for shnum, share in shares.items()}

    def abort_idle_writers(self) -> list[BucketWriter]:
        """Abort every writer that has not written for 30 minutes (Tahoe's rule)."""
        with self.lock:
            now = self.clock()
            idle = [w for w in self._writers.values() if now - w.last_activity > IDLE_TIMEOUT]
            for writer in idle:
                log.info("aborting idle upload of %r", writer)
                writer.abort()
            return idle

    def abort_all_writers(self) -> list[BucketWriter]:
        """Abort every upload in progress (for shutdown)."""
        with self.lock:
            writers = list(self._writers.values())
            for writer in writers:
                writer.abort()
            return writers

    # -- leases --------------------------------------------------------------

    def _all_shares(self, si: bytes) -> list[ImmutableShareFile | MutableShareFile]:
        found = []
        for shnum, path in self.layout.list_shares(si):
            share = open_share(path, si, shnum)
            if share is not None:
                found.append(share)
        return found

    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> None:
        """Renew the lease with this renew secret on every share, or add one; no shares, no-op."""
        si = check_storage_index(storage_index)
        check_secret(si, "renew secret", renew_secret)
        check_secret(si, "cancel secret", cancel_secret)
        with self.lock:
            lease = self._lease(MUTABLE_LEASE_OWNER, renew_secret, cancel_secret)
            for share in self._all_shares(si):
                self._add_or_renew(share, lease)

    def renew_lease(self, storage_index: bytes, renew_secret: bytes) -> None:
        """Renew the matching lease on every share; NoSuchLeaseError if a share has none."""
        si = check_storage_index(storage_index)
        check_secret(si, "renew secret", renew_secret)
        with self.lock:
            expiration = self._lease(MUTABLE_LEASE_OWNER, renew_secret, renew_secret).expiration_time
            shares = self._all_shares(si)
            if not shares:
                raise NoSuchLeaseError(f"storage index {layout.si_b2a(si)}: no shares, no lease to renew")
            for share in shares:
                if not share.renew_lease(renew_secret, expiration):
                    nodeids = sorted(
                        {base32.b2a(lease.nodeid) for lease in share.leases() if lease.nodeid}
                    )
                    raise NoSuchLeaseError(
                        f"{where(si, share.shnum)}: no lease with this renew secret"
                        + (f"; leases were accepted by nodeids {', '.join(nodeids)}" if nodeids else "")
                    )

    def share_numbers(self, storage_index: bytes) -> set[int]:
        """The numbers of every finished share held under this storage index, of either kind
        (Tahoe's get_shares: the HTTP adapter answers 404 to a lease or advisory on none)."""
        si = check_storage_index(storage_index)
        with self.lock:
            return {shnum for shnum, _path in self.layout.list_shares(si)}

    # -- mutable -------------------------------------------------------------

    def mutable_share_length(self, storage_index: bytes, shnum: int) -> int | None:
        """The data length of one mutable share, or None if this server does not hold it."""
        si = check_storage_index(storage_index)
        check_shnum(si, shnum)
        with self.lock:
            share = slots.load_slot(self.layout, si).get(shnum)
            return None if share is None else share.data_length

    def slot_readv(self, storage_index: bytes, shares: list[int],
                   readv: list[tuple[int, int]]) -> dict[int, list[bytes]]:
        """The read vector applied to the listed shares of a slot (all of them if the list is empty)."""
        si = check_storage_index(storage_index)
        wanted = check_share_list(si, shares)
        vector = check_read_vector(si, readv)
        with self.lock:
            return slots.read_slot(slots.load_slot(self.layout, si), vector, wanted)

    def slot_testv_and_readv_and_writev(
        self,
        storage_index: bytes,
        secrets: tuple[bytes, bytes, bytes],
        test_and_write_vectors: dict[int, tuple[list[tuple[int, int, bytes, bytes]],
                                                list[tuple[int, bytes]], int | None]],
        read_vector: list[tuple[int, int]],
    ) -> tuple[bool, dict[int, list[bytes]]]:
        """Test, read, then (if every test passed) write, atomically (see slots)."""
        si = check_storage_index(storage_index)
        if not isinstance(secrets, (tuple, list)) or len(secrets) != 3:
            raise BadRequestError(
                f"storage index {layout.si_b2a(si)}: secrets must be (write enabler, "
                f"renew secret, cancel secret)"
            )
        write_enabler, renew_secret, cancel_secret = secrets
        check_secret(si, "write enabler", write_enabler)
        check_secret(si, "renew secret", renew_secret)
        check_secret(si, "cancel secret", cancel_secret)
        vectors = check_test_and_write_vectors(si, test_and_write_vectors)
        readv = check_read_vector(si, read_vector)
        with self.lock:
            existing = slots.load_slot(self.layout, si)
            slots.check_write_enabler(existing, write_enabler)
            if self.readonly and any(
                writes or new_length is not None or shnum not in existing
                for shnum, (_tests, writes, new_length) in vectors.items()
            ):
                raise ReadOnlyError(
                    f"storage index {layout.si_b2a(si)}: this server is read-only and "
                    f"takes no mutable writes"
                )
            passed = slots.tests_pass(vectors, existing)
            read_data = slots.read_slot(existing, readv)
            if not passed:
                return False, read_data
            lease = self._lease(MUTABLE_LEASE_OWNER, renew_secret, cancel_secret)
            updates = [
                slots.SlotUpdate(si, shnum, existing.get(shnum), vector, lease)
                for shnum, vector in sorted(vectors.items())
            ]
            growth = sum(update.growth() for update in updates)
            if growth > 0 and growth > self.space.headroom():
                raise NoSpaceError(
                    f"storage index {layout.si_b2a(si)}: mutable write needs {growth} more "
                    f"bytes, only {self.space.headroom()} available"
                )
            self._apply_slot_updates(si, updates, write_enabler)
            self.space.changed(growth)
            return True, read_data

    def _apply_slot_updates(self, si: bytes, updates: list[slots.SlotUpdate],
                            write_enabler: bytes) -> None:
        built: dict[int, str] = {}
        deleted: list[str] = []
        renewals: list[Callable[[], object]] = []
        try:
            for update in updates:
                share = update.share
                if update.delete:
                    if share is not None:
                        deleted.append(share.path)
                elif update.renew_only:
                    assert share is not None
                    renewals.append(functools.partial(
                        share.renew_lease, update.lease.renew_secret, update.lease.expiration_time
                    ))
                else:
                    built[update.shnum] = temp = self.layout.temp_path()
                    update.build(temp, self.nodeid, write_enabler)
        except BaseException:
            for temp in built.values():
                layout.discard(temp)
            raise
        slots.commit(self.layout, si, built, deleted, renewals)

    # -- corruption advisories -------------------------------------------------

    def advise_corrupt_share(self, share_type: bytes, storage_index: bytes, shnum: int,
                             reason: bytes) -> None:
        """Record a client's corruption report, if this server holds that share,
        then check the share and quarantine it if it fails its own hashes.

        The check reads the whole share (once an hour at most per share): an
        adapter should call this off its event loop thread.
        """
        si = check_storage_index(storage_index)
        check_data(si, "share type", share_type)
        if share_type not in SHARE_TYPES:
            raise BadRequestError(
                f"storage index {layout.si_b2a(si)}: share type {share_type!r:.40} is not "
                f"b'immutable' or b'mutable'"
            )
        check_shnum(si, shnum)
        check_data(si, "reason", reason)
        if len(reason) > MAX_REASON_LENGTH:
            raise BadRequestError(
                f"{where(si, shnum)}: corruption reason of {len(reason)} bytes is longer "
                f"than {MAX_REASON_LENGTH}"
            )
        with self.lock:
            if not os.path.isfile(self.layout.share_path(si, shnum)):
                log.info("ignoring corruption advice for %s, which I do not hold", where(si, shnum))
                return
            report = advisories.render_report(share_type, si, shnum, reason)
            if len(report.encode("utf-8")) > self.space.headroom():
                log.warning("no room to record corruption advice for %s", where(si, shnum))
            else:
                log.warning("client reports corruption in %s %s", share_type.decode(), where(si, shnum))
                advisories.write_report(self.layout, self.clock(), si, shnum, report)
        # shoal: check the share against its own hashes (without the lock) and
        # quarantine it if it is damaged; a false advisory changes nothing
        summary = reason.decode("utf-8", errors="replace").splitlines()[0][:200] if reason else ""
        verdict = self.quarantine.check(si, shnum, f"client advisory: {summary}", trust_recent=True)
        log.info("advisory about %s: share is %s %s", where(si, shnum), verdict.outcome, verdict.detail)

    # -- status --------------------------------------------------------------

    def bucket_counts(self) -> dict[str, Any]:
        """Bucket (storage index) counts from the lease crawler's walk."""
        status = self.crawler.status()
        so_far = status.get("cycle-to-date", {})
        return {
            "last-complete-bucket-count": status["last-complete-bucket-count"],
            "cycle-in-progress": status["cycle-in-progress"],
            "cycle-to-date-bucket-count": so_far.get("buckets-examined", 0) - so_far.get("buckets-removed", 0),
        }

    def stats(self) -> dict[str, int | None]:
        """Numbers for status pages and metrics, named as Tahoe's get_stats names them."""
        with self.lock:
            result: dict[str, int | None] = {
                "storage_server.allocated": self.space.pending,
                "storage_server.reserved_space": self.space.reserved_space,
                "storage_server.max_space": self.space.max_space,
                "storage_server.used_space": self.space.used,
                "storage_server.uploads_in_progress": len(self._writers),
            }
            try:
                disk = self.space.disk_stats()
                writeable = disk["avail"] > 0
                for name in ("total", "used", "free_for_root", "free_for_nonroot", "avail"):
                    result[f"storage_server.disk_{name}"] = disk[name]
            except OSError:
                writeable = False
            if self.readonly:
                result["storage_server.disk_avail"] = 0
                writeable = False
            result["storage_server.accepting_immutable_shares"] = int(writeable)
            result["storage_server.available_space"] = self.available_space()
            count = self.crawler.state["last-complete-bucket-count"]
            if count:
                result["storage_server.total_bucket_count"] = count
            # shoal: shares checked and quarantined since start (advisories and scrubber)
            result["storage_server.shares_checked"] = self.quarantine.counts["checked"]
            result["storage_server.shares_quarantined"] = self.quarantine.counts["quarantined"]
            return result

    def shutdown(self) -> None:
        """Abort uploads in progress and save the crawlers' state."""
        with self.lock:
            self.abort_all_writers()
            self.crawler.save()
            self.scrubber.save()


__all__ = ["StorageServer", "BucketWriter", "BucketReader", "StorageError"]
