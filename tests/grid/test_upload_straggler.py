"""A storage server behind a slow uplink (LocalGrid.slow: its bucket calls queue, each
taking seconds) does not stall an upload that has enough faster servers: the push
gives its share up (shoal.placement.straggler), happiness still holds, the cap is the
one a fast grid gives, the file downloads and the checker counts n-1 shares as Tahoe
would; with too few fast servers the upload waits for the slow one instead."""

import io
import os
import time

from twisted.internet import defer

from shoal.caps import CHKCap
from shoal.checker import FileChecker
from shoal.immutable.download import download
from shoal.immutable.params import EncodingParams
from shoal.immutable.upload import UploadResult, upload
from shoal.storage.layout import si_b2a
from shoal.testing.local_grid import LocalGrid

SECRET = b"straggler-tests-convergence-sec!"
LEASE = b"straggler-tests-lease-secret-32b"
DATA = os.urandom(600_000)  # one write per share (300 kB), then its close


def put(grid: LocalGrid, params: EncodingParams) -> tuple[UploadResult, float]:
    start = time.monotonic()
    result = grid.call(lambda: defer.ensureDeferred(upload(
        grid.broker, io.BytesIO(DATA), len(DATA), params=params, convergence_secret=SECRET, lease_secret=LEASE,
    )))
    return result, time.monotonic() - start


def holders(grid: LocalGrid, si: bytes) -> set[int]:
    """Indexes of the servers holding a finished share of the file."""
    marker = os.sep + si_b2a(si) + os.sep
    return {i for i, s in enumerate(grid.servers) if any(marker in p for p in s.share_files())}


def test_a_server_on_a_slow_uplink_is_given_up_when_the_rest_are_happy():
    params = EncodingParams(2, 3, 5)
    with LocalGrid(5) as fast:
        reference, _ = put(fast, params)
    with LocalGrid(5) as grid:
        grid.slow(4, 30.0)  # every write, close or abort there: 30 s, one after another
        result, took = put(grid, params)
        slow_id = grid.servers[4].server_id
        assert took < 15  # not the 30 s of the slow server's one write
        assert result.cap == reference.cap  # only placement changed
        assert result.pushed_shares == 4 and result.happiness == 4
        assert slow_id not in result.sharemap.values()
        (report,) = [r for r in result.servers if r.server_id == slow_id]
        assert "given up: its writes lagged" in report.answer and report.allocated == frozenset()
        assert report.dropped == frozenset(range(5)) - set(result.sharemap)  # the one share it was given
        cap = CHKCap.from_string(result.cap)
        assert holders(grid, cap.storage_index) == {0, 1, 2, 3}

        out: list[bytes] = []
        grid.call(lambda: defer.ensureDeferred(download(grid.broker, cap, out.append)))
        assert b"".join(out) == DATA
        checked = grid.call(lambda: defer.ensureDeferred(FileChecker(grid.broker, lease_secret=LEASE).check(cap)))
        assert checked.recoverable and not checked.healthy  # Tahoe: healthy means all n shares
        assert checked.count_shares_good == 4 and checked.summary == "Not Healthy: 4 shares (enc 2-of-5)"


def test_a_slow_server_needed_for_happiness_is_waited_for():
    """Happy 4 of 5 with two slow servers: one is given up, the other is needed and
    the upload waits for it (each of its calls 2.6 s: past the 2 s floor)."""
    params = EncodingParams(2, 4, 5)
    with LocalGrid(5) as grid:
        grid.slow(3, 2.6)
        grid.slow(4, 2.6)
        result, took = put(grid, params)
        assert took >= 2 * 2.6  # its write and its close
        assert result.pushed_shares == 4 and result.happiness == 4
        answers = {grid.servers[i].server_id: None for i in (3, 4)}
        given_up = [r.server_id for r in result.servers if r.server_id in answers and "given up" in r.answer]
        assert len(given_up) == 1
        kept = ({3, 4} - {i for i in (3, 4) if grid.servers[i].server_id in given_up}).pop()
        assert holders(grid, CHKCap.from_string(result.cap).storage_index) == {0, 1, 2, kept}
