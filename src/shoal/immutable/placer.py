"""The network side of immutable share placement: ask servers, feed the Planner.

`SharePlacement.place()` consults the first 2N servers of the permuted ring
for a storage index (see shoal.immutable.upload for the whole procedure):
allocate_buckets to the servers the planner names (with Tahoe's per-server
lease secrets), get_buckets to the others, more allocate_buckets while the
planner re-plans, then it aborts the writers the final plan does not need. It
keeps the bucket writers and readers it got and says what every server
answered; `replace()` asks for new homes for shares lost while pushing. The
placement policy (shoal.placement.policy) configures the planner: a fresh
upload's or a repair's. Every query goes through the server's StorageClient,
whose deadlines apply.
"""

from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

import attrs
from twisted.internet import defer

from shoal.crypto import hashes
from shoal.encoding.base32 import b2a
from shoal.errors import Fault, GridError, GridFullError, ShoalError
from shoal.formats.errors import FormatError
from shoal.grid.storage_broker import GridServer, StorageBroker
from shoal.grid.storage_client import BucketReader, BucketWriter, ServerFull, StorageClient
from shoal.immutable.encoder import ImmutableEncoder, ueb_length
from shoal.immutable.params import FileShape
from shoal.immutable.push import error_text, gather
from shoal.placement import unhappy
from shoal.placement.happiness import Plan, Planner, ServerAnswer
from shoal.placement.policy import PlacementPolicy

CONTAINER_SLACK = 4096  # more than a share container's header and a lease take beyond the share
MAX_PLACEMENT_ROUNDS = 16  # a safety net: each round asks servers never asked for these shares


class UploadError(ShoalError):
    """An immutable upload failed."""


class NoServersError(UploadError, GridError):
    """No storage server is connected."""


class UploadUnhappinessError(UploadError, GridError):
    """Shares could not be placed on shares.happy servers; says what each server answered."""


class UploadFullError(UploadUnhappinessError, GridFullError):
    """Unhappy because servers lacked space: some refused shares (or announced
    too little space, or failed saying they had no room) and none failed in
    any other way."""


def unhappiness_error(message: str, answers: Iterable[ServerAnswer[bytes]]) -> UploadUnhappinessError:
    """The error for an unhappy placement: UploadFullError when space was what
    the servers lacked (see its docstring), else UploadUnhappinessError."""
    answers = list(answers)
    short_of_space = any(a.refused or a.readonly or a.full for a in answers)
    other_failures = any(((a.error is not None or a.dropped) and not a.full) or a.busy for a in answers)
    if short_of_space and not other_failures:
        return UploadFullError(message)
    return UploadUnhappinessError(message)


class ExistingSharesError(UploadError):
    """Shares already stored under this storage index do not belong to this file
    (a server holds bogus shares)."""

    fault = Fault.SERVER


@attrs.frozen
class ServerReport:
    """One server consulted during placement and what it answered."""

    server_id: bytes
    name: str
    asked: frozenset[int]
    already: frozenset[int]
    allocated: frozenset[int]
    error: str | None
    answer: str  # one line: "allocated sh0, already had sh5" / "full: refused sh3" / "error: ..."
    dropped: frozenset[int] = frozenset()  # shares lost while writing (failed, or given up as a straggler)


def _max_share_size(server: GridServer) -> int | None:
    return server.version.maximum_immutable_share_size if server.version is not None else None


class SharePlacement:
    """The network side of placement: queries servers, feeds the Planner, keeps the writers."""

    def __init__(
        self,
        broker: StorageBroker,
        storage_index: bytes,
        shape: FileShape,
        allocated_size: int,
        lease_secret: bytes,
        policy: PlacementPolicy[bytes],
    ) -> None:
        self.si = storage_index
        self.shape = shape
        self.allocated_size = allocated_size
        self.happy = policy.happy
        candidates = [s for s in broker.get_servers_for_psi(storage_index) if s.storage is not None]
        candidates = candidates[: 2 * shape.n]
        if not candidates:
            raise NoServersError("no storage servers are connected")
        self.servers: dict[bytes, GridServer] = {s.server_id: s for s in candidates}
        self.order = [s.server_id for s in candidates]
        writable = set()
        for s in candidates:
            limit = _max_share_size(s)
            if limit is None or limit >= allocated_size:
                writable.add(s.server_id)
        self.planner: Planner[bytes] = policy.planner(self.order, shape.n, writable)
        file_renew = hashes.file_renewal_secret(hashes.client_renewal_secret(lease_secret), storage_index)
        file_cancel = hashes.file_cancel_secret(hashes.client_cancel_secret(lease_secret), storage_index)
        self.renew = {s.server_id: hashes.bucket_renewal_secret(file_renew, s.tubid) for s in candidates}
        self.cancel = {s.server_id: hashes.bucket_cancel_secret(file_cancel, s.tubid) for s in candidates}
        self.writers: dict[tuple[bytes, int], BucketWriter] = {}
        self.readers: dict[bytes, dict[int, BucketReader]] = {}

    def _storage(self, sid: bytes) -> StorageClient:
        client = self.servers[sid].storage
        assert client is not None  # candidates all had one
        return client

    async def _allocate(self, sid: bytes, shares: frozenset[int]) -> None:
        self.planner.sent_allocate(sid, shares)
        try:
            allocation = await self._storage(sid).allocate_buckets(
                self.si, self.renew[sid], self.cancel[sid], frozenset(shares), self.allocated_size
            )
        except Exception as e:
            self.planner.failed(sid, error_text(e), full=isinstance(e, ServerFull))
            return
        already = set(allocation.already)
        granted = {}
        for sh, writer in allocation.writers.items():
            if sh in shares:
                granted[sh] = writer
            else:  # not asked for: give it back
                self._abort_writer(writer)
        refused = set(shares) - already - set(granted)
        busy = bool(refused) and await self._has_room_for(sid, len(refused))
        self.planner.got_allocate(sid, shares, already, granted, busy=busy)
        for sh, writer in granted.items():
            self.writers[(sid, sh)] = writer

    async def _has_room_for(self, sid: bytes, count: int) -> bool:
        """Whether a server that just refused `count` shares says (asked again
        now) it has room for them all: then they were refused because another
        client is uploading them (Tahoe 1.20's server gives a share being
        written to nobody else and counts it neither held nor allocated), not
        for want of space. A server that cannot say counts as full."""
        try:
            version = await self._storage(sid).get_version()
        except Exception:
            return False
        room = version.available_space
        return room is not None and room >= count * (self.allocated_size + CONTAINER_SLACK)

    async def _get_buckets(self, sid: bytes) -> None:
        try:
            readers = await self._storage(sid).get_buckets(self.si)
        except Exception as e:
            self.planner.failed(sid, error_text(e))
            return
        self.readers[sid] = readers
        self.planner.got_buckets(sid, list(readers))

    def _abort_writer(self, writer: BucketWriter) -> "defer.Deferred[Any]":
        d = writer.abort()
        d.addErrback(lambda _f: None)
        return d

    async def _gather(self, coros: Sequence[Coroutine[Any, Any, None]]) -> None:
        await gather([defer.ensureDeferred(c) for c in coros])

    async def place(self) -> Plan[bytes]:
        """Consult the servers until nothing is left to ask; abort every writer
        and raise UploadUnhappinessError if the result is not happy."""
        try:
            return await self._place()
        except UploadUnhappinessError:
            raise
        except BaseException:
            await self.abort_all()
            raise

    async def _place(self) -> Plan[bytes]:
        planner = self.planner
        first = planner.requests()
        await self._gather(
            [self._allocate(sid, shares) for sid, shares in first.items()]
            + [self._get_buckets(sid) for sid in self.order if sid not in first]
        )
        await self._ask()
        plan = planner.plan()
        await self._abandon(planner.unneeded(plan))
        happiness = planner.happiness()
        if happiness < self.happy:
            await self.abort_all()
            raise unhappiness_error(self.failure_message(happiness), self.planner.answers.values())
        return plan

    async def _ask(self, wanted: Callable[[bytes, int], bool] | None = None) -> None:
        """Send the allocate_buckets calls the planner asks for (those `wanted`,
        when given) until it asks for none."""
        for _ in range(MAX_PLACEMENT_ROUNDS):
            requests = self.planner.requests()
            if wanted is not None:
                requests = {sid: frozenset(sh for sh in shares if wanted(sid, sh)) for sid, shares in requests.items()}
                requests = {sid: shares for sid, shares in requests.items() if shares}
            if not requests:
                break
            await self._gather([self._allocate(sid, shares) for sid, shares in requests.items()])

    async def _abandon(self, unneeded: dict[bytes, frozenset[int]]) -> None:
        aborts = []
        for sid, shares in unneeded.items():
            for sh in shares:
                aborts.append(self._abort_writer(self.writers.pop((sid, sh))))
            self.planner.abandon(sid, shares)
        await defer.DeferredList(aborts)

    async def abort_all(self) -> None:
        writers, self.writers = self.writers, {}
        await defer.DeferredList([self._abort_writer(w) for w in writers.values()])

    # -- while pushing --

    def drop(self, sid: bytes, shnum: int, why: str, full: bool = False) -> None:
        """A share's writer failed while pushing (`full`: for want of space): it is not on that server."""
        self.writers.pop((sid, shnum), None)
        self.planner.drop(sid, shnum, why, full)

    def lost_error(self) -> UploadUnhappinessError:
        """The error for shares lost beyond what happiness allows."""
        happiness = self.planner.happiness()
        return unhappiness_error(self.failure_message(happiness, lost=True), self.planner.answers.values())

    async def replace(self, lost: frozenset[int]) -> dict[int, tuple[bytes, BucketWriter]]:
        """New writers for shares lost while pushing, where the planner now
        puts them and only where that raises happiness (a lost share is not
        doubled up on a server that has one): shnum -> (server id, writer).
        Writers granted here that the plan does not use are aborted; writers
        granted before are left alone (they are being pushed). Raises the
        lost-share unhappiness error when happiness stays below the target."""
        planner = self.planner

        def raises_happiness(sid: bytes, sh: int) -> bool:
            return sh in lost and planner.happiness({sid: {sh}}) > planner.happiness()

        before = set(self.writers)
        await self._ask(raises_happiness)
        plan = self.planner.plan()
        granted = {pair for pair in self.writers if pair not in before}
        kept = {(sid, sh) for sid, shares in plan.keep.items() for sh in shares} & granted
        unneeded: dict[bytes, set[int]] = {}
        for sid, sh in sorted(granted - kept):
            unneeded.setdefault(sid, set()).add(sh)
        await self._abandon({sid: frozenset(shares) for sid, shares in unneeded.items()})
        if self.planner.happiness() < self.happy:
            raise self.lost_error()
        return {sh: (sid, self.writers[(sid, sh)]) for sid, sh in sorted(kept)}

    # -- reporting --

    def failure_message(self, happiness: int, lost: bool = False) -> str:
        """Tahoe 1.20's sentence (shoal.placement.unhappy), then shoal's account of each server."""
        k, n = self.shape.k, self.shape.n
        planner = self.planner
        with_shares = [s for s, a in planner.answers.items() if a.already or a.allocated]
        names = {sid: s.label for sid, s in self.servers.items()}
        sentence = unhappy.failure_message(len(with_shares), k, self.happy, happiness)
        head = (f"{sentence}: shares were lost while writing" if lost
                else f"server selection failed for upload {b2a(self.si)}: {sentence}")
        return (
            f"{head} ({k}-of-{n} with shares.happy={self.happy}: servers-of-happiness {happiness} "
            f"from {len(with_shares)} server(s); asked {len(self.order)} server(s): "
            f"{planner.describe(names)})"
        )

    def reports(self) -> list[ServerReport]:
        out = []
        for sid in self.order:
            a = self.planner.answers[sid]
            out.append(ServerReport(
                server_id=sid,
                name=self.servers[sid].label,
                asked=frozenset(a.asked),
                already=frozenset(a.already),
                allocated=frozenset(a.allocated),
                error=a.error,
                answer=a.describe(),
                dropped=frozenset(a.dropped),
            ))
        return out

    # -- existing shares --

    async def read_ueb(self, sid: bytes, shnum: int, encoder: ImmutableEncoder) -> bytes:
        """The UEB stored in share shnum on server sid (checked against the layout we expect)."""
        name = self.servers[sid].label
        readers = self.readers.get(sid)
        if readers is None or shnum not in readers:
            readers = await self._storage(sid).get_buckets(self.si)
            self.readers[sid] = readers
        reader = readers.get(shnum)
        if reader is None:
            raise ExistingSharesError(f"server {name} no longer holds share {shnum}")
        layout = encoder.layout
        expected_length = ueb_length(self.shape)
        header, tail = await gather([
            reader.read(0, layout.header_size),
            reader.read(layout.uri_extension, layout.field_size + expected_length),
        ])
        if header != encoder.header:
            raise ExistingSharesError(
                f"share {shnum} on server {name} does not have the layout this file needs"
            )
        try:
            length = layout.parse_ueb_length(tail[: layout.field_size])
        except FormatError as e:
            raise ExistingSharesError(f"share {shnum} on server {name}: {e}") from None
        ueb = tail[layout.field_size :]
        if length != expected_length or len(ueb) != length:
            raise ExistingSharesError(
                f"share {shnum} on server {name} holds a UEB of {len(ueb)} of {length} bytes, "
                f"expected {expected_length}"
            )
        return bytes(ueb)
