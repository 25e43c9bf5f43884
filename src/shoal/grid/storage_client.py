"""The one seam between a client and a storage server: `StorageClient`.

Everything a client asks a storage server (Tahoe-LAFS 1.20's RIStorageServer,
RIBucketWriter and RIBucketReader, whatever carries them) is a method here,
taking and returning plain values. Implementations: FoolscapStorageClient
(shoal.grid.foolscap_client, the wire as Tahoe 1.20 speaks it),
LocalStorageClient (shoal.testing.local_storage: the real StorageServer in
process), and next an HTTP client. Nothing above shoal.grid knows which.

Every call has a deadline from one `Deadlines` policy, measured on an injected
clock (an IReactorTime), and fails only with a `ServerError`: the server's
fault (it refused, is full, timed out, went away, or answered nonsense),
keeping the server's own reason. Cancelling the returned Deferred cancels the
call (CancelledError, not a ServerError: the caller chose it).
"""

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
from twisted.internet import defer

from shoal.errors import Fault, ShoalError
from shoal.protocol.version import ServerVersion, VersionError

__all__ = [
    "Allocation",
    "BucketReader",
    "BucketWriter",
    "Deadlines",
    "ReadVector",
    "ServerError",
    "ServerFull",
    "ServerProtocolError",
    "ServerRefused",
    "ServerTimeout",
    "ServerUnreachable",
    "ServerVersion",
    "SlotWrite",
    "StorageClient",
    "TestVector",
    "TestWriteResult",
    "WriteSecrets",
    "WriteVector",
    "check_bytes",
    "check_read_answer",
    "parse_version",
    "wire_vectors",
    "with_deadline",
]

ReadVector = Sequence[tuple[int, int]]  # (offset, length)
TestVector = Sequence[tuple[int, int, bytes, bytes]]  # (offset, length, b"eq", specimen)
WriteVector = Sequence[tuple[int, bytes]]  # (offset, data)


# -- errors --------------------------------------------------------------------


class ServerError(ShoalError):
    """A storage server did not do what was asked. `server` names it, `method` the call."""

    fault = Fault.SERVER

    def __init__(self, server: str, method: str, reason: str) -> None:
        super().__init__(f"server {server}: {method}: {reason}")
        self.server = server
        self.method = method
        self.reason = reason


class ServerTimeout(ServerError):
    """No answer within the deadline."""


class ServerUnreachable(ServerError):
    """Not connected, or the connection was lost during the call."""


class ServerRefused(ServerError):
    """The server answered with an error; `reason` is its own text (first line)."""


class ServerFull(ServerRefused):
    """The server has no room (full disk, reserved or max space): its text says so."""


class ServerProtocolError(ServerError):
    """The server's answer has the wrong shape (a lying or broken server)."""


# -- values --------------------------------------------------------------------


@attrs.frozen
class Deadlines:
    """Seconds each kind of call may take before it fails with ServerTimeout."""

    query: float = 30.0  # version, allocate, get_buckets, leases, slot reads and writes
    read: float = 30.0  # one bucket read
    write: float = 60.0  # one bucket write, close or abort (up to ~1 MiB of data)
    advise: float = 10.0  # corruption advisories (best effort)


@attrs.frozen
class WriteSecrets:
    """The secrets of a mutable slot write: write enabler and lease renew/cancel."""

    write_enabler: bytes
    renew: bytes
    cancel: bytes


@attrs.frozen
class SlotWrite:
    """One share's part of a test-and-set write: tests, writes and an optional new length."""

    tests: TestVector = ()
    writes: WriteVector = ()
    new_length: int | None = None


@attrs.frozen
class TestWriteResult:
    success: bool
    reads: dict[int, list[bytes]]  # shnum -> the read vector's answers (read before writing)


class BucketWriter(Protocol):
    """An allocated immutable share being written (until close or abort)."""

    def write(self, offset: int, data: bytes) -> "defer.Deferred[None]": ...

    def close(self) -> "defer.Deferred[None]": ...

    def abort(self) -> "defer.Deferred[None]": ...


class BucketReader(Protocol):
    """One immutable share a server holds."""

    def read(self, offset: int, length: int) -> "defer.Deferred[bytes]":
        """Bytes of the share data from offset; fewer at the end of the share."""
        ...

    def advise_corrupt_share(self, reason: bytes) -> "defer.Deferred[None]": ...


@attrs.frozen
class Allocation:
    already: frozenset[int]  # shares the server holds already (their leases renewed)
    writers: dict[int, BucketWriter]  # shares it will take


class StorageClient(Protocol):
    """One storage server, as a client sees it."""

    @property
    def name(self) -> str:
        """The server's short name for messages."""
        ...

    def get_version(self) -> "defer.Deferred[ServerVersion]": ...

    def allocate_buckets(
        self,
        storage_index: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        sharenums: frozenset[int],
        allocated_size: int,
    ) -> "defer.Deferred[Allocation]":
        """Writers for the shares the server takes; it discards partial shares
        if this client goes away before close()."""
        ...

    def get_buckets(self, storage_index: bytes) -> "defer.Deferred[dict[int, BucketReader]]": ...

    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> "defer.Deferred[None]": ...

    def slot_readv(
        self, storage_index: bytes, shares: Sequence[int], readv: ReadVector
    ) -> "defer.Deferred[dict[int, list[bytes]]]":
        """The read vector applied to the listed shares (every share when empty)."""
        ...

    def slot_testv_and_readv_and_writev(
        self,
        storage_index: bytes,
        secrets: WriteSecrets,
        tw_vectors: Mapping[int, SlotWrite],
        r_vector: ReadVector,
    ) -> "defer.Deferred[TestWriteResult]": ...

    def advise_corrupt_share(
        self, share_type: bytes, storage_index: bytes, shnum: int, reason: bytes
    ) -> "defer.Deferred[None]": ...


@runtime_checkable
class UnlistedReads(Protocol):
    """A StorageClient that can read an immutable share without listing the server's shares
    first (HTTP: a ranged GET by share number), so a download can guess where shares are."""

    def read_unlisted(
        self, storage_index: bytes, shnum: int, offset: int, length: int
    ) -> "defer.Deferred[tuple[BucketReader, bytes] | None]":
        """A reader for the share and bytes [offset, offset+length) of it (fewer at its end);
        None when the server holds no such share."""
        ...


# -- helpers for implementations ---------------------------------------------------


def with_deadline(
    d: "defer.Deferred[Any]", seconds: float | None, clock: Any, server: str, method: str
) -> "defer.Deferred[Any]":
    """d, failing with ServerTimeout after `seconds` on `clock` (no deadline when None)."""
    if not seconds:
        return d
    d.addTimeout(seconds, clock)

    def timed_out(f: Any) -> Any:
        f.trap(defer.TimeoutError)
        raise ServerTimeout(server, method, f"no answer within {seconds:g}s")

    d.addErrback(timed_out)
    return d


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def parse_version(answer: object, server: str) -> ServerVersion:
    """A get_version answer as a ServerVersion; ServerProtocolError if it has the wrong shape."""
    try:
        return ServerVersion.parse(answer)
    except VersionError as e:
        raise ServerProtocolError(server, "get_version", str(e)) from None


def wire_vectors(
    tw_vectors: Mapping[int, SlotWrite],
) -> dict[int, tuple[list[tuple[int, int, bytes, bytes]], list[tuple[int, bytes]], int | None]]:
    """Test-and-set writes in the storage protocol's shape: {shnum: (tests, writes, new_length)}."""
    return {
        sh: ([(o, n, op, spec) for o, n, op, spec in w.tests], [(o, data) for o, data in w.writes], w.new_length)
        for sh, w in tw_vectors.items()
    }


def check_bytes(value: object, server: str, method: str, most: int) -> bytes:
    """Share data asked for with length `most`: bytes, and no more than that."""
    if not isinstance(value, bytes):
        raise ServerProtocolError(server, method, f"answered {type(value).__name__}, not bytes")
    if len(value) > most:
        raise ServerProtocolError(server, method, f"answered {len(value)} bytes to a read of {most}")
    return value


def check_shnums(value: object, server: str, method: str) -> frozenset[int]:
    if not isinstance(value, set | frozenset | list | tuple):
        raise ServerProtocolError(server, method, f"answered {type(value).__name__}, not a set of share numbers")
    out = set()
    for sh in value:
        if isinstance(sh, bool) or not isinstance(sh, int) or not 0 <= sh < 256:
            raise ServerProtocolError(server, method, f"answered share number {sh!r:.20}")
        out.add(sh)
    return frozenset(out)


def check_read_answer(value: object, server: str, method: str, readv: ReadVector) -> dict[int, list[bytes]]:
    """A slot read answer: {shnum: [one bytes per (offset, length) of readv, at most that long]}."""
    if not isinstance(value, Mapping):
        raise ServerProtocolError(server, method, f"answered {type(value).__name__}, not a dict")
    out: dict[int, list[bytes]] = {}
    for sh, datas in value.items():
        if isinstance(sh, bool) or not isinstance(sh, int) or not 0 <= sh < 256:
            raise ServerProtocolError(server, method, f"answered share number {sh!r:.20}")
        if not isinstance(datas, list | tuple) or not all(isinstance(x, bytes) for x in datas):
            raise ServerProtocolError(server, method, f"share {sh}: answered reads that are not bytes")
        if len(datas) != len(readv) or any(len(x) > n for x, (_, n) in zip(datas, readv, strict=True)):
            raise ServerProtocolError(server, method, f"share {sh}: answered reads that do not match the read vector")
        out[sh] = list(datas)
    return out
