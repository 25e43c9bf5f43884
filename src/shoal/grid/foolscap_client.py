"""StorageClient over Foolscap: Tahoe-LAFS 1.20's RIStorageServer, byte for byte.

Method names and arguments are exactly those of the Foolscap storage protocol
(shoal.protocol.storage); one canary per allocate_buckets call tells the
server to discard partial shares if this client goes away. Failures become
the ServerError family here and nowhere else: a remote exception keeps the
server's first line of text (and becomes ServerFull when the server's error
type says it has no space, or it is the OSError of a full disk), a lost connection is ServerUnreachable, an answer
of the wrong shape is ServerProtocolError.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from foolscap.api import DeadReferenceError, Referenceable, RemoteException, Violation
from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure

from shoal.grid.storage_client import (
    Allocation,
    BucketReader,
    BucketWriter,
    Deadlines,
    ReadVector,
    ServerError,
    ServerFull,
    ServerProtocolError,
    ServerRefused,
    ServerUnreachable,
    ServerVersion,
    SlotWrite,
    TestWriteResult,
    WriteSecrets,
    check_bytes,
    check_read_answer,
    check_shnums,
    first_line,
    parse_version,
    wire_vectors,
    with_deadline,
)
from shoal.protocol import connection_status

# remote error types that mean "no room here" (shoal's and Tahoe's names)
_FULL_TYPES = ("NoSpaceError", "NoSpace")
# a Tahoe 1.20 server on a full disk raises the OSError of its write (it checks
# reserved_space only when allocating immutable buckets): its strerror says so
_DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")


def _says_full(kind: str, reason: str) -> bool:
    if kind in _FULL_TYPES:
        return True
    return kind in ("OSError", "IOError") and any(text in reason for text in _DISK_FULL_TEXTS)


class _Canary(Referenceable):  # type: ignore[misc]
    """Passed to allocate_buckets: the server discards our partial shares if we vanish."""


def _remote_type(f: Any) -> str:
    kind = getattr(f, "type", "")
    if isinstance(kind, bytes):
        kind = kind.decode("utf-8", "replace")
    if not isinstance(kind, str):
        kind = getattr(kind, "__name__", "")
    return kind.rsplit(".", 1)[-1]


def translate(failure: Failure, server: str, method: str) -> Failure:
    """A Foolscap call's failure as a ServerError (CancelledError and ServerErrors pass)."""
    value = failure.value
    if isinstance(value, ServerError | defer.CancelledError):
        return failure
    if isinstance(value, RemoteException) or not isinstance(value, BaseException):
        inner = value.args[0] if isinstance(value, RemoteException) and value.args else failure
        text = inner.getErrorMessage() if isinstance(inner, Failure) else str(value)
        reason = first_line(text) or "remote error"
        cls = ServerFull if _says_full(_remote_type(inner), reason) else ServerRefused
        raise cls(server, method, reason)
    if isinstance(value, DeadReferenceError | ConnectionLost | ConnectionDone):
        raise ServerUnreachable(server, method, first_line(str(value)) or "connection lost")
    if isinstance(value, Violation):
        raise ServerProtocolError(server, method, first_line(str(value)) or "schema violation")
    raise ServerUnreachable(server, method, first_line(f"{type(value).__name__}: {value}"))


class _Caller:
    """callRemote on one reference with a deadline and translated failures."""

    def __init__(self, ref: Any, server: str, clock: Any) -> None:
        self._ref = ref
        self._server = server
        self._clock = clock

    def call(self, seconds: float, method: str, *args: Any) -> "defer.Deferred[Any]":
        try:
            d = self._ref.callRemote(method, *args)
        except Exception as e:  # a dead reference raises at once
            d = defer.fail(e)
        d.addErrback(translate, self._server, method)
        return with_deadline(d, seconds, self._clock, self._server, method)


class FoolscapBucketWriter:
    def __init__(self, caller: _Caller, deadlines: Deadlines) -> None:
        self._caller = caller
        self._deadlines = deadlines

    def write(self, offset: int, data: bytes) -> "defer.Deferred[None]":
        return self._caller.call(self._deadlines.write, "write", offset, data)

    def close(self) -> "defer.Deferred[None]":
        return self._caller.call(self._deadlines.write, "close")

    def abort(self) -> "defer.Deferred[None]":
        return self._caller.call(self._deadlines.write, "abort")


class FoolscapBucketReader:
    def __init__(self, caller: _Caller, deadlines: Deadlines, server: str) -> None:
        self._caller = caller
        self._deadlines = deadlines
        self._server = server

    def read(self, offset: int, length: int) -> "defer.Deferred[bytes]":
        d = self._caller.call(self._deadlines.read, "read", offset, length)
        d.addCallback(check_bytes, self._server, "read", length)
        return d

    def advise_corrupt_share(self, reason: bytes) -> "defer.Deferred[None]":
        return self._caller.call(self._deadlines.advise, "advise_corrupt_share", reason)


class FoolscapStorageClient:
    """A StorageClient for one RIStorageServer remote reference."""

    def __init__(self, rref: Any, name: str, clock: Any, deadlines: Deadlines | None = None) -> None:
        self.rref = rref
        self._name = name
        self._clock = clock
        self._deadlines = deadlines or Deadlines()
        self._caller = _Caller(rref, name, clock)

    @property
    def name(self) -> str:
        return self._name

    def _query(self, method: str, *args: Any) -> "defer.Deferred[Any]":
        return self._caller.call(self._deadlines.query, method, *args)

    def _wrap(self, ref: Any, method: str) -> _Caller:
        if not callable(getattr(ref, "callRemote", None)):
            raise ServerProtocolError(self._name, method, f"answered {type(ref).__name__}, not a reference")
        return _Caller(ref, self._name, self._clock)

    def get_version(self) -> "defer.Deferred[ServerVersion]":
        return self._query("get_version").addCallback(parse_version, self._name)

    def allocate_buckets(
        self,
        storage_index: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        sharenums: frozenset[int],
        allocated_size: int,
    ) -> "defer.Deferred[Allocation]":
        def got(answer: Any) -> Allocation:
            if not isinstance(answer, tuple | list) or len(answer) != 2 or not isinstance(answer[1], Mapping):
                raise ServerProtocolError(self._name, "allocate_buckets", f"answered {type(answer).__name__}")
            already = check_shnums(answer[0], self._name, "allocate_buckets")
            writers: dict[int, BucketWriter] = {}
            for sh in check_shnums(list(answer[1]), self._name, "allocate_buckets"):
                writers[sh] = FoolscapBucketWriter(self._wrap(answer[1][sh], "allocate_buckets"), self._deadlines)
            return Allocation(already, writers)

        d = self._query(
            "allocate_buckets", storage_index, renew_secret, cancel_secret, set(sharenums), allocated_size, _Canary()
        )
        return d.addCallback(got)

    def get_buckets(self, storage_index: bytes) -> "defer.Deferred[dict[int, BucketReader]]":
        def got(answer: Any) -> dict[int, BucketReader]:
            if not isinstance(answer, Mapping):
                raise ServerProtocolError(self._name, "get_buckets", f"answered {type(answer).__name__}")
            return {
                sh: FoolscapBucketReader(self._wrap(answer[sh], "get_buckets"), self._deadlines, self._name)
                for sh in sorted(check_shnums(list(answer), self._name, "get_buckets"))
            }

        return self._query("get_buckets", storage_index).addCallback(got)

    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> "defer.Deferred[None]":
        return self._query("add_lease", storage_index, renew_secret, cancel_secret).addCallback(lambda _: None)

    def slot_readv(
        self, storage_index: bytes, shares: Sequence[int], readv: ReadVector
    ) -> "defer.Deferred[dict[int, list[bytes]]]":
        wanted = [(o, n) for o, n in readv]
        d = self._query("slot_readv", storage_index, list(shares), wanted)
        return d.addCallback(check_read_answer, self._name, "slot_readv", wanted)

    def slot_testv_and_readv_and_writev(
        self,
        storage_index: bytes,
        secrets: WriteSecrets,
        tw_vectors: Mapping[int, SlotWrite],
        r_vector: ReadVector,
    ) -> "defer.Deferred[TestWriteResult]":
        method = "slot_testv_and_readv_and_writev"
        wanted = [(o, n) for o, n in r_vector]

        def got(answer: Any) -> TestWriteResult:
            if not isinstance(answer, tuple | list) or len(answer) != 2 or not isinstance(answer[0], bool):
                raise ServerProtocolError(self._name, method, f"answered {type(answer).__name__}")
            return TestWriteResult(answer[0], check_read_answer(answer[1], self._name, method, wanted))

        d = self._query(
            method, storage_index, (secrets.write_enabler, secrets.renew, secrets.cancel), wire_vectors(tw_vectors),
            wanted,
        )
        return d.addCallback(got)

    def advise_corrupt_share(
        self, share_type: bytes, storage_index: bytes, shnum: int, reason: bytes
    ) -> "defer.Deferred[None]":
        return self._caller.call(
            self._deadlines.advise, "advise_corrupt_share", share_type, storage_index, shnum, reason
        )



class FoolscapConnection:
    """The broker's link to one server over Foolscap: a Reconnector to its
    anonymous-storage-FURL (retry with backoff, reconnect after a loss)."""

    protocol = "Foolscap"

    def __init__(self, tub: Any, furl: str, name: str, clock: Any, deadlines: Deadlines) -> None:
        self._tub = tub
        self._furl = furl
        self._name = name
        self._clock = clock
        self._deadlines = deadlines
        self._reconnector: Any = None
        self._rref: Any = None

    def start(
        self, on_connected: Callable[[FoolscapStorageClient, None], None], on_lost: Callable[[], None]
    ) -> None:
        def connected(rref: Any) -> None:
            self._rref = rref
            rref.notifyOnDisconnect(lost, rref)
            on_connected(FoolscapStorageClient(rref, self._name, self._clock, self._deadlines), None)

        def lost(rref: Any) -> None:
            if rref is self._rref:
                on_lost()

        self._reconnector = self._tub.connectTo(self._furl, connected)

    def stop(self) -> None:
        if self._reconnector is not None:
            self._reconnector.stopConnecting()

    def reset(self) -> None:
        if self._reconnector is not None:
            self._reconnector.reset()

    def status(self, now: float) -> connection_status.ConnectionStatus:
        if self._reconnector is None:
            return connection_status.unstarted()
        last_received = self._rref.getDataLastReceivedAt() if self._rref is not None else None
        return connection_status.from_reconnection_info(self._reconnector.getReconnectionInfo(), last_received, now)
