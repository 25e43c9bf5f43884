"""Runs every test in this directory once per storage implementation in HARNESSES.

"server" is the transport-free StorageServer called directly; "local" is the
same server through LocalStorageClient; "node" is a real storage node process
(one per test module) through FoolscapStorageClient; "http" is the server behind its HTTP
adapter on a TLS port, through HttpStorageClient; "tahoe-http" is a Tahoe 1.20 storage
node (the reference server) through HttpStorageClient. To run the suite against
another implementation, add a factory ``(request, tmp_path) -> Harness`` to
HARNESSES (see harness.py for the contract).
"""

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.storage_suite.harness import Harness, LocalClientHarness, ServerHarness
from tests.storage_suite.harness_http import HttpHarness
from tests.storage_suite.harness_node import NodeHarness, NodeStore
from tests.storage_suite.harness_tahoe_http import TahoeHttpHarness, TahoeStore


@pytest.fixture(scope="module")
def node_store(tmp_path_factory: Any) -> Iterator[NodeStore]:
    store = NodeStore(str(tmp_path_factory.mktemp("storage-node") / "node"))
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="module")
def tahoe_store(tmp_path_factory: Any) -> Iterator[TahoeStore]:
    store = TahoeStore(str(tmp_path_factory.mktemp("tahoe-node") / "node"))
    try:
        yield store
    finally:
        store.stop()


HARNESSES: dict[str, Callable[[pytest.FixtureRequest, Any], Harness]] = {
    "server": lambda request, tmp_path: ServerHarness(os.path.join(str(tmp_path), "storage")),
    "local": lambda request, tmp_path: LocalClientHarness(os.path.join(str(tmp_path), "storage")),
    "node": lambda request, tmp_path: NodeHarness(request.getfixturevalue("node_store")),
    "http": lambda request, tmp_path: HttpHarness(os.path.join(str(tmp_path), "storage"), request.node.name),
    "tahoe-http": lambda request, tmp_path: TahoeHttpHarness(request.getfixturevalue("tahoe_store"),
                                                             request.node.name),
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Harness]:
    made = HARNESSES[request.param](request, tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def server(harness: Harness) -> Any:
    return harness.current()
