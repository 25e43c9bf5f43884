"""Real Foolscap Tubs on 127.0.0.1 for in-process introducer and broker tests.

The reactor runs in a thread (shoal.testing.reactor_thread); every Tub and
service made through a Harness is stopped when the test ends.
"""

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from foolscap.api import Referenceable, Tub
from twisted.application import service
from zope.interface import implementer

from shoal.protocol.storage import RIStorageServer
from shoal.testing import reactor_thread
from shoal.testing.wait import wait_until

call = reactor_thread.call


class Harness:
    def __init__(self) -> None:
        self._tubs: list[Tub] = []
        self._services: list[service.Service] = []

    def tub(self, port: int = 0, cert: bytes | None = None) -> Tub:
        """A started Tub listening on 127.0.0.1 (port 0: any free port), location set."""

        def make() -> Tub:
            tub = Tub(certData=cert) if cert is not None else Tub()
            listener = tub.listenOn(f"tcp:{port}:interface=127.0.0.1")
            tub.startService()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                bound = listener.getPortnum()
            tub.setLocation(f"tcp:127.0.0.1:{bound}")
            tub.test_port = bound
            return tub

        tub = call(make)
        self._tubs.append(tub)
        return tub

    def stop_tub(self, tub: Tub) -> None:
        if tub in self._tubs:
            self._tubs.remove(tub)
            call(tub.stopService)

    def start(self, svc: service.Service) -> Any:
        call(svc.startService)
        self._services.append(svc)
        return svc

    def stop(self, svc: service.Service) -> None:
        if svc in self._services:
            self._services.remove(svc)
            call(svc.stopService)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """Poll predicate (run in the reactor thread) until it is truthy."""
        return wait_until(lambda: call(predicate), timeout, what, interval=0.02)

    def close(self) -> None:
        for svc in reversed(self._services):
            call(svc.stopService)
        for tub in reversed(self._tubs):
            call(tub.stopService)
        self._services.clear()
        self._tubs.clear()


def quiet_foolscap() -> None:
    """Foolscap formats bytes into its own log messages; under `python -b` with
    BytesWarning as an error that would break its connection negotiation. Only
    warnings raised inside foolscap are ignored (call within a test)."""
    warnings.filterwarnings("ignore", category=BytesWarning, module="foolscap")


@pytest.fixture
def harness() -> Iterator[Harness]:
    quiet_foolscap()
    h = Harness()
    try:
        yield h
    finally:
        h.close()


STORAGE_V1 = b"http://allmydata.org/tahoe/protocols/storage/v1"


@implementer(RIStorageServer)
class FakeStorageServer(Referenceable):  # type: ignore[misc]
    """Answers get_version only: enough for the broker."""

    def __init__(self, space: int = 12345, app: bytes = b"fake-storage/1") -> None:
        self.space = space
        self.app = app

    def remote_get_version(self) -> dict[bytes, Any]:
        return {
            STORAGE_V1: {b"available-space": self.space, b"maximum-immutable-share-size": 2**40},
            b"application-version": self.app,
        }
