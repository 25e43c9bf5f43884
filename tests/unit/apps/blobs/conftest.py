"""Fixtures of the blob backend tests: real storage servers in process (LocalGrid)
and a NodeMaker over them."""

import types

import pytest

from shoal.dirnode import NodeMaker
from shoal.immutable.params import EncodingParams
from shoal.mutable import MutableClient
from shoal.mutable.keypool import KeyPool
from shoal.node.files import ClientFiles
from shoal.testing.local_grid import LocalGrid
from tests.unit.mutable.vector_keys import fresh_key

K, HAPPY, N = 3, 4, 5


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


@pytest.fixture(scope="module")
def maker(grid):
    identity = types.SimpleNamespace(convergence_secret=b"C" * 32, lease_secret=b"L" * 32)
    files = ClientFiles(grid.broker, EncodingParams(K, HAPPY, N), identity)
    return NodeMaker(files, MutableClient(grid.broker, lease_secret=b"L" * 32, k=K, n=N,
                                          key_pool=KeyPool(0, fresh_key)))


