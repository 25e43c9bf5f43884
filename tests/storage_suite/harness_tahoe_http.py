"""The storage suite against the reference server: a Tahoe-LAFS 1.20 storage node over HTTPS.

One Tahoe node per test module, reached by HttpStorageClient at the NURL it
would announce (its certificate's SPKI pin, the storage FURL's location and
swissnum). Tahoe's HTTP server answers refusals with a bare status, so
`refuses` checks the class only. Where the suite states shoal's own rules
(max_space, quarantine, shoal's texts, read-only mutables) the Tahoe server
does otherwise: `DIFFERS` names those tests and why, and they are skipped for
this harness.
"""

import os
import pathlib
import shutil
import subprocess
from typing import Any

import pytest

from shoal.encoding import base32
from shoal.grid.http_client import HttpStorageClient
from shoal.grid.storage_client import ServerProtocolError
from shoal.protocol.nurl import Nurl
from shoal.testing import reactor_thread
from shoal.testing.processes import set_config
from shoal.testing.sync_storage import SyncStorage
from tests.storage_suite.harness_http import HTTP_DIFFERS, skip_if_differs

PEER = pathlib.Path(__file__).resolve().parents[2] / ".venv-peer" / "bin"

# test name -> how Tahoe 1.20 differs (the suite states shoal's rule there)
DIFFERS: dict[str, str] = {
    **HTTP_DIFFERS,
    "test_share_larger_than_the_maximum_is_refused": "Tahoe refuses, but leaves an empty share behind",
    "test_read_only_server_refuses_mutable_writes": "Tahoe's read-only mode still takes mutable writes (Trac #390)",
    # shoal's own rules and words
    "test_wrong_write_enabler_is_refused_naming_the_recording_nodeid": "Tahoe answers a bare 401",
    "test_advisory_about_a_damaged_share_takes_it_out_of_service": "quarantine is shoal's",
}


class TahoeStore:
    """One Tahoe storage node directory and its process (started lazily)."""

    def __init__(self, nodedir: str) -> None:
        self.nodedir = nodedir
        subprocess.run([str(PEER / "tahoe"), "create-node", "--hostname", "127.0.0.1", "--webport", "none",
                        nodedir], check=True, capture_output=True)
        self.storage_dir = os.path.join(nodedir, "storage")
        self.readonly: bool | None = None
        self._node: Any = None
        self._client: SyncStorage | None = None

    def start(self, readonly: bool, wipe: bool) -> SyncStorage:
        from tests.interop.conftest import TahoeNode, tahoe_nurl

        self.stop()
        if wipe:
            shutil.rmtree(self.storage_dir, ignore_errors=True)
        set_config(self.nodedir, "storage", "readonly", "true" if readonly else "false")
        self._node = TahoeNode(PEER, pathlib.Path(self.nodedir))
        self.readonly = readonly
        nurl = Nurl.parse(tahoe_nurl(self.nodedir, self._node.furl))
        client = HttpStorageClient(nurl.host, nurl.port, nurl.spki_hash.encode(), nurl.swissnum.encode(), "tahoe",
                                   reactor_thread.reactor)
        self._client = SyncStorage(client, on_close=client.close)
        return self._client

    @property
    def nodeid(self) -> bytes:
        with open(os.path.join(self.nodedir, "my_nodeid")) as f:
            return base32.a2b(f.read().strip())

    def running(self) -> SyncStorage:
        if self._client is None or self.readonly:
            return self.start(False, wipe=False)
        return self._client

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._node is not None:
            self._node.stop()
            self._node = None


class TahoeHttpHarness:
    name = "tahoe-http"
    typed = True

    def __init__(self, store: TahoeStore, test_name: str) -> None:
        if not (PEER / "tahoe").exists():
            pytest.skip("reference peer .venv-peer not installed (make peer)")
        skip_if_differs(test_name, DIFFERS, "Tahoe 1.20")
        self.store = store
        self.directory = store.storage_dir
        self._fresh = True

    @property
    def nodeid(self) -> bytes:
        return self.store.nodeid

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> Any:
        if max_space is not None:
            pytest.skip("Tahoe 1.20 has no max_space")
        client = self.store.start(readonly, wipe=self._fresh)
        self._fresh = False
        return client

    def current(self) -> Any:
        return self.store.running()

    def refuses(self, kind: str) -> Any:
        # Tahoe's HTTP server refuses with a bare status (no text to match); a malformed
        # request may also be refused by the client before it is sent
        also = (ServerProtocolError, ValueError) if kind == "bad-request" else ()
        return client_refuses_any_text(kind, also)

    def close(self) -> None:
        pass


def client_refuses_any_text(kind: str, also: tuple[type[BaseException], ...]) -> Any:
    import contextlib

    from shoal.grid.storage_client import ServerFull, ServerRefused

    @contextlib.contextmanager
    def check() -> Any:
        expected = ServerFull if kind == "no-space" else ServerRefused
        with pytest.raises((expected, *also)) as caught:
            yield caught

    return check()

