"""Round trips and storage requests per mutable-file and directory operation, on
real storage servers in process (LocalGrid), counted by RoundTripCounter with
Tahoe's HTTP storage model (a slot_readv naming no shares costs a listing
first). A client remembers where it saw a file's shares (ShareHints), so its
next read asks those servers for those shares without listing. Before hints
(HTTP model): read 2 round trips, overwrite/modify 3, directory list 2, add
child 3. The bounds are what shoal does now: an operation that needs more
fails here."""

import types

import pytest
from twisted.internet import defer

from shoal.dirnode import NodeMaker
from shoal.immutable.params import EncodingParams
from shoal.mutable import MODE_READ, MODE_WRITE, MutableClient
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
    fresh = make_maker(grid).node_for(node.cap)  # a client with no hints
    assert counted(grid, counter, fresh.list)[1:] == (2, N)  # listing, then the reads
    assert counted(grid, counter, fresh.list)[1:] == (1, N)  # the hinted shares at once


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_mutable_file_operations(grid, counter, fmt):
    client = make_maker(grid).mutable
    node, rounds, requests = counted(grid, counter, client.create, b"a" * 1000, format=fmt, private_key=fresh_key())
    assert rounds <= 1 and requests <= N
    data, rounds, requests = counted(grid, counter, node.download_best_version)
    assert data == b"a" * 1000
    assert rounds <= 1 and requests <= N  # the hinted shares, read whole at once
    _, rounds, requests = counted(grid, counter, node.overwrite, b"b" * 1000)
    assert rounds <= 2 and requests <= 3 * N  # hinted reads + listings, then the writes
    _, rounds, requests = counted(grid, counter, node.modify, lambda old: old + b"c")
    assert rounds <= 2 and requests <= 3 * N
    other = make_maker(grid).mutable.node_for(node.cap)  # a client that never saw the file
    data, rounds, requests = counted(grid, counter, other.download_best_version)
    assert data == b"b" * 1000 + b"c"
    assert rounds <= 2 and requests <= N
    assert grid.call(lambda: defer.ensureDeferred(node.download_best_version())) == b"b" * 1000 + b"c"


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_directory_operations(grid, counter, fmt):
    maker = make_maker(grid)
    node, rounds, requests = counted(grid, counter, maker.create_directory, None, format=fmt,
                                     private_key=fresh_key())
    assert rounds <= 1 and requests <= N
    for i in range(3):
        _, rounds, requests = counted(grid, counter, node.set_child, f"c{i}", LIT)
        assert rounds <= 2 and requests <= 3 * N
    listing, rounds, requests = counted(grid, counter, node.list)
    assert sorted(listing) == ["c0", "c1", "c2"]
    assert rounds <= 1 and requests <= N


def test_wrong_hints_still_find_the_shares(grid):
    """Hints pointing at the wrong shares cost a round trip, never a share: a read
    falls back to the full search, a write's map lists every server."""
    client = make_maker(grid).mutable
    node = grid.call(lambda: defer.ensureDeferred(client.create(b"data", private_key=fresh_key())))
    si = node.storage_index
    ids = [s.server_id for s in grid.servers]
    client.share_hints.put(si, {ids[0]: frozenset({200})})
    smap = grid.call(lambda: defer.ensureDeferred(node.servermap(MODE_READ)))
    assert smap.is_recoverable()
    assert grid.call(lambda: defer.ensureDeferred(node.download_best_version())) == b"data"
    # a write map with hints naming one share per server still finds all N (the listing)
    client.share_hints.put(si, {ids[0]: frozenset({0})})
    smap = grid.call(lambda: defer.ensureDeferred(node.servermap(MODE_WRITE)))
    assert len(smap.shares) == N
    assert client.share_hints.get(si) == {sid: frozenset({sh}) for sid, sh in smap.shares}
    grid.call(lambda: defer.ensureDeferred(node.overwrite(b"new")))
    assert grid.call(lambda: defer.ensureDeferred(make_maker(grid).mutable.node_for(node.cap)
                                                  .download_best_version())) == b"new"


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_a_share_bigger_than_the_first_read(grid, counter, fmt):
    """A version whose shares outgrow INITIAL_READ: the first read of a new client
    needs a second round; the client then asks for whole shares (up to
    MAX_HINTED_READ), so its next reads, and a writer's, take one."""
    client = make_maker(grid).mutable
    data = bytes(range(256)) * 80  # 20 KiB: about 7 KiB a share at k=3
    node = grid.call(lambda: defer.ensureDeferred(client.create(data, format=fmt, private_key=fresh_key())))
    got, rounds, _ = counted(grid, counter, node.download_best_version)
    assert got == data and rounds <= 1  # the creator knows the share size from its publish
    other = make_maker(grid).mutable.node_for(node.cap)
    got, rounds, _ = counted(grid, counter, other.download_best_version)
    assert got == data and rounds <= 3  # listing, the first 4 KiB, the rest
    got, rounds, requests = counted(grid, counter, other.download_best_version)
    assert got == data and rounds <= 1 and requests <= N
    _, rounds, _ = counted(grid, counter, other.overwrite, data[::-1])
    assert rounds <= 2
    assert counted(grid, counter, node.download_best_version)[0] == data[::-1]


def test_size_then_bytes_in_one_map(grid, counter):
    """What the web's GET needs (size for Content-Length, tag, then the bytes) from
    one server map: one round trip for a small file, none more for its bytes."""
    client = make_maker(grid).mutable
    node = grid.call(lambda: defer.ensureDeferred(client.create(b"hello" * 100, private_key=fresh_key())))
    version, rounds, requests = counted(grid, counter, node.best_readable_version)
    assert (version.size, rounds, requests) == (500, 1, N)
    assert version.tag.startswith('"1-')
    parts: list[bytes] = []
    _, rounds, requests = counted(grid, counter, version.read, parts.append, 100, 10)
    assert b"".join(parts) == (b"hello" * 100)[100:110]
    assert (rounds, requests) == (0, 0)


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_a_modify_after_a_read_writes_from_its_map(grid, counter, fmt):
    """The web links a child by looking the name up (a read), then adding it: the
    add writes from the read's map (one round trip: the test-and-set writes)."""
    maker = make_maker(grid)
    node = grid.call(lambda: defer.ensureDeferred(maker.create_directory(None, format=fmt, private_key=fresh_key())))
    fresh = make_maker(grid).node_for(node.cap)  # no keys, no hints
    assert counted(grid, counter, fresh.list)[1] == 2
    _, rounds, requests = counted(grid, counter, fresh.set_child, "a", LIT)
    assert (rounds, requests) == (1, N)
    assert counted(grid, counter, fresh.list)[1] == 1
    _, rounds, _ = counted(grid, counter, fresh.set_child, "b", LIT)
    assert rounds == 1
    # no read before, but this client wrote the version: it writes from its own map
    _, rounds, _ = counted(grid, counter, fresh.set_child, "c", LIT)
    assert rounds == 1
    other = make_maker(grid).node_for(node.cap)
    grid.call(lambda: defer.ensureDeferred(other.list()))  # hints, so the write map costs one round
    _, rounds, _ = counted(grid, counter, other.set_child, "d", LIT)  # read, then write from it
    assert rounds == 1
    _, rounds, _ = counted(grid, counter, fresh.set_child, "e", LIT)  # someone else wrote since: refused, retried
    assert rounds == 3
    assert sorted(grid.call(lambda: defer.ensureDeferred(make_maker(grid).node_for(node.cap).list()))) == [
        "a", "b", "c", "d", "e"]


def test_a_modify_from_a_stale_read_retries_and_loses_nothing(grid):
    """Another writer changes the file between our read and our modify: the
    test-and-set write from the read's map fails, modify retries on a fresh map,
    and both changes are there."""
    maker = make_maker(grid)
    node = grid.call(lambda: defer.ensureDeferred(maker.create_directory(None, private_key=fresh_key())))
    ours = make_maker(grid).node_for(node.cap)
    grid.call(lambda: defer.ensureDeferred(ours.list()))
    theirs = make_maker(grid).node_for(node.cap)
    grid.call(lambda: defer.ensureDeferred(theirs.set_child("theirs", LIT)))
    grid.call(lambda: defer.ensureDeferred(ours.set_child("ours", LIT)))
    assert sorted(grid.call(lambda: defer.ensureDeferred(make_maker(grid).node_for(node.cap).list()))) == [
        "ours", "theirs"]
