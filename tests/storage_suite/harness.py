"""What the storage conformance suite needs from an implementation, and the in-process one.

A harness makes servers over one storage directory and says which exception
type stands for each kind of refusal. The suite only calls what Tahoe-LAFS
1.20's RIStorageServer, RIBucketWriter and RIBucketReader offer, so a harness
may hand out a remote client (Foolscap now, HTTP later) instead of the
in-process StorageServer; such a harness maps the error names below to the
remote failure it raises.

Error names: bad-request, unsupported-operator, bad-write-enabler,
data-too-large, conflicting-write, bucket-closed, no-space, read-only.
"""

from typing import Any, Protocol

from shoal import storage

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
    clock: FakeClock
    nodeid: bytes

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> Any:
        """A server over this harness's storage directory (the previous one is stopped)."""

    def error(self, name: str) -> type[BaseException] | tuple[type[BaseException], ...]:
        """The exception type a refusal of this kind arrives as."""

    def close(self) -> None:
        """Stop whatever the harness started."""


class LocalHarness:
    """The in-process StorageServer, with a fake clock."""

    name = "local"

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.clock = FakeClock()
        self.nodeid = NODEID
        self._current: storage.StorageServer | None = None

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> storage.StorageServer:
        self.close()
        self._current = storage.StorageServer(
            self.directory, self.nodeid, readonly=readonly, max_space=max_space, clock=self.clock
        )
        return self._current

    def error(self, name: str) -> type[BaseException]:
        return ERRORS[name]

    def close(self) -> None:
        if self._current is not None:
            self._current.shutdown()
            self._current = None
