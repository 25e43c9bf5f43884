"""The storage suite over HTTPS: shoal's StorageServer behind its HTTP adapter
(shoal.storage.http_server) on a TLS port of 127.0.0.1, reached by HttpStorageClient.

`HTTP_DIFFERS` names the suite's tests that state what only Foolscap can do
(an upload over HTTP is finished by the write that completes it); they are
skipped for every HTTP harness.
"""

import os
from typing import Any

import pytest
from twisted.internet import ssl

from shoal.grid.http_client import HttpStorageClient
from shoal.protocol.nurl import spki_hash
from shoal.storage.http_server import HttpStorageServer
from shoal.testing import reactor_thread
from shoal.testing.sync_storage import SyncStorage
from tests.storage_suite.harness import ServerHarness, client_refuses
from tests.unit.grid.tls_fixture import self_signed

HTTP_TOO_LARGE = r"passes the (allocated size|maximum mutable share size)|past the allocated size"

# test name -> why it cannot hold over HTTP
HTTP_DIFFERS: dict[str, str] = {
    "test_unwritten_bytes_read_as_zeros": "over HTTP a share is finished only when every byte is written (no holes)",
    "test_conflicting_overlapping_write_is_refused_and_changes_nothing":
        "the test closes a share with unwritten bytes, which HTTP cannot finish",
    "test_zero_length_share": "an empty share cannot be written over HTTP (Content-Range has no empty range)",
    "test_any_cover_of_writes_reads_back":
        "over HTTP the write that completes a share finishes it; a repeated piece after that is refused",
    "test_aborted_bucket_is_gone_and_can_be_allocated_again":
        "over HTTP the write that completes a share finishes it; there is nothing left to abort",
    "test_write_past_the_allocated_size_is_refused":
        "an empty write has no range to send over HTTP, so it is not sent (nor refused)",
}


def skip_if_differs(test_name: str, differs: dict[str, str], who: str) -> None:
    base = test_name.split("[", 1)[0]
    if base in differs:
        pytest.skip(f"{who} differs: {differs[base]}")


class HttpHarness(ServerHarness):
    name = "http"
    typed = True

    def __init__(self, directory: str, test_name: str) -> None:
        skip_if_differs(test_name, HTTP_DIFFERS, "HTTP")
        super().__init__(directory)
        cert, key = self_signed()
        self._options = ssl.PrivateCertificate.loadPEM(cert + key).options()
        self._pin = spki_hash(cert).encode("ascii")
        self._swissnum = os.urandom(16).hex().encode("ascii")
        self._port: Any = None
        self._client: SyncStorage | None = None

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> Any:
        self._drop()
        storage = self._start(readonly, max_space)
        site = HttpStorageServer(storage, self._swissnum).site()
        self._port = reactor_thread.call(
            lambda: reactor_thread.reactor.listenSSL(0, site, self._options, interface="127.0.0.1"))
        client = HttpStorageClient("127.0.0.1", self._port.getHost().port, self._pin, self._swissnum, "http",
                                   reactor_thread.reactor)
        self._client = SyncStorage(client, on_close=client.close)
        return self._client

    def refuses(self, kind: str) -> Any:
        # arguments the wire cannot carry are refused by the client before sending (ValueError);
        # the adapter refuses a chunk past the allocated size itself (416), in its own words
        return client_refuses(kind, (ValueError,) if kind == "bad-request" else (),
                              reasons={"data-too-large": HTTP_TOO_LARGE})

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._port is not None:
            reactor_thread.call(self._port.stopListening)
            self._port = None

    def close(self) -> None:
        self._drop()
        super().close()
