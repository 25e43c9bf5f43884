"""The storage suite over real Foolscap: the in-process StorageServer (with the
suite's fake clock) behind shoal's Foolscap adapter, in a Tub listening on
127.0.0.1, reached by a client Tub through the socket. Refusals arrive as
remote failures; Foolscap's own constraint checks may refuse bad requests
before shoal sees them."""

from typing import Any

from foolscap.api import Tub, Violation

from shoal import storage
from shoal.storage.foolscap_adapter import FoolscapStorageServer
from shoal.testing import reactor_thread
from shoal.testing.reactor_thread import remote_error
from shoal.testing.storage_client import RemoteStorageClient
from tests.storage_suite.harness import ERRORS, NODEID, FakeClock

VIOLATION = remote_error("foolscap.tokens.Violation")


def _qual(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


class FoolscapHarness:
    name = "foolscap"

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.clock = FakeClock()
        self.nodeid = NODEID
        self._server: storage.StorageServer | None = None
        self._tub: Any = None
        self._client: RemoteStorageClient | None = None

    def _start_tub(self, server: storage.StorageServer) -> str:
        tub = Tub()
        tub.startService()
        port = tub.listenOn("tcp:0:interface=127.0.0.1")
        tub.setLocation(f"tcp:127.0.0.1:{port.getPortnum()}")
        self._tub = tub
        return tub.registerReference(FoolscapStorageServer(server))

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> RemoteStorageClient:
        self.close()
        self._server = storage.StorageServer(
            self.directory, self.nodeid, readonly=readonly, max_space=max_space, clock=self.clock
        )
        furl = reactor_thread.call(self._start_tub, self._server)
        self._client = RemoteStorageClient(furl)
        return self._client

    def error(self, name: str) -> tuple[type[BaseException], ...]:
        remote = remote_error(_qual(ERRORS[name]))
        if name == "bad-request":
            return (remote, VIOLATION, Violation)
        return (remote,)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._tub is not None:
            reactor_thread.call(self._tub.stopService)
            self._tub = None
        if self._server is not None:
            reactor_thread.call(self._server.shutdown)
            self._server = None
