"""Fixtures of the blob backend tests: real storage servers in process (LocalGrid)
and a NodeMaker over them."""


import pytest

from shoal.testing.local_grid import LocalGrid
from tests.local_maker import node_maker

K, HAPPY, N = 3, 4, 5


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


@pytest.fixture(scope="module")
def maker(grid):
    return node_maker(grid, K, HAPPY, N)


