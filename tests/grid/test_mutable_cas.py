"""Compare-and-swap overwrites of mutable files (MutableFileNode.overwrite_if, the
web API's If-Match) on real storage servers in process: a stale tag changes
nothing, and of two writers starting from one version never both succeed,
whether they share a client (its lock) or not (the servers' test-and-set)."""

import pytest
from twisted.internet import defer

from shoal.mutable import MutableClient, VersionChangedError, normalize_tag, version_tag
from shoal.testing.local_grid import LocalGrid
from tests.unit.mutable.vector_keys import fresh_key

K, N = 3, 7


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


def run(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


async def current_tag(node) -> str:
    seen = []
    await node.read(lambda _: None, on_version=seen.append)
    return version_tag(seen[-1])


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_stale_tag_changes_nothing(grid, fmt):
    client = MutableClient(grid.broker, lease_secret=b"L" * 32, k=K, n=N)
    node = run(grid, client.create, b"v1", format=fmt, private_key=fresh_key())
    t1 = run(grid, current_tag, node)
    assert t1.startswith('"1-') and normalize_tag(t1) == t1.strip('"')
    v2 = run(grid, node.overwrite_if, b"v2", t1)
    t2 = version_tag(v2)
    assert t2.startswith('"2-') and run(grid, current_tag, node) == t2
    with pytest.raises(VersionChangedError, match="not"):
        run(grid, node.overwrite_if, b"v3 from a stale reader", t1)
    assert run(grid, node.download_best_version) == b"v2"
    assert version_tag(run(grid, node.overwrite_if, b"v3", "*")).startswith('"3-')
    assert version_tag(run(grid, node.overwrite_if, b"v4", "W/" + normalize_tag(run(grid, current_tag, node))))
    assert run(grid, node.download_best_version) == b"v4"


def test_two_writers_from_one_version_never_both_win(grid):
    a = MutableClient(grid.broker, lease_secret=b"A" * 32, k=K, n=N)
    b = MutableClient(grid.broker, lease_secret=b"B" * 32, k=K, n=N)
    wins = 0
    for round_ in range(4):
        node_a = run(grid, a.create, b"start", format="SDMF", private_key=fresh_key())
        pairs = [(node_a, b.node_for(node_a.cap)),  # two clients: the servers' test-and-set decides
                 (node_a, a.node_for(node_a.cap))]  # one client: its lock serialises them
        for x, y in pairs:
            tag = run(grid, current_tag, x)

            async def race(x=x, y=y, tag=tag, round_=round_):
                return await defer.DeferredList(
                    [defer.ensureDeferred(x.overwrite_if(b"from x %d" % round_, tag)),
                     defer.ensureDeferred(y.overwrite_if(b"from y %d" % round_, tag))], consumeErrors=True)

            results = run(grid, race)
            failures = [r.value for ok, r in results if not ok]
            assert failures, "both conditional writers succeeded from one version"
            assert all(isinstance(f, VersionChangedError) for f in failures), failures
            if len(failures) == 1:
                wins += 1
                winner = [r for ok, r in results if ok][0]
                content = run(grid, x.download_best_version)
                assert content in (b"from x %d" % round_, b"from y %d" % round_)
                assert run(grid, current_tag, x) == version_tag(winner)
            # whatever happened, a fresh read-then-write settles the file
            settled = run(grid, x.overwrite_if, b"settled", run(grid, current_tag, x))
            assert run(grid, y.download_best_version) == b"settled" and settled.seqnum >= 3
    assert wins >= 4  # the same-client pairs always have exactly one winner
