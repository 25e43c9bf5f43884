"""StorageClient for a real StorageServer in this process: no sockets, no TLS.

`LocalStorageClient` calls the transport-free `shoal.storage.server.StorageServer`
with eventual-send semantics, as a remote call would behave: every call
returns an unfired Deferred, the server runs it on a later reactor turn, and
its answer (or error, translated into the ServerError family exactly as the
Foolscap client translates a remote error) arrives on a later turn still.
Arguments are copied as they would be serialized, so neither side sees the
other's mutable objects.

`LocalConnection` is what the broker uses to reach one such server. A test
drives faults through it: `disconnect()` (the connection drops: calls in
flight fail with ServerUnreachable, the server aborts this client's unclosed
bucket writers, as it does when a Foolscap canary goes), `connect()`, and
`hang()` (calls are never answered: they meet their deadline on the
broker's clock). A `reader_filter` lets a test make a server lie.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as _reactor_module

from shoal import cpu
from shoal.grid.storage_client import (
    Allocation,
    BucketReader,
    BucketWriter,
    Deadlines,
    ReadVector,
    ServerFull,
    ServerRefused,
    ServerUnreachable,
    ServerVersion,
    SlotWrite,
    TestWriteResult,
    WriteSecrets,
    first_line,
    parse_version,
    wire_vectors,
    with_deadline,
)
from shoal.protocol import connection_status
from shoal.storage.errors import NoSpaceError
from shoal.storage.server import StorageServer

_reactor: Any = _reactor_module

# (offset, data as read) -> data as served: a lying server's readers
ReaderFilter = Callable[[int, bytes], bytes]


class _Link:
    """One connection's state: up, hung or down; the calls in flight on it."""

    def __init__(self, server: StorageServer, name: str, clock: Any, deadlines: Deadlines) -> None:
        self.server = server
        self.name = name
        self.clock = clock
        self.deadlines = deadlines
        self.up = True
        self.hung = False
        self.hung_methods: frozenset[str] = frozenset()  # calls of these names are never answered
        self.pending: set[defer.Deferred[Any]] = set()
        self.open_writers: set[Any] = set()  # the server's BucketWriters this client has not closed
        self.reader_filter: ReaderFilter | None = None
        self.slot_filter: ReaderFilter | None = None  # the same for mutable slot reads
        self.slow_seconds = 0.0  # calls named in slow_methods take this long each, one after another
        self.slow_methods: frozenset[str] = frozenset()
        self._busy_until = 0.0

    def call(
        self, seconds: float, method: str, fn: Callable[..., Any], *args: Any, in_pool: bool = False
    ) -> "defer.Deferred[Any]":
        d: defer.Deferred[Any] = defer.Deferred(lambda _: self.pending.discard(d))
        if not self.up:
            _reactor.callLater(0, self._fail, d, method, "not connected")
            return with_deadline(d, seconds, self.clock, self.name, method)
        self.pending.add(d)
        if not self.hung and method not in self.hung_methods:
            _reactor.callLater(self._queue(method), self._run, d, method, fn, args, in_pool)
        return with_deadline(d, seconds, self.clock, self.name, method)

    def _queue(self, method: str) -> float:
        """How long until the call starts: a slow link runs its slow calls one after another."""
        if not self.slow_seconds or method not in self.slow_methods:
            return 0
        now = _reactor.seconds()
        self._busy_until = max(now, self._busy_until) + self.slow_seconds
        return self._busy_until - now

    def _fail(self, d: "defer.Deferred[Any]", method: str, why: str) -> None:
        self.pending.discard(d)
        if not d.called:
            d.errback(ServerUnreachable(self.name, method, why))

    def _run(self, d: "defer.Deferred[Any]", method: str, fn: Callable[..., Any], args: tuple[Any, ...],
             in_pool: bool) -> None:
        if d.called or d not in self.pending:
            return
        if not self.up:
            self._fail(d, method, "connection lost")
            return
        if self.hung:
            return
        if in_pool:
            result = cpu.run(fn, *args)
        else:
            result = defer.maybeDeferred(fn, *args)

        def answer(value: Any) -> None:
            # the answer travels back on a later turn, unless the link dropped meanwhile
            _reactor.callLater(0, deliver, value)

        def deliver(value: Any) -> None:
            if d not in self.pending or d.called:
                return
            if not self.up:
                self._fail(d, method, "connection lost")
                return
            if self.hung:
                return
            self.pending.discard(d)
            if isinstance(value, Exception):
                d.errback(_translate(value, self.name, method))
            else:
                d.callback(value)

        result.addCallbacks(answer, lambda f: answer(f.value))

    def drop(self) -> None:
        self.up = False
        pending, self.pending = self.pending, set()
        for d in pending:
            if not d.called:
                d.errback(ServerUnreachable(self.name, "call", "connection lost"))
        writers, self.open_writers = self.open_writers, set()
        for writer in writers:  # as when the canary's connection goes
            try:
                writer.abort()
            except Exception:
                pass


def _translate(error: BaseException, server: str, method: str) -> BaseException:
    reason = first_line(str(error)) or type(error).__name__
    if isinstance(error, NoSpaceError):
        return ServerFull(server, method, reason)
    return ServerRefused(server, method, reason)


class LocalBucketWriter:
    def __init__(self, link: _Link, writer: Any) -> None:
        self._link = link
        self._writer = writer
        link.open_writers.add(writer)

    def _finished(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            finally:
                self._link.open_writers.discard(self._writer)

        return run

    def write(self, offset: int, data: bytes) -> "defer.Deferred[None]":
        return self._link.call(self._link.deadlines.write, "write", self._writer.write, offset, bytes(data))

    def close(self) -> "defer.Deferred[None]":
        return self._link.call(self._link.deadlines.write, "close", self._finished(self._writer.close))

    def abort(self) -> "defer.Deferred[None]":
        return self._link.call(self._link.deadlines.write, "abort", self._finished(self._writer.abort))


class LocalBucketReader:
    def __init__(self, link: _Link, reader: Any) -> None:
        self._link = link
        self._reader = reader

    def read(self, offset: int, length: int) -> "defer.Deferred[bytes]":
        def read() -> bytes:
            data = self._reader.read(offset, length)
            lie = self._link.reader_filter
            return lie(offset, data) if lie is not None else data

        return self._link.call(self._link.deadlines.read, "read", read)

    def advise_corrupt_share(self, reason: bytes) -> "defer.Deferred[None]":
        return self._link.call(
            self._link.deadlines.advise, "advise_corrupt_share", self._reader.advise_corrupt_share, reason,
            in_pool=True,
        )


class LocalStorageClient:
    """A StorageClient calling one in-process StorageServer over a _Link."""

    def __init__(self, link: _Link) -> None:
        self._link = link

    @property
    def name(self) -> str:
        return self._link.name

    def _query(self, method: str, fn: Callable[..., Any], *args: Any) -> "defer.Deferred[Any]":
        return self._link.call(self._link.deadlines.query, method, fn, *args)

    def get_version(self) -> "defer.Deferred[ServerVersion]":
        return self._query("get_version", self._link.server.get_version).addCallback(parse_version, self.name)

    def allocate_buckets(
        self,
        storage_index: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        sharenums: frozenset[int],
        allocated_size: int,
    ) -> "defer.Deferred[Allocation]":
        def allocate() -> Allocation:
            already, writers = self._link.server.allocate_buckets(
                storage_index, renew_secret, cancel_secret, set(sharenums), allocated_size
            )
            out: dict[int, BucketWriter] = {sh: LocalBucketWriter(self._link, w) for sh, w in writers.items()}
            return Allocation(frozenset(already), out)

        return self._query("allocate_buckets", allocate)

    def get_buckets(self, storage_index: bytes) -> "defer.Deferred[dict[int, BucketReader]]":
        def get() -> dict[int, BucketReader]:
            readers = self._link.server.get_buckets(storage_index)
            return {sh: LocalBucketReader(self._link, r) for sh, r in sorted(readers.items())}

        return self._query("get_buckets", get)

    def read_unlisted(
        self, storage_index: bytes, shnum: int, offset: int, length: int
    ) -> "defer.Deferred[tuple[BucketReader, bytes] | None]":
        """As over HTTP: one read by share number without listing first; None for no such share."""

        def read() -> tuple[BucketReader, bytes] | None:
            reader = self._link.server.get_buckets(storage_index).get(shnum)
            if reader is None:
                return None
            data = reader.read(offset, length)
            lie = self._link.reader_filter
            return LocalBucketReader(self._link, reader), lie(offset, data) if lie is not None else data

        return self._link.call(self._link.deadlines.read, "read", read)

    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> "defer.Deferred[None]":
        return self._query("add_lease", self._link.server.add_lease, storage_index, renew_secret, cancel_secret)

    def slot_readv(
        self, storage_index: bytes, shares: Sequence[int], readv: ReadVector
    ) -> "defer.Deferred[dict[int, list[bytes]]]":
        wanted = [(o, n) for o, n in readv]

        def read() -> dict[int, list[bytes]]:
            answer = self._link.server.slot_readv(storage_index, list(shares), wanted)
            lie = self._link.slot_filter
            if lie is None:
                return answer
            return {sh: [lie(o, data) for (o, _), data in zip(wanted, reads, strict=True)]
                    for sh, reads in answer.items()}

        return self._query("slot_readv", read)

    def slot_testv_and_readv_and_writev(
        self,
        storage_index: bytes,
        secrets: WriteSecrets,
        tw_vectors: Mapping[int, SlotWrite],
        r_vector: ReadVector,
    ) -> "defer.Deferred[TestWriteResult]":
        vectors = wire_vectors(tw_vectors)
        reads_wanted = [(o, n) for o, n in r_vector]

        def write() -> TestWriteResult:
            ok, reads = self._link.server.slot_testv_and_readv_and_writev(
                storage_index, (secrets.write_enabler, secrets.renew, secrets.cancel), vectors, reads_wanted,
            )
            return TestWriteResult(bool(ok), {sh: list(v) for sh, v in reads.items()})

        return self._query("slot_testv_and_readv_and_writev", write)

    def advise_corrupt_share(
        self, share_type: bytes, storage_index: bytes, shnum: int, reason: bytes
    ) -> "defer.Deferred[None]":
        return self._link.call(
            self._link.deadlines.advise, "advise_corrupt_share", self._link.server.advise_corrupt_share,
            share_type, storage_index, shnum, reason, in_pool=True,
        )


class LocalConnection:
    """The broker's link to one in-process server (a ServerConnection)."""

    protocol = "in-process"

    def __init__(self, server: Callable[[], StorageServer | None], name: str, clock: Any,
                 deadlines: Deadlines) -> None:
        self._server = server  # the server now running there (None while it is stopped)
        self._name = name
        self._clock = clock
        self._deadlines = deadlines
        self._on_connected: Callable[[Any, None], None] | None = None
        self._on_lost: Callable[[], None] | None = None
        self.link: _Link | None = None
        self._started = False
        self._hung = False
        self._hung_methods: frozenset[str] = frozenset()
        self._slow: tuple[float, frozenset[str]] = (0.0, frozenset())
        self.reader_filter: ReaderFilter | None = None
        self.slot_filter: ReaderFilter | None = None

    def start(self, on_connected: Callable[[Any, None], None], on_lost: Callable[[], None]) -> None:
        self._on_connected, self._on_lost = on_connected, on_lost
        self._started = True
        self.connect()

    def connect(self) -> None:
        """Connect (again) if the server is running and we are not connected."""
        server = self._server()
        if not self._started or server is None or (self.link is not None and self.link.up):
            return
        self.link = _Link(server, self._name, self._clock, self._deadlines)
        self.link.hung = self._hung
        self.link.hung_methods = self._hung_methods
        self.link.slow_seconds, self.link.slow_methods = self._slow
        self.link.reader_filter = self.reader_filter
        self.link.slot_filter = self.slot_filter
        client = LocalStorageClient(self.link)
        assert self._on_connected is not None
        _reactor.callLater(0, self._on_connected, client, None)

    def disconnect(self) -> None:
        """The connection drops (the server may still run)."""
        if self.link is not None and self.link.up:
            self.link.drop()
            if self._on_lost is not None:
                self._on_lost()

    def hang(self, hung: bool = True, methods: frozenset[str] | None = None) -> None:
        """Stop (or resume) answering calls without dropping the connection:
        all calls, or only those named in `methods`."""
        if methods is not None:
            self._hung_methods = methods if hung else frozenset()
        else:
            self._hung = hung
        if self.link is not None:
            self.link.hung, self.link.hung_methods = self._hung, self._hung_methods

    def slow(self, seconds: float, methods: frozenset[str]) -> None:
        """A slow uplink: each call named in `methods` takes `seconds`, queued
        behind the previous one (0: as fast as the rest again, for new calls)."""
        self._slow = (seconds, methods)
        if self.link is not None:
            self.link.slow_seconds, self.link.slow_methods = self._slow

    def set_reader_filter(self, lie: ReaderFilter | None, slots: ReaderFilter | None = None) -> None:
        """Make the server lie: `lie` changes bucket reads, `slots` slot reads."""
        self.reader_filter, self.slot_filter = lie, slots
        if self.link is not None:
            self.link.reader_filter, self.link.slot_filter = lie, slots

    def stop(self) -> None:
        self._started = False
        self.disconnect()

    def reset(self) -> None:
        self.connect()

    def status(self, now: float) -> connection_status.ConnectionStatus:
        if not self._started:
            return connection_status.unstarted()
        if self.link is not None and self.link.up:
            return connection_status.ConnectionStatus(True, "Connected in process", {}, None, None)
        return connection_status.ConnectionStatus(False, "Not connected (server stopped)", {}, None, None)
