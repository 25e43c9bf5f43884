"""Integration fixtures: real node processes on 127.0.0.1, one per module where possible."""

import pytest

from shoal.testing.processes import NodeProcess, create_storage_node, start_node
from shoal.testing.sync_storage import SyncStorage, foolscap_storage


@pytest.fixture(scope="module")
def storage_node(tmp_path_factory) -> NodeProcess:
    nodedir = str(tmp_path_factory.mktemp("storage") / "node")
    create_storage_node(nodedir)
    node = start_node(nodedir)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def remote(storage_node) -> SyncStorage:
    client = foolscap_storage(storage_node.read_private("storage.furl"))
    yield client
    client.close()
