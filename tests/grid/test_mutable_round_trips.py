"""Round trips and storage requests per mutable-file and directory operation, on
real storage servers in process (LocalGrid), counted by RoundTripCounter with
Tahoe's HTTP storage model (a slot_readv naming no shares costs a listing
first). The bounds are what shoal does now: an operation that needs more
fails here."""

import types

import pytest
from twisted.internet import defer

from shoal.dirnode import NodeMaker
from shoal.immutable.params import EncodingParams
from shoal.mutable import MutableClient
from shoal.node.files import ClientFiles
from shoal.testing.local_grid import LocalGrid
from shoal.testing.round_trips import RoundTripCounter
from tests.unit.mutable.vector_keys import fresh_key

K, N = 3, 10
LIT = "URI:LIT:nbswy3dp"


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


def make_maker(grid) -> NodeMaker:
    identity = types.SimpleNamespace(convergence_secret=b"C" * 32, lease_secret=b"L" * 32)
    files = ClientFiles(grid.broker, EncodingParams(K, 7, N), identity)
    return NodeMaker(files, MutableClient(grid.broker, lease_secret=b"L" * 32, k=K, n=N))


@pytest.fixture()
def counter(grid):
    c = grid.call(lambda: RoundTripCounter(listing_rounds=2).install(grid.broker))
    yield c
    grid.call(c.uninstall)


def counted(grid, counter, fn, *args, **kw):
    """(result, round trips, requests) of one operation."""
    grid.call(counter.reset)
    result = grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))
    return result, counter.rounds, counter.requests


def test_counter_counts_parallel_calls_as_one_round(grid, counter):
    maker = make_maker(grid)
    node, rounds, requests = counted(grid, counter, maker.create_directory, None, private_key=fresh_key())
    assert (rounds, requests) == (1, N)  # one test-and-write per server, all at once
    fresh = maker.node_for(node.cap)
    assert counted(grid, counter, fresh.list)[1:] == (2, N)  # listing, then the reads


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_mutable_file_operations(grid, counter, fmt):
    client = make_maker(grid).mutable
    node, rounds, requests = counted(grid, counter, client.create, b"a" * 1000, format=fmt, private_key=fresh_key())
    assert rounds <= 1 and requests <= N
    data, rounds, requests = counted(grid, counter, node.download_best_version)
    assert data == b"a" * 1000
    assert rounds <= 2 and requests <= N
    _, rounds, requests = counted(grid, counter, node.overwrite, b"b" * 1000)
    assert rounds <= 3 and requests <= 2 * N
    _, rounds, requests = counted(grid, counter, node.modify, lambda old: old + b"c")
    assert rounds <= 3 and requests <= 2 * N
    assert grid.call(lambda: defer.ensureDeferred(node.download_best_version())) == b"b" * 1000 + b"c"


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_directory_operations(grid, counter, fmt):
    maker = make_maker(grid)
    node, rounds, requests = counted(grid, counter, maker.create_directory, None, format=fmt,
                                     private_key=fresh_key())
    assert rounds <= 1 and requests <= N
    for i in range(3):
        _, rounds, requests = counted(grid, counter, node.set_child, f"c{i}", LIT)
        assert rounds <= 3 and requests <= 2 * N
    listing, rounds, requests = counted(grid, counter, node.list)
    assert sorted(listing) == ["c0", "c1", "c2"]
    assert rounds <= 2 and requests <= N
