"""Uploads of the same file at the same moment (issue #9) against real storage
servers in process (LocalGrid): one client node coalesces them into one
upload, and a server refusing shares another client is writing is not
reported as full."""

import io
import random
import types

import pytest
from twisted.internet import defer

from shoal.crypto import hashes
from shoal.crypto.convergence import convergent_key
from shoal.immutable.params import EncodingParams
from shoal.immutable.upload import SourceError, UploadFullError, UploadUnhappinessError, upload
from shoal.node.files import ClientFiles
from shoal.testing.local_grid import LocalGrid

SECRET = b"concurrent-tests-convergence-sec"
LEASE = b"concurrent-tests-lease-secret-32"
PARAMS = EncodingParams(3, 7, 10)


@pytest.fixture(scope="module")
def grid():
    with LocalGrid(10) as g:
        yield g


def client_files(grid: LocalGrid) -> ClientFiles:
    identity = types.SimpleNamespace(convergence_secret=SECRET, lease_secret=LEASE)
    return ClientFiles(grid.broker, PARAMS, identity)  # type: ignore[arg-type]


def storage_index(data: bytes) -> bytes:
    return hashes.storage_index_hash(key_of(data))


@pytest.mark.parametrize("size", [20_000, 3_000_000])  # hashed inline / in the CPU pool
def test_eight_concurrent_uploads_of_one_file_are_one_upload(grid, size):
    data = random.Random(size).randbytes(size)
    files = client_files(grid)

    def eight():
        ds = [defer.ensureDeferred(files.upload(io.BytesIO(data), size)) for _ in range(8)]
        return defer.DeferredList(ds, consumeErrors=True)

    outcomes = grid.call(eight)
    failures = [r for ok, r in outcomes if not ok]
    assert failures == []
    results = [r for _, r in outcomes]
    assert len({r.cap for r in results}) == 1
    assert sum(r.pushed_shares for r in {id(r): r for r in results}.values()) == 10  # pushed once
    assert files.in_flight.running() == 0


def test_a_waiter_that_goes_away_leaves_the_upload_alone(grid):
    data = random.Random(7).randbytes(50_000)
    files = client_files(grid)

    def two():
        first = defer.ensureDeferred(files.upload(io.BytesIO(data), len(data)))
        second = defer.ensureDeferred(files.upload(io.BytesIO(data), len(data)))
        second.cancel()
        second.addErrback(lambda f: f.trap(defer.CancelledError) and None)
        return defer.gatherResults([first, second])

    result, cancelled = grid.call(two)
    assert result.pushed_shares == 10 and cancelled is None


def key_of(data: bytes) -> bytes:
    return convergent_key([data], SECRET, PARAMS.k, PARAMS.n, PARAMS.segment_size_for(len(data)))


def test_a_leader_whose_source_fails_hands_over_to_a_waiter(grid):
    files = client_files(grid)
    data = random.Random(8).randbytes(50_000)
    key = key_of(data)  # as the web API passes it: hashed while the body arrived

    def two():
        short = io.BytesIO(data[:40_000])  # the leader's source ends early
        ds = [defer.ensureDeferred(files.upload(short, len(data), key=key)),
              defer.ensureDeferred(files.upload(io.BytesIO(data), len(data), key=key))]
        return defer.DeferredList(ds, consumeErrors=True)

    (ok1, first), (ok2, second) = grid.call(two)
    assert not ok1 and first.check(SourceError)
    assert ok2 and second.pushed_shares == 10
    assert files.in_flight.running() == 0


def test_a_grid_failure_is_every_waiters():
    data = random.Random(10).randbytes(50_000)
    with LocalGrid(2) as small:  # happiness 7 cannot be had from 2 servers
        files = client_files(small)

        def three():
            ds = [defer.ensureDeferred(files.upload(io.BytesIO(data), len(data))) for _ in range(3)]
            return defer.DeferredList(ds, consumeErrors=True)

        outcomes = small.call(three)
    assert all(not ok and f.check(UploadUnhappinessError) for ok, f in outcomes)
    assert len({id(f.value) for _, f in outcomes}) == 1  # one upload, its error for all


def test_shares_being_uploaded_elsewhere_are_busy_not_full(grid):
    """Another client holds writers for every share on every server: the
    upload is unhappy (503), not full (507), and says why."""
    data = random.Random(9).randbytes(60_000)
    si = storage_index(data)

    def hold() -> list:
        writers = []
        for server in grid.servers:
            _, got = server.storage.allocate_buckets(si, b"r" * 32, b"c" * 32, set(range(10)), 30_000)
            writers += got.values()
        return writers

    writers = grid.call(hold)
    try:
        with pytest.raises(UploadUnhappinessError) as caught:
            grid.call(lambda: defer.ensureDeferred(upload(
                grid.broker, io.BytesIO(data), len(data), params=PARAMS,
                convergence_secret=SECRET, lease_secret=LEASE,
            )))
        assert not isinstance(caught.value, UploadFullError)
        assert "being uploaded by another client" in str(caught.value)
        assert "full" not in str(caught.value)
    finally:
        grid.call(lambda: [w.abort() for w in writers])
