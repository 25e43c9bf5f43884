"""The immutable downloader (shoal.immutable.download) against real storage servers
in process (LocalGrid): round trips, share choice, faults, ranges, and the
rule that no byte that failed a check ever reaches the consumer."""

import itertools
import os
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer

from shoal.caps import LiteralCap
from shoal.crypto.aes import aes_ctr
from shoal.formats.share_layout import ShareLayout
from shoal.grid.storage_client import Deadlines
from shoal.immutable import download as dl
from shoal.immutable import remote_share
from shoal.immutable.decoder import NotEnoughSharesError
from shoal.immutable.download import DownloadResult, download
from shoal.immutable.encoder import encode_all
from shoal.immutable.params import DEFAULT_MAX_SEGMENT_SIZE, EncodingParams, FileShape
from shoal.immutable.verify import verify
from shoal.storage.layout import CORRUPTION_ADVISORIES, si_b2a
from shoal.testing.local_grid import LocalGrid
from shoal.testing.reactor_thread import reactor

K, N = 3, 10
CONTAINER_HEADER = 12  # bytes before the share data in a share file
SMALL_SEG = 3000  # small segments make many-segment files cheap
_seeds = itertools.count(1000)  # every file its own key, so its own storage index


class File:
    """A file encoded 3-of-10 whose shares can be put on a grid."""

    def __init__(self, size: int, max_seg: int = DEFAULT_MAX_SEGMENT_SIZE, seed: int | None = None) -> None:
        rnd = random.Random(seed if seed is not None else next(_seeds))
        self.data = rnd.randbytes(size)
        self.shape = FileShape(size, K, N, EncodingParams(K, 1, N, max_seg).segment_size_for(size))
        self.key = rnd.randbytes(16)
        self.shares, result = encode_all(self.key, self.shape, [self.data])
        self.cap = result.cap
        self.si = result.storage_index
        s = self.shape
        self.layout = ShareLayout.compute(s.block_size, s.share_data_size, s.num_segments, s.num_share_hashes)

    def put(self, grid: LocalGrid, placement: dict[int, int] | None = None, only: Any = None) -> "File":
        shnums = range(N) if only is None else only
        grid.put_shares(self.si, {sh: self.shares[sh] for sh in shnums}, placement)
        return self

    def block_offset(self, segnum: int) -> int:
        """Offset in the share data of the block of segment segnum."""
        return self.layout.data + segnum * self.shape.block_size


def fetch(grid: Any, cap: Any, write: Any = None, **kw: Any) -> tuple[bytes, DownloadResult]:
    out: list[bytes] = []
    sink = write or out.append
    broker = kw.pop("broker", None) or grid.broker
    result = grid.call(lambda: defer.ensureDeferred(download(broker, cap, sink, **kw)))
    return b"".join(out), result


def share_file(grid: LocalGrid, server: int, si: bytes, shnum: int) -> str:
    suffix = os.sep + os.path.join(si_b2a(si), str(shnum))
    (path,) = [p for p in grid.servers[server].share_files() if p.endswith(suffix)]
    return path


def flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


def advisories(grid: LocalGrid, server: int, si: bytes) -> list[str]:
    d = os.path.join(grid.servers[server].storage_dir, CORRUPTION_ADVISORIES)
    return [name for name in os.listdir(d) if si_b2a(si) in name] if os.path.isdir(d) else []


@pytest.fixture(autouse=True)
def best_choice(monkeypatch):
    """Wait (up to half a second) for every server's answer before choosing shares,
    whatever the file size, so that tests know which shares a download uses."""
    monkeypatch.setattr(dl, "MIN_GRACE", 0.5)
    monkeypatch.setattr(dl, "GRACE_RATE", 1.0)


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


# -- round trips and share choice -----------------------------------------------


@pytest.mark.parametrize(
    "size,max_seg",
    [
        (56, DEFAULT_MAX_SEGMENT_SIZE),  # smallest CHK
        (1000, DEFAULT_MAX_SEGMENT_SIZE),  # one segment
        (SMALL_SEG, SMALL_SEG),  # exactly one segment
        (10 * SMALL_SEG, SMALL_SEG),  # whole segments, no tail
        (10 * SMALL_SEG + 7, SMALL_SEG),  # a 7-byte tail segment
        (2 * DEFAULT_MAX_SEGMENT_SIZE + 12345, DEFAULT_MAX_SEGMENT_SIZE),  # default segments and a tail
    ],
)
def test_round_trip(grid, size, max_seg):
    f = File(size, max_seg).put(grid)
    data, result = fetch(grid, f.cap)
    assert data == f.data
    assert result.bytes_written == size and result.size == size
    assert result.failures == ()
    assert result.time_to_first_byte is not None and result.elapsed >= result.time_to_first_byte
    assert set(result.shares_found) == set(range(N))


def test_primary_shares_are_chosen_when_present(grid):
    f = File(5 * SMALL_SEG, SMALL_SEG).put(grid)
    data, result = fetch(grid, f.cap)
    assert data == f.data
    assert set(result.servers_used) == {0, 1, 2}
    assert all(len(ids) == 1 for ids in result.servers_used.values())


def test_big_downloads_wait_a_little_for_primary_shares(grid, monkeypatch):
    # the default policy, scaled so that a 3 MiB download is worth up to 0.1 s of waiting
    monkeypatch.setattr(dl, "MIN_GRACE", 0.05)
    monkeypatch.setattr(dl, "GRACE_RATE", 30e6)
    f = File(3 * DEFAULT_MAX_SEGMENT_SIZE, DEFAULT_MAX_SEGMENT_SIZE).put(grid)
    data, result = fetch(grid, f.cap)
    assert data == f.data
    assert set(result.servers_used) == {0, 1, 2}
    # a small range is not worth waiting for: no grace (whichever shares came first)
    monkeypatch.setattr(dl, "MIN_GRACE", 30.0)
    data, result = fetch(grid, f.cap, offset=10, length=10)
    assert data == f.data[10:20] and result.elapsed < 10


def test_grace_runs_out_when_the_server_of_the_primaries_is_silent():
    # the planner's grace timer on the broker's clock: server 0 holds shares 0..2 and
    # never answers; the check shares elsewhere are used once the grace is over
    with LocalGrid(N, deadlines=Deadlines(query=5.0, read=5.0)) as g:
        f = File(3 * SMALL_SEG, SMALL_SEG).put(g, placement={sh: 0 if sh < K else sh for sh in range(N)})
        # silent to share lookups: listings and the first round's guessed reads by share number
        g.hang(0, methods=frozenset({"get_buckets", "read"}))
        data, result = fetch(g, f.cap)
        assert data == f.data
        assert min(result.servers_used) >= K and result.failures == ()
        assert dl.MAX_GRACE - 0.05 <= result.elapsed < 4  # waited the grace, not the query deadline


def test_check_shares_only(grid):
    f = File(4 * SMALL_SEG + 1, SMALL_SEG).put(grid, only=range(K, N))
    data, result = fetch(grid, f.cap)
    assert data == f.data
    assert len(result.servers_used) == K and min(result.servers_used) >= K


def test_one_share_per_server_when_possible(grid):
    # server 0 holds shares 0, 1 and 2; servers 1 and 2 hold one check share each
    f = File(3 * SMALL_SEG, SMALL_SEG).put(grid, placement={0: 0, 1: 0, 2: 0, 3: 1, 4: 2}, only=range(5))
    data, result = fetch(grid, f.cap)
    assert data == f.data
    servers = [ids[0] for ids in result.servers_used.values()]
    assert len(set(servers)) == K


def test_literal_and_empty_ranges(grid):
    lit = LiteralCap(b"tiny file")
    assert fetch(grid, lit)[0] == b"tiny file"
    assert fetch(grid, lit, offset=2, length=3)[0] == b"ny "
    f = File(1000)  # never put on the grid: an empty range needs no server
    data, result = fetch(grid, f.cap, offset=1000)
    assert data == b"" and result.bytes_written == 0
    with pytest.raises(ValueError):
        fetch(grid, f.cap, offset=1001)


def test_verify_cap_gives_validated_ciphertext(grid):
    f = File(4 * SMALL_SEG + 5, SMALL_SEG).put(grid)
    data, _ = fetch(grid, f.cap.verifier())
    assert data == aes_ctr(f.key, f.data)


def test_consumer_backpressure_is_awaited(grid):
    f = File(20 * SMALL_SEG, SMALL_SEG).put(grid)
    out: list[bytes] = []
    busy = [False]

    def write(chunk: bytes) -> defer.Deferred:
        assert not busy[0], "write called again before the previous one finished"
        busy[0] = True
        out.append(chunk)
        d: defer.Deferred = defer.Deferred()

        def done() -> None:
            busy[0] = False
            d.callback(None)

        reactor.callLater(0.001, done)
        return d

    fetch(grid, f.cap, write)
    assert b"".join(out) == f.data

    async def async_write(chunk: bytes) -> None:
        out.append(chunk)

    out.clear()
    fetch(grid, f.cap, async_write)
    assert b"".join(out) == f.data


def test_consumer_error_stops_the_download(grid):
    f = File(30 * SMALL_SEG, SMALL_SEG).put(grid)
    calls = []

    def write(chunk: bytes) -> None:
        calls.append(len(chunk))
        if len(calls) == 2:
            raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        fetch(grid, f.cap, write)
    assert calls == [SMALL_SEG, SMALL_SEG]


# -- ranges -------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranged(grid):
    return File(10 * 999 + 10, 999, seed=5).put(grid)  # 11 segments of 999 bytes, tail of 10


@pytest.mark.parametrize(
    "offset,length",
    [(0, 999), (999, 999), (998, 2), (999, 1), (1000, 1997), (0, 9999), (9990, 10), (9989, 11), (5, 0), (9999, 100)],
)
def test_range_at_and_across_segment_boundaries(grid, ranged, offset, length):
    data, result = fetch(grid, ranged.cap, offset=offset, length=length)
    assert data == ranged.data[offset : offset + length]
    assert result.bytes_written == len(data)


@settings(max_examples=40)
@given(st.data())
def test_any_range(grid, ranged, d):
    size = len(ranged.data)
    offset = d.draw(st.integers(0, size))
    length = d.draw(st.one_of(st.none(), st.integers(0, size + 5)))
    data, _ = fetch(grid, ranged.cap, offset=offset, length=length)
    end = size if length is None else offset + length
    assert data == ranged.data[offset:end]


def test_range_fetches_only_overlapping_segments(grid):
    f = File(6 * DEFAULT_MAX_SEGMENT_SIZE, DEFAULT_MAX_SEGMENT_SIZE).put(grid)
    seg = f.shape.segment_size
    whole, full = fetch(grid, f.cap)
    assert whole == f.data
    part, one = fetch(grid, f.cap, offset=3 * seg + 10, length=100)
    assert part == f.data[3 * seg + 10 : 3 * seg + 110]
    assert one.bytes_fetched < full.bytes_fetched / 5
    across, two = fetch(grid, f.cap, offset=4 * seg - 50, length=100)
    assert across == f.data[4 * seg - 50 : 4 * seg + 50]
    assert two.bytes_fetched < full.bytes_fetched / 2.5


def test_hash_tree_nodes_per_segment_when_trees_are_big(grid, monkeypatch):
    monkeypatch.setattr(remote_share, "SMALL_TREE", 64)  # every tree counts as big
    f = File(21 * SMALL_SEG + 5, SMALL_SEG).put(grid)
    lay = f.layout
    # share 1: a block hash tree node; share 2: a crypttext hash tree node (leaf of segment 9)
    flip(share_file(grid, 1, f.si, 1), CONTAINER_HEADER + lay.block_hashes + 32 * 40 + 1)
    flip(share_file(grid, 2, f.si, 2), CONTAINER_HEADER + lay.crypttext_hash_tree + 32 * (31 + 9))
    data, result = fetch(grid, f.cap)
    assert data == f.data
    assert {(x.shnum, x.kind) for x in result.failures} <= {(1, "corrupt"), (2, "corrupt")}
    assert (1, "corrupt") in {(x.shnum, x.kind) for x in result.failures}
    part, _ = fetch(grid, f.cap, offset=10 * SMALL_SEG - 3, length=SMALL_SEG)
    assert part == f.data[10 * SMALL_SEG - 3 : 11 * SMALL_SEG - 3]


# -- missing, damaged and unreachable shares ----------------------------------------


def test_deleted_shares(grid):
    f = File(6 * SMALL_SEG + 3, SMALL_SEG).put(grid)
    for shnum in (0, 1, 5, 6, 7):
        os.remove(share_file(grid, shnum, f.si, shnum))
    data, result = fetch(grid, f.cap)
    assert data == f.data
    assert set(result.servers_used) <= {2, 3, 4, 8, 9}


def test_too_few_shares_names_the_servers(grid):
    f = File(2 * SMALL_SEG, SMALL_SEG).put(grid, only=[1, 7])
    out: list[bytes] = []
    with pytest.raises(NotEnoughSharesError) as info:
        fetch(grid, f.cap, out.append)
    message = str(info.value)
    assert "need 3 good shares" in message
    assert "share 1 on mem1" in message and "share 7 on mem7" in message
    assert "on 2 of 10 server(s)" in message
    assert out == []


def test_corrupt_and_missing_shares_explained(grid):
    f = File(2 * SMALL_SEG, SMALL_SEG).put(grid, only=[0, 4, 8])
    flip(share_file(grid, 0, f.si, 0), CONTAINER_HEADER + f.block_offset(1) + 3)
    with pytest.raises(NotEnoughSharesError) as info:
        fetch(grid, f.cap)
    message = str(info.value)
    assert "[corrupt] share 0 on mem0" in message and "block 1" in message
    assert advisories(grid, 0, f.si)


def _regions(f: File) -> dict[str, int]:
    lay = f.layout
    return {
        "block": f.block_offset(2) + 17,
        "last block": f.block_offset(f.shape.num_segments - 1),
        "block hash tree": lay.block_hashes + 40,
        "share hash chain": lay.share_hashes + 5,
        "UEB length": lay.uri_extension + 3,
        "UEB": lay.uri_extension + 4 + 30,
        "header offsets": 15,  # inside the "data" offset field
    }


@pytest.mark.parametrize("region", list(_regions(File(5 * SMALL_SEG + 1, SMALL_SEG))))
def test_corrupt_share_on_disk(grid, region):
    f = File(5 * SMALL_SEG + 1, SMALL_SEG).put(grid)
    flip(share_file(grid, 0, f.si, 0), CONTAINER_HEADER + _regions(f)[region])
    data, result = fetch(grid, f.cap)
    assert data == f.data
    assert [(x.shnum, x.kind) for x in result.failures] == [(0, "corrupt")]
    if region not in ("block", "last block"):  # found when the share is opened
        assert 0 not in result.servers_used
    assert len(advisories(grid, 0, f.si)) == 1


def test_flipping_any_byte_never_reaches_the_consumer(grid):
    rnd = random.Random(4)
    for i in range(12):
        f = File(4 * SMALL_SEG + 11, SMALL_SEG, seed=100 + i).put(grid)
        victim = rnd.randrange(K)  # a share that is always used
        size = len(f.shares[victim])
        flip(share_file(grid, victim, f.si, victim), CONTAINER_HEADER + rnd.randrange(size))
        data, result = fetch(grid, f.cap)
        assert data == f.data
        for failure in result.failures:
            assert failure.shnum == victim and failure.kind == "corrupt"
            assert advisories(grid, victim, f.si)


def test_no_advisory_when_not_asked(grid):
    f = File(3 * SMALL_SEG, SMALL_SEG).put(grid)
    flip(share_file(grid, 1, f.si, 1), CONTAINER_HEADER + f.block_offset(0))
    data, result = fetch(grid, f.cap, report_corruption=False)
    assert data == f.data and result.failures[0].shnum == 1
    assert advisories(grid, 1, f.si) == []


def test_read_timeout_switches_share_and_slow_servers_are_not_awaited():
    with LocalGrid(N, deadlines=Deadlines(query=0.5, read=0.5)) as grid:
        f = File(4 * SMALL_SEG, SMALL_SEG).put(grid)
        # share 0's reads never answer; servers 8 and 9 never answer get_buckets
        grid.hang(0, methods=frozenset({"read"}))
        grid.hang(8, methods=frozenset({"get_buckets"}))
        grid.hang(9, methods=frozenset({"get_buckets"}))
        data, result = fetch(grid, f.cap)
        assert data == f.data
        assert [(x.shnum, x.kind) for x in result.failures] == [(0, "timeout")]
        assert result.elapsed < 5
        assert advisories(grid, 0, f.si) == []


@pytest.fixture(scope="module")
def lying_grid():
    # servers 0..6 flip a bit of every read covering share-data offset 0x24 + 1000 + 5:
    # the block of segment 1 in files with 3000-byte segments
    g = LocalGrid(N, lying={i: 0x24 + SMALL_SEG // K + 5 for i in range(7)})
    yield g
    g.close()


def test_lying_server(lying_grid):
    g = lying_grid
    f = File(4 * SMALL_SEG, SMALL_SEG, seed=1)
    f.put(g, placement={sh: 0 if sh == 0 else 7 + sh % 3 for sh in range(N)})
    data, result = fetch(g, f.cap)
    assert data == f.data
    assert [(x.shnum, x.kind) for x in result.failures] == [(0, "corrupt")]
    assert "block 1" in result.failures[0].reason
    assert len(advisories(g, 0, f.si)) == 1
    assert 0 in result.servers_used  # segment 0 came from share 0 before it lied


def test_lying_servers_on_all_but_k_shares(lying_grid):
    g = lying_grid
    f = File(6 * SMALL_SEG + 99, SMALL_SEG, seed=2).put(g)  # share i on server i: 0..6 lie
    data, result = fetch(g, f.cap)
    assert data == f.data
    assert {x.shnum for x in result.failures} <= set(range(7))
    assert all(x.kind == "corrupt" for x in result.failures)
    for sh in {x.shnum for x in result.failures}:
        assert advisories(g, sh, f.si)


def test_all_shares_lying_delivers_only_good_segments(lying_grid):
    g = lying_grid
    f = File(6 * SMALL_SEG, SMALL_SEG, seed=3).put(g, placement={sh: sh % 7 for sh in range(N)})
    out: list[bytes] = []
    with pytest.raises(NotEnoughSharesError) as info:
        fetch(g, f.cap, out.append)
    written = b"".join(out)
    assert written == f.data[: len(written)]
    assert len(written) <= SMALL_SEG  # nothing of segment 1 or later
    assert "[corrupt]" in str(info.value)


def test_servers_stopped_before_and_during_download():
    with LocalGrid(N) as g:
        during = File(100 * SMALL_SEG + 1, SMALL_SEG, seed=8).put(g)
        before = File(20 * SMALL_SEG, SMALL_SEG, seed=9).put(g)
        out: list[bytes] = []

        def write(chunk: bytes) -> None:
            if not out:  # after the first segment: stop n-k servers, primaries' included
                for i in range(N - K):
                    g.servers[i].stop()
            out.append(chunk)

        _, result = fetch(g, during.cap, write)
        assert b"".join(out) == during.data
        assert set(result.servers_used) >= {7, 8, 9}
        assert {x.kind for x in result.failures} == {"unreachable"}
        # the same servers are still down when the next download starts
        data, result = fetch(g, before.cap)
        assert data == before.data
        assert set(result.servers_used) == {7, 8, 9}


# -- verify ---------------------------------------------------------------------


def test_verify_checks_every_share(grid):
    f = File(7 * SMALL_SEG + 3, SMALL_SEG).put(grid)
    flip(share_file(grid, 5, f.si, 5), CONTAINER_HEADER + f.block_offset(6) + 1)  # a late block
    os.remove(share_file(grid, 9, f.si, 9))
    result = grid.call(lambda: defer.ensureDeferred(verify(grid.broker, f.cap.verifier())))
    assert set(result.good) == {0, 1, 2, 3, 4, 6, 7, 8}
    assert [(x.shnum, x.kind) for x in result.failures] == [(5, "corrupt")]
    assert "block 6" in result.failures[0].reason
    assert result.recoverable
    assert advisories(grid, 5, f.si)
