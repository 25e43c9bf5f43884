"""Finding the shares of an immutable file and carrying out the fetch planner's actions.

One get_buckets query per connected server (through its StorageClient, whose
deadlines apply), all sent together; every answer adds its shares as
readers (RemoteShare) and is told to the planner (shoal.immutable.fetch_plan),
as is every share that opens or fails. The finder carries out what the
planner answers: it starts the driver's open of a share (download, verify
and repair each open their way), reports corrupt shares to their servers,
runs the grace timer, and turns giving up into the NotEnoughSharesError
message: how many shares were found on which servers and what went wrong
with each rejected one. Waiters are woken on every change.
"""

import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from twisted.internet import defer

from shoal.encoding.base32 import b2a
from shoal.grid.storage_client import (
    BucketReader,
    ServerError,
    ServerRefused,
    ServerUnreachable,
    UnlistedReads,
)
from shoal.immutable.decoder import FileValidator, NotEnoughSharesError, UEBMismatchError
from shoal.immutable.fetch_plan import (
    Action,
    Event,
    FetchPlanner,
    FindingStarted,
    GiveUp,
    GraceOver,
    Open,
    QueryFailed,
    ReportCorrupt,
    ShareFailed,
    ShareKey,
    ShareOpened,
    ShareSeen,
    SharesFound,
    StartTimer,
)
from shoal.immutable.remote_share import RemoteShare, ShareProblem, describe, tolerates_overrun

ADVISORY_WAIT = 5.0  # at the end, wait this long at most for corruption reports to be delivered

Opener = Callable[[RemoteShare], Awaitable[None]]


@attrs.frozen
class ShareFailure:
    """A share given up on, and why."""

    shnum: int
    server_id: bytes
    nickname: str
    kind: str  # "corrupt", "timeout", "unreachable" or "error"
    reason: str


async def _nothing(share: RemoteShare) -> None:
    return None


class ShareFinder:
    def __init__(
        self,
        broker: Any,
        storage_index: bytes,
        file: FileValidator,
        *,
        report_corruption: bool,
        planner: FetchPlanner | None = None,
        opener: Opener = _nothing,
        guess_read: int | None = None,
    ) -> None:
        """guess_read: for a small file, the length of the read that opens a share whole;
        then share i (i < k) is read from the i-th server of the permuted ring (where an
        upload to a healthy grid puts it) together with the listing queries."""
        self.broker = broker
        self.storage_index = storage_index
        self.file = file
        self.k = file.identity.k
        self.n = file.identity.n
        self.timer = broker.timer
        self.report_corruption = report_corruption
        self.planner = planner or FetchPlanner(self.k, self.n, want=0)
        self.opener = opener
        self.shares: list[RemoteShare] = []  # in the order found
        self.by_key: dict[ShareKey, RemoteShare] = {}
        self.names: dict[bytes, str] = {}  # server id -> "nickname (short id)"
        self.no_answer: dict[bytes, str] = {}  # server id -> why it did not answer
        self.asked = 0
        self.fatal: BaseException | None = None  # a UEB that proves the cap wrong
        self._events: deque[Event] = deque()
        self._feeding = False
        self._waiters: list[defer.Deferred[None]] = []
        self._advisories: list[defer.Deferred[None]] = []
        self._queries: list[defer.Deferred[None]] = []
        self._opens: list[defer.Deferred[None]] = []
        self._grace_call: Any = None
        self._finished = False
        self.guess_read = guess_read
        self._guesses: dict[ShareKey, defer.Deferred[Any]] = {}  # guessed reads not answered yet
        self._guess_waiters: dict[ShareKey, defer.Deferred[bytes]] = {}  # listed while its guess is out

    # -- the planner -----------------------------------------------------

    def feed(self, event: Event) -> None:
        """Tell the planner; carry out its actions (events they cause queue up)."""
        if self._finished:
            return  # nothing more is opened or reported
        self._events.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._events:
                for action in self.planner.handle(self._events.popleft()):
                    self._act(action)
        finally:
            self._feeding = False
        self.notify()

    def _act(self, action: Action) -> None:
        if isinstance(action, Open):
            share = self.by_key[action.share]
            self._opens.append(defer.ensureDeferred(self._open(share)))
        elif isinstance(action, ReportCorrupt):
            if self.report_corruption:
                self._advisories.append(self.by_key[action.share].advise_corrupt(action.reason))
        elif isinstance(action, StartTimer):
            self._grace_call = self.timer.callLater(action.seconds, self.feed, GraceOver())
        elif isinstance(action, GiveUp):
            pass  # the planner keeps it; waiters see it in until_ready
        else:
            raise TypeError(f"not a fetch action: {action!r}")

    async def _open(self, share: RemoteShare) -> None:
        try:
            await self.opener(share)
        except UEBMismatchError as e:
            self.fatal = e
            self.notify()
            return
        except ShareProblem as p:
            self.fail(share, p)
            return
        except defer.CancelledError:
            return
        except Exception as e:  # a bug: lose the share, keep the others going
            self.fail(share, ShareProblem(f"{share.label}: unexpected {describe(e)}"))
            return
        self.feed(ShareOpened(share.key))

    def fail(self, share: RemoteShare, problem: ShareProblem) -> None:
        """Give up on a share (the planner reports it, once, if it is corrupt)."""
        share.discard_early()
        self.feed(ShareFailed(share.key, problem.kind, str(problem)))

    def share(self, key: ShareKey) -> RemoteShare:
        return self.by_key[key]

    async def until_ready(self) -> None:
        """Wait until the planner has the shares it wants open; raise the fatal
        error, or NotEnoughSharesError once it gives up."""
        while True:
            if self.fatal is not None:
                raise self.fatal
            gave_up = self.planner.gave_up
            if gave_up is not None:
                raise self.not_enough(gave_up.have, gave_up.need)
            if self.planner.ready:
                return
            await self.changed()

    async def settled(self) -> None:
        """Wait until every open started so far has ended."""
        await defer.DeferredList(list(self._opens), consumeErrors=True)

    # -- waiting ---------------------------------------------------------

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if not d.called:
                d.callback(None)

    async def changed(self) -> None:
        """Wait for the next change."""
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        await d

    # -- queries ---------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """Some servers have not answered yet."""
        return self.planner.waiting

    def start(self) -> None:
        servers = list(self.broker.get_servers_for_psi(self.storage_index))
        self.asked = len(servers)
        self.feed(FindingStarted(len(servers), time.monotonic()))
        if self.guess_read is not None:
            for shnum, server in enumerate(servers[: self.k]):
                self._guess(server, shnum, self.guess_read)
        for server in servers:
            self.names[server.server_id] = f"{server.nickname or '?'} ({server.name})"
            try:
                d = server.connected_storage("get_buckets").get_buckets(self.storage_index)
            except ServerUnreachable as e:  # lost a moment ago
                d = defer.fail(e)
            d.addCallbacks(self._got_buckets, self._no_buckets, callbackArgs=(server,), errbackArgs=(server,))
            self._queries.append(d)

    def _got_buckets(self, buckets: dict[int, BucketReader], server: Any) -> None:
        if self._finished:
            return
        shnums = []
        for shnum, reader in sorted(buckets.items()):
            if 0 <= shnum < self.n:
                shnums.append(shnum)
                key = ShareKey(bytes(server.server_id), shnum)
                if key in self.by_key:  # its guessed read found it first
                    continue
                prefetched = None
                if key in self._guesses:  # its guessed read is on the way: open with it
                    waiter: defer.Deferred[bytes] = defer.Deferred()
                    self._guess_waiters[key] = waiter
                    assert self.guess_read is not None
                    prefetched = (self.guess_read, waiter)
                self._add(RemoteShare(server, shnum, reader, self.file, self.storage_index, prefetched))
        self.feed(SharesFound(bytes(server.server_id), tuple(shnums), time.monotonic()))

    def _add(self, share: RemoteShare) -> None:
        self.shares.append(share)
        self.by_key[share.key] = share

    # -- guessed reads ---------------------------------------------------
    #
    # A guess is a read of share i where an upload would have put it, sent before
    # knowing the share is there. A share the server does not hold (404), a server
    # that does not answer or refuses is simply not a find: the listing queries
    # decide. A guess that finds data is a share like any listed one, proven the
    # same way before any byte of it is used.

    def _guess(self, server: Any, shnum: int, length: int) -> None:
        if not tolerates_overrun(server):
            return  # the read would be refused past the end of the share
        try:
            client = server.connected_storage("read")
        except ServerUnreachable:
            return
        if not isinstance(client, UnlistedReads):
            return  # Foolscap: a share is read through the reference its listing gives
        key = ShareKey(bytes(server.server_id), shnum)
        d = client.read_unlisted(self.storage_index, shnum, 0, length)
        self._guesses[key] = d
        d.addBoth(self._guessed, server, key)

    def _guessed(self, answer: Any, server: Any, key: ShareKey) -> None:
        del self._guesses[key]
        waiter = self._guess_waiters.pop(key, None)
        if waiter is not None:  # listed meanwhile: its RemoteShare waits for these bytes
            if waiter.called:
                return
            if answer is None:
                waiter.errback(ServerRefused(server.name, "read", "HTTP 404: the server no longer has this share"))
            elif isinstance(answer, tuple):
                waiter.callback(answer[1])
            else:
                waiter.errback(answer)
            return
        if self._finished or not isinstance(answer, tuple) or key in self.by_key:
            return  # a miss (no such share, or no answer): not a find, and no fault of anyone's
        reader, data = answer
        assert self.guess_read is not None
        self._add(RemoteShare(server, key.shnum, reader, self.file, self.storage_index,
                              (self.guess_read, defer.succeed(data))))
        self.feed(ShareSeen(key, time.monotonic()))

    def _no_buckets(self, failure: Any, server: Any) -> None:
        if not failure.check(defer.CancelledError):  # finish() stopped waiting for it
            value = failure.value
            self.no_answer[server.server_id] = value.reason if isinstance(value, ServerError) else describe(value)
        self.feed(QueryFailed(bytes(server.server_id), time.monotonic()))

    async def all_answered(self) -> None:
        while self.waiting:
            await self.changed()

    # -- failures --------------------------------------------------------

    @property
    def failures(self) -> list[ShareFailure]:
        out = []
        for r in self.planner.rejected:
            share = self.by_key[r.share]
            nickname = getattr(share.server, "nickname", "") or ""
            out.append(ShareFailure(r.share.shnum, r.share.server, nickname, r.kind, r.reason))
        return out

    def not_enough(self, have: int, need: int | None = None) -> NotEnoughSharesError:
        need = self.k if need is None else need
        found: dict[int, list[str]] = {}
        for s in self.shares:
            found.setdefault(s.shnum, []).append(s.server_label)
        holders = {s.server_id for s in self.shares}
        where = "; ".join(f"share {sh} on {', '.join(names)}" for sh, names in sorted(found.items()))
        parts = [
            f"need {need} good shares of file {b2a(self.storage_index)}, have {have}",
            f"found {len(self.shares)} share(s), {len(found)} distinct, on {len(holders)} of "
            f"{self.asked} server(s) asked" + (f": {where}" if where else ""),
        ]
        if self.asked == 0:
            parts.append("no storage servers are connected")
        failures = self.failures
        if failures:
            parts.append("rejected: " + "; ".join(f"[{f.kind}] {f.reason}" for f in failures))
        if self.no_answer:
            parts.append("no answer from: " + "; ".join(
                f"{self.names.get(sid, b2a(sid))}: {why}" for sid, why in self.no_answer.items()))
        return NotEnoughSharesError(". ".join(parts))

    # -- the end ---------------------------------------------------------

    async def finish(self) -> None:
        """Drop reads nobody wants, stop waiting for servers, let reports arrive."""
        self._finished = True
        for opening in self._opens:
            if not opening.called:
                opening.addErrback(lambda _: None)
                opening.cancel()
        if self._grace_call is not None and self._grace_call.active():
            self._grace_call.cancel()
        for share in self.shares:
            share.discard_early()
        for query in self._queries:
            if not query.called:  # not cancelled: over HTTP that drops a kept-alive connection
                query.addErrback(lambda _: None)
        self.notify()
        if self._advisories:
            d: defer.Deferred[Any] = defer.DeferredList(self._advisories, consumeErrors=True)
            d.addTimeout(ADVISORY_WAIT, self.timer)
            try:
                await d
            except defer.TimeoutError:
                pass

    def shares_found(self) -> dict[int, tuple[bytes, ...]]:
        found: dict[int, list[bytes]] = {}
        for s in self.shares:
            found.setdefault(s.shnum, []).append(s.server_id)
        return {sh: tuple(ids) for sh, ids in sorted(found.items())}
