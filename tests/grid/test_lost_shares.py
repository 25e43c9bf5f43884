"""A share lost mid-push (shoal.immutable.share_upload) meets one policy in upload and
repair alike, on real storage servers in process (LocalGrid, 12 servers for 10 shares),
whether its server dies or its writes time out: re-placed on a spare server when there
is one, dropped when the spares are full and happiness still holds, the upload failed
(nothing closed) when it does not."""

import io
import os
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet import defer

from shoal.caps import CHKCap
from shoal.checker.repair import repair_immutable
from shoal.crypto import hashes
from shoal.grid.storage_client import Deadlines
from shoal.immutable.encoder import encode_all
from shoal.immutable.params import EncodingParams, FileShape
from shoal.immutable.upload import UploadResult, UploadUnhappinessError, upload
from shoal.testing.local_grid import LocalGrid
from tests.grid.test_upload import (
    CONTAINER_HEADER,
    LEASE,
    drop_after_writes,
    fill_up,
    fresh,
    holdings,
    incoming,
    share_path,
)

KEY = b"lost-shares-key!"
SI = hashes.storage_index_hash(KEY)
PARAMS = EncodingParams(3, 7, 10, 4_002)  # 20 kB: 5 segments, several writes per share
SIZE = 20_000
DEADLINES = Deadlines(write=0.5)  # a hung write fails soon

Fault = Callable[[LocalGrid, int], None]


def dies(grid: LocalGrid, i: int) -> None:
    """Server i fails its first bucket write and disconnects."""
    drop_after_writes(grid, i, writes=1)


def times_out(grid: LocalGrid, i: int) -> None:
    """Server i never answers a bucket write."""
    grid.hang(i, methods=frozenset({"write"}))


def grid12() -> LocalGrid:
    return LocalGrid(12, deadlines=DEADLINES)


class OneWay(io.RawIOBase):
    """A stream that cannot seek (a socket, a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def order(grid: LocalGrid, si: bytes = SI) -> list[int]:
    """Grid indexes in the permuted order of the storage index."""
    index = {s.server_id: i for i, s in enumerate(grid.servers)}
    return [index[s.server_id] for s in grid.broker.get_servers_for_psi(si)]


def put(grid: LocalGrid, data: bytes, params: EncodingParams = PARAMS, source: Any = None) -> UploadResult:
    stream = source if source is not None else io.BytesIO(data)
    return grid.call(lambda: defer.ensureDeferred(upload(
        grid.broker, stream, len(data), params=params, convergence_secret=None, lease_secret=LEASE, key=KEY,
    )))


def where(grid: LocalGrid) -> dict[int, int]:
    """shnum -> grid index of the one server holding it (finished shares)."""
    out = {}
    for server, shares in holdings(grid, SI).items():
        for sh in shares:
            assert sh not in out, f"share {sh} twice"
            out[sh] = server
    return out


def upload_losing_share_0(grid: LocalGrid, data: bytes, fault: Fault) -> dict[int, int]:
    """Upload with a fault on the server of share 0: where shares end up."""
    fault(grid, order(grid)[0])
    put(grid, data)
    return where(grid)


def repair_losing_share_0(grid: LocalGrid, data: bytes, fault: Fault) -> dict[int, int]:
    """Upload, delete shares 0 and 1, repair with a fault on the server that share 0
    goes back to: where shares end up."""
    result = put(grid, data)
    first = where(grid)
    for sh in (0, 1):
        os.unlink(share_path(grid, first[sh], SI, sh))
    fault(grid, order(grid)[0])
    cap = CHKCap.from_string(result.cap)
    repaired = grid.call(lambda: defer.ensureDeferred(repair_immutable(grid.broker, cap, lease_secret=LEASE)))
    assert sorted(repaired.shares_placed) in ([0, 1], [1])
    return where(grid)


def encoded(data: bytes) -> list[bytes]:
    shape = FileShape(len(data), 3, 10, PARAMS.segment_size_for(len(data)))
    return encode_all(KEY, shape, [data])[0]


def assert_shares_are_the_files(grid: LocalGrid, data: bytes) -> None:
    shares = encoded(data)
    for sh, server in where(grid).items():
        with open(share_path(grid, server, SI, sh), "rb") as f:
            assert f.read()[CONTAINER_HEADER:][: len(shares[sh])] == shares[sh], sh


HOW = pytest.mark.parametrize("how", [upload_losing_share_0, repair_losing_share_0], ids=["upload", "repair"])
FAULT = pytest.mark.parametrize("fault", [dies, times_out], ids=["dies", "times-out"])


@HOW
@FAULT
def test_a_lost_share_is_replaced_on_a_spare_server(how, fault):
    with grid12() as g:
        data = fresh(SIZE, 1)
        ring = order(g)
        homes = how(g, data, fault)
        # share 0 moved to the first spare server; the dead one holds nothing
        assert homes == {sh: ring[10] if sh == 0 else ring[sh] for sh in range(10)}
        assert_shares_are_the_files(g, data)


@HOW
@FAULT
def test_with_the_spares_full_a_lost_share_is_dropped_while_happy(how, fault):
    with grid12() as g:
        data = fresh(SIZE, 2)
        ring = order(g)
        for spare in ring[10:]:
            fill_up(g, spare)  # announce room, refuse every share
        homes = how(g, data, fault)
        assert homes == {sh: ring[sh] for sh in range(1, 10)}
        assert incoming(g) == []


def test_upload_reports_the_replacement():
    with grid12() as g:
        ring = order(g)
        drop_after_writes(g, ring[0], writes=1)
        data = fresh(SIZE, 3)
        result = put(g, data)
        ids = [g.servers[i].server_id for i in ring]
        assert result.happiness == 10 and result.pushed_shares == 10
        assert result.sharemap == {sh: ids[10] if sh == 0 else ids[sh] for sh in range(10)}
        report = {r.server_id: r for r in result.servers}
        assert "lost sh0 while writing" in report[ids[0]].answer
        assert report[ids[10]].answer == "allocated sh0"
        # the failed write is not counted; the second pass wrote share 0 whole
        assert result.bytes_pushed == sum(len(share) for share in encoded(data))


def test_no_spare_that_takes_it_and_too_few_left_fails_and_closes_nothing():
    with grid12() as g:
        ring = order(g)
        for spare in ring[10:]:
            fill_up(g, spare)
        drop_after_writes(g, ring[0], writes=1)
        with pytest.raises(UploadUnhappinessError, match="lost sh0") as info:
            put(g, fresh(SIZE, 4), EncodingParams(3, 10, 10, 4_002))
        assert "full: refused sh0" in str(info.value)
        assert holdings(g, SI) == {} and incoming(g) == []


def test_a_source_that_cannot_be_read_again_drops_the_lost_share():
    with grid12() as g:
        ring = order(g)
        drop_after_writes(g, ring[0], writes=1)
        data = fresh(SIZE, 5)
        result = put(g, data, source=io.BufferedReader(OneWay(data)))
        assert result.happiness == 9 and sorted(result.sharemap) == list(range(1, 10))
        assert where(g) == {sh: ring[sh] for sh in range(1, 10)}


def test_a_spare_lost_too_passes_the_share_on_to_the_next():
    with grid12() as g:
        ring = order(g)
        dies(g, ring[0])
        dies(g, ring[10])  # takes share 0 in the second pass, dies at its write
        data = fresh(SIZE, 6)
        result = put(g, data)
        assert result.happiness == 10
        assert where(g) == {sh: ring[11] if sh == 0 else ring[sh] for sh in range(10)}
        assert_shares_are_the_files(g, data)
