"""The upload helper of Tahoe-LAFS 1.20 (its ``immutable/offloaded.py``), transport-free.

A client on a slow uplink sends the ciphertext once to a helper, which
encodes it and pushes the n/k-times-larger shares to the storage servers.

- ``Helper.upload_chk(storage_index)`` first looks for the file in the grid
  (get_buckets on every connected server; the UEB read from two servers,
  which must agree, where Tahoe reads one): when at least
  ``total_shares`` distinct shares are found, the answer is the existing
  file's results and no upload helper (nothing is sent). Otherwise the answer
  is the ``UploadHelper`` of that storage index (the running one, if any).
- ``UploadHelper.upload(reader)`` pulls ciphertext from the client's reader
  (RIEncryptedUploadable: get_size, get_all_encoding_parameters,
  read_encrypted(offset, length), close) in ``chunk_size`` pieces into
  ``helper/CHK_incoming/<b32 SI>``, moves the whole file to
  ``helper/CHK_encoding/<b32 SI>``, encodes it with shoal's encoder (the
  cipher passes ciphertext through) and places and pushes the shares with
  shoal's ``ShareUpload``; the answer is the upload results (UEB hash, UEB
  fields, sharemap). The encoding file is deleted once the shares are placed.
- **Resume**: an incoming file left by a broken connection is kept; the next
  upload of that storage index asks only for the bytes after it (Tahoe's
  ``chk_upload_helper.resumes`` counter). A file left in CHK_encoding (the
  push failed) is encoded again without fetching anything.

Every number a client sends is checked before use (size, k, happy, n,
segment size, the lengths of the answers to read_encrypted); a file larger
than the helper's free disk space, and uploads past ``max_active`` at once,
are refused. The helper
cannot check that the ciphertext belongs to the storage index (it holds no
key), exactly as in Tahoe.
"""

import os
import shutil
import time
from collections.abc import Awaitable, Sequence
from typing import Any, BinaryIO, Protocol

from twisted.internet import defer, threads
from twisted.python import log
from twisted.python.failure import Failure

from shoal import cpu
from shoal.caps import CHKVerifierCap
from shoal.crypto import hashes
from shoal.encoding.base32 import b2a
from shoal.errors import Fault, ShoalError
from shoal.formats.share_layout import V2_HEADER_SIZE, ShareLayout
from shoal.formats.ueb import unpack_ueb
from shoal.grid.storage_broker import StorageBroker
from shoal.immutable.encoder import AlreadyEncrypted, ImmutableEncoder
from shoal.immutable.params import FileShape
from shoal.immutable.push import gather
from shoal.immutable.share_upload import ShareSource, ShareUpload
from shoal.immutable.upload import _crypttext_hashes, existing_ueb
from shoal.placement.policy import PlacementPolicy
from shoal.protocol.helper import HelperResults

CHUNK_SIZE = 256 * 1024  # bytes per read_encrypted (Tahoe's helper asks 50 KiB)
MAX_SEGMENT_SIZE = 64 * 1024 * 1024  # a client's segment size above this is refused (memory)
MAX_FILE_SIZE = 2**50
MAX_ACTIVE = 64  # uploads under way at once; more are refused (each holds a file on disk)
UEB_COPIES = 2  # servers whose UEBs must agree before a file counts as in the grid
OLD = 2 * 86400  # Tahoe's "_old" sizes: files untouched for 48 hours

COUNTERS = (
    "chk_upload_helper.upload_requests",
    "chk_upload_helper.upload_already_present",
    "chk_upload_helper.upload_need_upload",
    "chk_upload_helper.resumes",
    "chk_upload_helper.fetched_bytes",
    "chk_upload_helper.encoded_bytes",
)


class HelperError(ShoalError):
    """An upload through this helper failed; the message says why."""

    fault = Fault.GRID


class BadUploadable(HelperError):
    """The client's uploadable answered something unusable (its fault)."""

    fault = Fault.CALLER


class CiphertextReader(Protocol):
    """The client's RIEncryptedUploadable as the helper calls it (any failure: the reader is gone)."""

    def get_size(self) -> Awaitable[Any]: ...

    def get_all_encoding_parameters(self) -> Awaitable[Any]: ...

    def read_encrypted(self, offset: int, length: int) -> Awaitable[Any]: ...

    def close(self) -> Awaitable[Any]: ...


def _int(value: object, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadUploadable(f"the uploadable's {what} {value!r} is not in {low}..{high}")
    return value


def check_parameters(answer: object, size: int) -> tuple[FileShape, int]:
    """(shape, happy) from get_all_encoding_parameters' (k, happy, n, segment size)."""
    if not isinstance(answer, tuple | list) or len(answer) != 4:
        raise BadUploadable("get_all_encoding_parameters did not answer (k, happy, n, segment_size)")
    k = _int(answer[0], "k", 1, 256)
    happy = _int(answer[1], "happy", 1, 256)
    n = _int(answer[2], "n", k, 256)
    if happy > n:
        raise BadUploadable(f"the uploadable's happy {happy} is above n {n}")
    segment_size = _int(answer[3], "segment size", k, MAX_SEGMENT_SIZE)
    if segment_size % k:
        raise BadUploadable(f"the uploadable's segment size {segment_size} is not a multiple of k {k}")
    return FileShape(size, k, n, segment_size), happy


class Helper:
    """One node's upload helper: its directories, running uploads and Tahoe's counters."""

    def __init__(
        self, basedir: str, broker: StorageBroker, lease_secret: bytes, *, chunk_size: int = CHUNK_SIZE,
        max_active: int = MAX_ACTIVE,
    ) -> None:
        self.incoming_dir = os.path.join(basedir, "CHK_incoming")
        self.encoding_dir = os.path.join(basedir, "CHK_encoding")
        os.makedirs(self.incoming_dir, exist_ok=True)
        os.makedirs(self.encoding_dir, exist_ok=True)
        self.broker = broker
        self.lease_secret = lease_secret
        self.chunk_size = chunk_size
        self.max_active = max_active
        self.active: dict[bytes, UploadHelper] = {}
        self.counters = dict.fromkeys(COUNTERS, 0)

    def count(self, name: str, value: int = 1) -> None:
        self.counters[name] += value

    async def upload_chk(self, storage_index: bytes) -> tuple[HelperResults | None, "UploadHelper | None"]:
        """Tahoe's RIHelper.upload_chk (see the module docstring)."""
        if len(storage_index) != 16:
            raise BadUploadable(f"a storage index is 16 bytes, not {len(storage_index)}")
        self.count("chk_upload_helper.upload_requests")
        if storage_index in self.active:
            return None, self.active[storage_index]
        found = await self._check(storage_index)
        if found is not None:
            self.count("chk_upload_helper.upload_already_present")
            return found, None
        self.count("chk_upload_helper.upload_need_upload")
        uh = self.active.get(storage_index)
        if uh is None:
            if len(self.active) >= self.max_active:
                raise HelperError(f"the helper is busy: {len(self.active)} uploads under way; try again later")
            si = b2a(storage_index)
            uh = UploadHelper(self, storage_index, os.path.join(self.incoming_dir, si),
                              os.path.join(self.encoding_dir, si))
            self.active[storage_index] = uh
        return None, uh

    def upload_finished(self, storage_index: bytes, size: int) -> None:
        """Called by an UploadHelper when it ends (size 0: it failed)."""
        self.count("chk_upload_helper.encoded_bytes", size)
        self.active.pop(storage_index, None)

    async def _check(self, storage_index: bytes) -> HelperResults | None:
        """The existing file's results when at least total_shares distinct shares are in the grid."""
        sharemap: dict[int, set[bytes]] = {}
        readers: list[tuple[bytes, Any]] = []  # (server id, one of its shares' readers)

        async def ask(server: Any) -> None:
            try:
                buckets = await server.connected_storage("get_buckets").get_buckets(storage_index)
            except Exception:  # unreachable or broken: it holds nothing we can use
                return
            for shnum, reader in buckets.items():
                sharemap.setdefault(shnum, set()).add(server.server_id)
                readers.append((server.server_id, reader))

        await gather([defer.ensureDeferred(ask(s)) for s in self.broker.get_servers_for_psi(storage_index)])
        uebs: dict[bytes, bytes] = {}  # server id -> the UEB one of its shares holds
        for sid, reader in readers:
            if len(uebs) >= UEB_COPIES or sid in uebs:
                continue
            try:
                uebs[sid] = await _read_ueb(reader)
            except Exception:  # this share's UEB is unreadable: try another server's
                continue
        want = min(UEB_COPIES, len({sid for sid, _ in readers}))
        if not uebs or len(uebs) < want or len(set(uebs.values())) != 1:
            return None  # unreadable or disagreeing: not healthy; an upload sorts it out
        ueb = next(iter(uebs.values()))
        try:
            fields = unpack_ueb(ueb)
        except Exception:
            return None
        total = fields.get("total_shares")
        if not isinstance(total, int) or len(sharemap) < total:
            return None
        return HelperResults(
            uri_extension_hash=hashes.uri_extension_hash(ueb),
            uri_extension_data=dict(fields),
            sharemap={sh: frozenset(ids) for sh, ids in sorted(sharemap.items())},
            preexisting_shares=len(sharemap),
            pushed_shares=0,
        )

    def stats(self) -> dict[str, int]:
        """Tahoe's helper statistics (the same names)."""
        now = time.time()
        out: dict[str, int] = {"chk_upload_helper.active_uploads": len(self.active)}
        for kind, path in (("incoming", self.incoming_dir), ("encoding", self.encoding_dir)):
            count = size = old = 0
            for entry in os.scandir(path):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                count += 1
                size += st.st_size
                if now - st.st_mtime > OLD:
                    old += st.st_size
            out[f"chk_upload_helper.{kind}_count"] = count
            out[f"chk_upload_helper.{kind}_size"] = size
            out[f"chk_upload_helper.{kind}_size_old"] = old
        out.update(self.counters)
        return out

    def status(self) -> list[dict[str, Any]]:
        """One line per active upload, for the status page."""
        return [uh.status() for uh in self.active.values()]


async def _read_ueb(reader: Any) -> bytes:
    header = await reader.read(0, V2_HEADER_SIZE)
    layout = ShareLayout.parse(header)
    length = layout.parse_ueb_length(await reader.read(*layout.ueb_length_range()))
    ueb = await reader.read(layout.uri_extension + layout.field_size, length)
    if len(ueb) != length:
        raise HelperError("short UEB")
    return bytes(ueb)


class UploadHelper:
    """Tahoe's CHKUploadHelper: one storage index's fetch, encode and push."""

    def __init__(self, helper: Helper, storage_index: bytes, incoming: str, encoding: str) -> None:
        self.helper = helper
        self.storage_index = storage_index
        self.incoming = incoming
        self.encoding = encoding
        self.started = time.time()
        self.phase = "waiting for ciphertext"
        self.size: int | None = None
        self.fetched = 0
        self._readers: list[CiphertextReader] = []
        self._waiters: list[defer.Deferred[HelperResults]] = []
        self._running = False
        self._last_failure = ""

    def status(self) -> dict[str, Any]:
        have = self.size if os.path.exists(self.encoding) else _file_size(self.incoming)
        return {"storage_index": b2a(self.storage_index), "phase": self.phase, "size": self.size,
                "have": have, "fetched": self.fetched, "started": self.started}

    def upload(self, reader: CiphertextReader) -> "defer.Deferred[HelperResults]":
        """Tahoe's RICHKUploadHelper.upload: fires with the results once the shares are placed."""
        self._readers.append(reader)
        d: defer.Deferred[HelperResults] = defer.Deferred()
        self._waiters.append(d)
        if not self._running:
            self._running = True
            defer.ensureDeferred(self._run()).addBoth(self._fire)
        return d

    def _fire(self, outcome: Any) -> None:
        self._running = False
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)

    async def _call(self, method: str, *args: Any) -> Any:
        """Ask the first reader; a failing reader is dropped and the next asked (Tahoe's AskUntilSuccess)."""
        while self._readers:
            reader = self._readers[0]
            try:
                return await getattr(reader, method)(*args)
            except Exception as e:
                self._last_failure = str(e).splitlines()[0] if str(e) else type(e).__name__
                if reader in self._readers:
                    self._readers.remove(reader)
        raise HelperError(f"the client went away while the helper was fetching its ciphertext "
                          f"(last failure: {self._last_failure or 'none'})")

    async def _run(self) -> HelperResults:
        size = 0
        try:
            t0 = time.monotonic()
            if not os.path.exists(self.encoding):
                await self._fetch()
            t_fetch = time.monotonic() - t0
            size = _file_size(self.encoding)
            self.size = size
            results = await self._encode_and_push(size, t_fetch)
            for reader in list(self._readers):
                try:
                    await reader.close()
                except Exception:
                    pass
            os.unlink(self.encoding)
        except BaseException:
            self.helper.upload_finished(self.storage_index, 0)
            raise
        finally:
            self._readers = []
        self.helper.upload_finished(self.storage_index, size)
        return results

    async def _fetch(self) -> None:
        self.phase = "fetching ciphertext"
        size = _int(await self._call("get_size"), "size", 1, MAX_FILE_SIZE)
        self.size = size
        have = _file_size(self.incoming)
        if have > size:  # not this file's: start again
            os.unlink(self.incoming)
            have = 0
        elif have:
            self.helper.count("chk_upload_helper.resumes")
            log.msg(f"helper: resuming SI {b2a(self.storage_index)[:5]} at {have} of {size} bytes")
        free = (await threads.deferToThread(shutil.disk_usage, os.path.dirname(self.incoming))).free
        if size - have > free:
            raise HelperError(f"the helper has {free} bytes of disk free, too few for a file of {size} bytes")
        with open(self.incoming, "ab") as f:  # the disk work goes to a thread: a slow disk never stalls the reactor
            while have < size:
                want = min(self.helper.chunk_size, size - have)
                answer = await self._call("read_encrypted", have, want)
                if not isinstance(answer, list | tuple) or not all(isinstance(s, bytes) for s in answer):
                    raise BadUploadable("read_encrypted did not answer a list of strings")
                got = sum(len(s) for s in answer)
                if got > want or got == 0:
                    raise BadUploadable(f"read_encrypted({have}, {want}) answered {got} bytes")
                await threads.deferToThread(_append, f, answer)
                have += got
                self.fetched += got
                self.helper.count("chk_upload_helper.fetched_bytes", got)
            await cpu.run(os.fsync, f.fileno())  # the whole file on disk before it counts as fetched
        os.rename(self.incoming, self.encoding)

    async def _encode_and_push(self, size: int, t_fetch: float) -> HelperResults:
        self.phase = "encoding and pushing"
        t0 = time.monotonic()
        shape, happy = check_parameters(await self._call("get_all_encoding_parameters"), size)
        si = self.storage_index
        with open(self.encoding, "rb") as stream:
            shares = ShareUpload(
                self.helper.broker, si, shape, self.helper.lease_secret, PlacementPolicy.upload(happy),
                ShareSource(stream, 0, lambda: ImmutableEncoder(bytes(16), shape, AlreadyEncrypted())),
            )
            plan = await shares.place()
            sharemap = {sh: {sid} for sid, held in plan.relied.items() for sh in held}
            try:
                if plan.keep:
                    pushed = await shares.push(plan)
                    ueb = pushed.encoded.ueb
                    for sh, sid in pushed.shares_pushed.items():
                        sharemap.setdefault(sh, set()).add(sid)
                    pushed_count = len(pushed.shares_pushed)
                else:  # every share the plan needs is there already
                    hashes_d = _ciphertext_hashes(stream, shape)
                    ueb, _ = await existing_ueb(shares.placement, plan, shares.encoder, hashes_d)
                    pushed_count = 0
            except BaseException:
                await shares.abort()
                raise
        ueb_hash = hashes.uri_extension_hash(ueb)
        servermap: dict[bytes, set[int]] = {}
        for sh, ids in sharemap.items():
            for sid in ids:
                servermap.setdefault(sid, set()).add(sh)
        verifier = CHKVerifierCap(si, ueb_hash, shape.k, shape.n, size)
        return HelperResults(
            uri_extension_hash=ueb_hash,
            uri_extension_data=dict(unpack_ueb(ueb)),
            sharemap={sh: frozenset(ids) for sh, ids in sorted(sharemap.items())},
            servermap={sid: frozenset(shs) for sid, shs in servermap.items()},
            preexisting_shares=shares.preexisting_shares(),
            pushed_shares=pushed_count,
            file_size=size,
            ciphertext_fetched=self.fetched,
            timings={"cumulative_fetch": t_fetch, "total_fetch": t_fetch, "total": time.monotonic() - t0 + t_fetch},
            verifycapstr=verifier.to_string().encode("ascii"),
        )


def _ciphertext_hashes(stream: BinaryIO, shape: FileShape) -> "defer.Deferred[tuple[bytes, bytes]]":
    d: defer.Deferred[tuple[bytes, bytes]] = cpu.run(_crypttext_hashes, stream, 0, None, shape)
    return d


def _append(f: BinaryIO, pieces: Sequence[bytes]) -> None:
    for piece in pieces:
        f.write(piece)
    f.flush()


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
