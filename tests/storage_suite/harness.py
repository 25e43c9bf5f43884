"""What the storage conformance suite needs from an implementation, and the in-process ones.

A harness hands out servers over one storage directory and says how each kind
of refusal arrives. The suite calls only what Tahoe-LAFS 1.20's
RIStorageServer, RIBucketWriter and RIBucketReader offer, with
StorageServer's argument shapes, so a harness may hand out the transport-free
StorageServer itself or a `SyncStorage` over any StorageClient. Through a
StorageClient every refusal is a ServerRefused (ServerFull when the server
has no room) whose reason is the server's own first line; `refuses(kind)`
checks the class and, where the server's text says which rule it applied,
that text.

Refusal kinds: bad-request, unsupported-operator, bad-write-enabler,
data-too-large, conflicting-write, bucket-closed, no-space, read-only.
"""

import contextlib
import re
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from twisted.internet import defer

from shoal import storage
from shoal.grid.storage_client import Deadlines, ServerFull, ServerRefused
from shoal.testing import reactor_thread
from shoal.testing.local_storage import LocalConnection, LocalStorageClient
from shoal.testing.sync_storage import SyncStorage

ERRORS: dict[str, type[BaseException]] = {
    "bad-request": storage.BadRequestError,
    "unsupported-operator": storage.UnsupportedTestOperatorError,
    "bad-write-enabler": storage.BadWriteEnablerError,
    "data-too-large": storage.DataTooLargeError,
    "conflicting-write": storage.ConflictingWriteError,
    "bucket-closed": storage.BucketClosedError,
    "no-space": storage.NoSpaceError,
    "read-only": storage.ReadOnlyError,
}

# what the server's message says for each kind (bad requests word it per argument)
REASONS: dict[str, str] = {
    "unsupported-operator": r"only b'eq' is supported",
    "bad-write-enabler": r"bad write enabler\. The write enabler was recorded by nodeid",
    "data-too-large": r"passes the (allocated size|maximum mutable share size)",
    "conflicting-write": r"disagrees with the bytes already written",
    "bucket-closed": r"the bucket is already (closed|aborted)",
    "no-space": r"no room|more bytes, only \d+ available",
    "read-only": r"this server is read-only",
}

NODEID = bytes(range(1, 21))
START = 1_700_000_000.0


class FakeClock:
    """A clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness(Protocol):
    name: str
    nodeid: bytes
    directory: str
    typed: bool  # calls go through a StorageClient (typed arguments: some malformed calls cannot be made)

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> Any:
        """A server over this harness's storage directory (the previous one is stopped)."""

    def current(self) -> Any:
        """The server a test that does not restart or configure one uses."""

    def refuses(self, kind: str) -> contextlib.AbstractContextManager[Any]:
        """Expects the block to be refused in this way; yields pytest's ExceptionInfo."""

    def close(self) -> None:
        """Stop whatever the harness started."""


class ServerHarness:
    """The transport-free StorageServer, called directly, with a fake clock."""

    name = "server"
    typed = False

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.clock = FakeClock()
        self.nodeid = NODEID
        self._current: storage.StorageServer | None = None

    def _start(self, readonly: bool, max_space: int | None) -> storage.StorageServer:
        self.close()
        self._current = storage.StorageServer(
            self.directory, self.nodeid, readonly=readonly, max_space=max_space, clock=self.clock
        )
        return self._current

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> Any:
        return self._start(readonly, max_space)

    def current(self) -> Any:
        return self.server()

    @contextlib.contextmanager
    def refuses(self, kind: str) -> Iterator[Any]:
        with pytest.raises(ERRORS[kind]) as caught:
            yield caught

    def close(self) -> None:
        if self._current is not None:
            self._current.shutdown()
            self._current = None


@contextlib.contextmanager
def client_refuses(
    kind: str, also: tuple[type[BaseException], ...] = (), reasons: dict[str, str] | None = None
) -> Iterator[Any]:
    """A refusal as a StorageClient reports it: the class, and the server's own text
    (`reasons` replaces REASONS' pattern for some kinds)."""
    expected = ServerFull if kind == "no-space" else ServerRefused
    with pytest.raises((expected, *also)) as caught:
        yield caught
    pattern = (reasons or {}).get(kind, REASONS.get(kind))
    if pattern is not None:
        assert isinstance(caught.value, expected)
        assert re.search(pattern, caught.value.reason), caught.value.reason
    if kind != "no-space":
        assert not isinstance(caught.value, ServerFull)


class LocalClientHarness(ServerHarness):
    """The same StorageServer reached through LocalStorageClient (eventual send, copied arguments)."""

    name = "local"
    typed = True

    def __init__(self, directory: str) -> None:
        super().__init__(directory)
        self._connection: LocalConnection | None = None

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> Any:
        self._drop()
        server = self._start(readonly, max_space)
        connection = LocalConnection(lambda: server, "local", reactor_thread.reactor, Deadlines())
        self._connection = connection

        def connect() -> "defer.Deferred[LocalStorageClient]":
            d: defer.Deferred[LocalStorageClient] = defer.Deferred()
            connection.start(lambda client, version: d.callback(client), lambda: None)
            return d

        return SyncStorage(reactor_thread.call(connect))

    def refuses(self, kind: str) -> contextlib.AbstractContextManager[Any]:
        return client_refuses(kind)

    def _drop(self) -> None:
        if self._connection is not None:
            reactor_thread.call(self._connection.stop)
            self._connection = None

    def close(self) -> None:
        self._drop()
        super().close()
