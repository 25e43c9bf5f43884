"""The storage suite against a real storage node process over real Foolscap.

One node per test module (`NodeStore`), created with the `shoal` CLI and
reached by FoolscapStorageClient from a client Tub of the test's own across
127.0.0.1. Tests that only need a server share the running node (the suite's
labels keep their storage indexes apart); a test that asks for a server with
a configuration (read-only, max_space) or restarts one gets the node
restarted, from an empty storage directory on its first such call.

A node's scrubber would take the suite's immutable uploads (bytes, not
shares) out of service (it leaves slots that hold no SDMF/MDMF share alone);
each empty storage directory starts with its scrubber's cycle just done, so
the next is a week away.
"""

import os
import shutil
from typing import Any

from shoal.encoding import base32
from shoal.grid.storage_client import ServerProtocolError
from shoal.storage.server import StorageServer
from shoal.testing.processes import NodeProcess, create_storage_node, set_config, start_node
from shoal.testing.sync_storage import SyncStorage, foolscap_storage
from tests.storage_suite.harness import client_refuses

DEFAULT: tuple[bool, int | None] = (False, None)


def scrubbed_empty(storage_dir: str) -> None:
    """An empty storage directory whose scrubber has just finished a cycle."""
    server = StorageServer(storage_dir, bytes(20))
    while server.scrubber.run_slice(10.0):
        pass
    server.shutdown()  # saves the scrubber's state


class NodeStore:
    """One storage node directory and the process running over it (started lazily)."""

    def __init__(self, nodedir: str) -> None:
        self.nodedir = nodedir
        create_storage_node(nodedir)
        self.storage_dir = os.path.join(nodedir, "storage")
        self.config: tuple[bool, int | None] | None = None
        self._node: NodeProcess | None = None
        self._client: SyncStorage | None = None

    def start(self, config: tuple[bool, int | None], wipe: bool) -> SyncStorage:
        self.stop()
        if wipe or not os.path.isdir(self.storage_dir):
            shutil.rmtree(self.storage_dir, ignore_errors=True)
            scrubbed_empty(self.storage_dir)
        readonly, max_space = config
        set_config(self.nodedir, "storage", "readonly", "true" if readonly else "false")
        set_config(self.nodedir, "storage", "max_space", "" if max_space is None else str(max_space))
        self._node = start_node(self.nodedir)
        self.config = config
        self._client = foolscap_storage(self._node.read_private("storage.furl"), name="node")
        return self._client

    @property
    def nodeid(self) -> bytes:
        """The node's tub id (written when it first starts): it records write enablers."""
        with open(os.path.join(self.nodedir, "my_nodeid")) as f:
            return base32.a2b(f.read().strip())

    def running(self) -> SyncStorage:
        """The node with the default configuration (started if it is not so now)."""
        if self._client is None or self.config != DEFAULT:
            return self.start(DEFAULT, wipe=False)
        return self._client

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._node is not None:
            self._node.stop()
            self._node = None
        self.config = None


class NodeHarness:
    name = "node"
    typed = True

    def __init__(self, store: NodeStore) -> None:
        self.store = store
        self.directory = store.storage_dir
        self._fresh = True  # this test has not configured or restarted the node yet

    @property
    def nodeid(self) -> bytes:
        return self.store.nodeid

    def server(self, *, readonly: bool = False, max_space: int | None = None) -> Any:
        client = self.store.start((readonly, max_space), wipe=self._fresh)
        self._fresh = False
        return client

    def current(self) -> Any:
        return self.store.running()

    def refuses(self, kind: str) -> Any:
        # Foolscap checks arguments against RIStorageServer's schema on the way out
        # (a local Violation: ServerProtocolError) and on the way in (the server's: a refusal)
        also = (ServerProtocolError,) if kind == "bad-request" else ()
        return client_refuses(kind, also)

    def close(self) -> None:
        pass  # the node outlives the test: NodeStore.stop at the end of the module
