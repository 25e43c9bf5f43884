"""Finding the shares of an immutable file: ask every connected server at once.

One get_buckets query per connected server (through its StorageClient, whose
deadlines apply), all sent together; every answer adds its shares as candidates (RemoteShare) ranked by
how fast the server answered. The finder also keeps the book on shares that
failed (and reports corrupt ones to their servers) and builds the
NotEnoughSharesError message: how many shares were found on which servers
and what went wrong with each rejected one. Waiters are woken on every
change (an answer, an opened share, a failure).
"""

import time
from typing import Any

import attrs
from twisted.internet import defer

from shoal.encoding.base32 import b2a
from shoal.grid.storage_client import BucketReader, ServerError, ServerUnreachable
from shoal.immutable.decoder import FileValidator, NotEnoughSharesError
from shoal.immutable.remote_share import CorruptShare, RemoteShare, ShareProblem, describe

ADVISORY_WAIT = 5.0  # at the end, wait this long at most for corruption reports to be delivered


@attrs.frozen
class ShareFailure:
    """A share given up on, and why."""

    shnum: int
    server_id: bytes
    nickname: str
    kind: str  # "corrupt", "timeout", "unreachable" or "error"
    reason: str


class ShareFinder:
    def __init__(
        self,
        broker: Any,
        storage_index: bytes,
        file: FileValidator,
        *,
        report_corruption: bool,
    ) -> None:
        self.broker = broker
        self.storage_index = storage_index
        self.file = file
        self.k = file.identity.k
        self.n = file.identity.n
        self.timer = broker.timer
        self.report_corruption = report_corruption
        self.shares: list[RemoteShare] = []
        self.failures: list[ShareFailure] = []
        self.names: dict[bytes, str] = {}  # server id -> "nickname (short id)"
        self.no_answer: dict[bytes, str] = {}  # server id -> why it did not answer
        self.asked = 0
        self.answered = 0
        self.started = 0.0
        self.enough_at: float | None = None  # when k distinct shares were first known
        self._waiters: list[defer.Deferred[None]] = []
        self._advisories: list[defer.Deferred[None]] = []
        self._queries: list[defer.Deferred[None]] = []

    # -- events ----------------------------------------------------------

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if not d.called:
                d.callback(None)

    async def changed(self, timeout: float | None = None) -> None:
        """Wait for the next change (or `timeout` seconds)."""
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        call = self.timer.callLater(timeout, self.notify) if timeout is not None else None
        try:
            await d
        finally:
            if call is not None and call.active():
                call.cancel()

    # -- queries ---------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """Some servers have not answered yet."""
        return self.answered < self.asked

    def start(self) -> None:
        servers = list(self.broker.get_servers_for_psi(self.storage_index))
        self.started = time.monotonic()
        self.asked = len(servers)
        for server in servers:
            self.names[server.server_id] = f"{server.nickname or '?'} ({server.name})"
            try:
                d = server.connected_storage("get_buckets").get_buckets(self.storage_index)
            except ServerUnreachable as e:  # lost a moment ago
                d = defer.fail(e)
            d.addCallbacks(self._got_buckets, self._no_buckets, callbackArgs=(server,), errbackArgs=(server,))
            self._queries.append(d)

    def _got_buckets(self, buckets: dict[int, BucketReader], server: Any) -> None:
        self.answered += 1
        for shnum, reader in sorted(buckets.items()):
            if shnum < self.n:
                self.shares.append(RemoteShare(server, shnum, reader, self.file, self.storage_index,
                                               rank=self.answered))
        if self.enough_at is None and len(self.distinct(RemoteShare.NEW)) >= self.k:
            self.enough_at = time.monotonic()
        self.notify()

    def _no_buckets(self, failure: Any, server: Any) -> None:
        self.answered += 1
        if failure.check(defer.CancelledError):  # finish() stopped waiting for it
            return
        value = failure.value
        self.no_answer[server.server_id] = value.reason if isinstance(value, ServerError) else describe(value)
        self.notify()

    async def all_answered(self) -> None:
        while self.waiting:
            await self.changed()

    def distinct(self, *states: str) -> set[int]:
        """Share numbers of the candidates in these states."""
        return {s.shnum for s in self.shares if s.state in states}

    # -- failures --------------------------------------------------------

    def fail(self, share: RemoteShare, problem: ShareProblem) -> None:
        """Give up on a share (once); report it to its server if it is corrupt."""
        if share.state == RemoteShare.FAILED:
            return
        share.state = RemoteShare.FAILED
        share.problem = problem
        share.discard_early()
        nickname = getattr(share.server, "nickname", "") or ""
        self.failures.append(ShareFailure(share.shnum, share.server_id, nickname, problem.kind, str(problem)))
        if problem.kind == CorruptShare.kind and self.report_corruption:
            self._advisories.append(share.advise_corrupt(str(problem)))
        self.notify()

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
        if self.failures:
            parts.append("rejected: " + "; ".join(f"[{f.kind}] {f.reason}" for f in self.failures))
        if self.no_answer:
            parts.append("no answer from: " + "; ".join(
                f"{self.names.get(sid, b2a(sid))}: {why}" for sid, why in self.no_answer.items()))
        return NotEnoughSharesError(". ".join(parts))

    # -- the end ---------------------------------------------------------

    async def finish(self) -> None:
        """Drop reads nobody wants, stop waiting for servers, let reports arrive."""
        for share in self.shares:
            share.discard_early()
        for query in self._queries:
            if not query.called:
                query.addErrback(lambda _: None)
                query.cancel()
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
