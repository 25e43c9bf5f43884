"""The downloader's guessed first round for small files (shoal.immutable.share_finder):
shares 0..k-1 are read from the first k servers of the permuted ring together with
the listing queries. Against real storage servers in process (LocalGrid): one round
trip on a healthy grid, and a guess that misses (no share there, a dead or silent
server) is no find and no fault, while a guessed share that is corrupt is caught by
the same checks as any other share."""

from collections import Counter
from typing import Any

import pytest
from twisted.internet import defer

from shoal.grid.storage_client import Deadlines
from shoal.immutable.download import download
from shoal.testing import local_storage
from shoal.testing.local_grid import LocalGrid, flip_bit_at
from tests.grid.test_download import File, K, N
from tests.grid.test_download import advisories as server_advisories

SIZE = 4096


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


@pytest.fixture
def calls(monkeypatch):
    """Every storage call the client makes: (server name, method), in order."""
    seen: list[tuple[str, str]] = []
    real = local_storage._Link.call

    def call(self: Any, seconds: float, method: str, fn: Any, *args: Any, **kw: Any) -> Any:
        seen.append((self.name, method))
        return real(self, seconds, method, fn, *args, **kw)

    monkeypatch.setattr(local_storage._Link, "call", call)
    return seen


def ring(grid: LocalGrid, si: bytes) -> list[int]:
    """Grid server indexes in the permuted order for si."""
    index = {s.server_id: i for i, s in enumerate(grid.servers)}
    return [index[s.server_id] for s in grid.broker.get_servers_for_psi(si)]


def put_on_ring(grid: LocalGrid, f: File, shift: int = 0) -> list[int]:
    """Share i on ring server (i + shift) mod N, as an upload puts it when shift is 0."""
    order = ring(grid, f.si)
    f.put(grid, placement={sh: order[(sh + shift) % N] for sh in range(N)})
    return order


def fetch(grid: Any, cap: Any) -> tuple[bytes, Any]:
    out: list[bytes] = []
    result = grid.call(lambda: defer.ensureDeferred(download(grid.broker, cap, out.append)))
    return b"".join(out), result


def advisories(grid: LocalGrid, si: bytes) -> list[str]:
    """Corruption advisories about si on every server."""
    return [name for i in range(N) for name in server_advisories(grid, i, si)]


def test_healthy_grid_one_round_trip(grid, calls):
    f = File(SIZE)
    order = put_on_ring(grid, f)
    calls.clear()
    # no server ever answers its listing: the guessed reads alone bring the file
    for i in range(N):
        grid.hang(i, methods=frozenset({"get_buckets"}))
    try:
        data, result = fetch(grid, f.cap)
    finally:
        for i in range(N):
            grid.hang(i, False, methods=frozenset())
    assert data == f.data and result.failures == ()
    names = [grid.servers[i].name for i in order]
    assert Counter(m for _, m in calls) == {"get_buckets": N, "read": K}
    assert sorted(name for name, m in calls if m == "read") == sorted(names[:K])
    assert set(result.servers_used) == set(range(K))


def test_requests_per_small_file(grid, calls):
    f = File(SIZE)
    put_on_ring(grid, f)
    calls.clear()
    data, result = fetch(grid, f.cap)
    assert data == f.data
    # one listing per server and one read per share used: header, trees and block at once
    assert Counter(m for _, m in calls) == {"get_buckets": N, "read": K}


def test_guessed_shares_missing(grid, calls):
    f = File(SIZE)
    put_on_ring(grid, f, shift=K)  # the first k ring servers hold check shares 7, 8, 9
    data, result = fetch(grid, f.cap)
    assert data == f.data
    assert result.failures == ()  # a guess that missed is not a rejected share
    assert advisories(grid, f.si) == []
    assert set(result.shares_found) == set(range(N))


def test_guessed_shares_absent_from_the_grid(grid, calls):
    f = File(SIZE)
    order = ring(grid, f.si)
    f.put(grid, placement={sh: order[sh] for sh in range(K, N)}, only=range(K, N))  # no primaries at all
    data, result = fetch(grid, f.cap)
    assert data == f.data and result.failures == ()
    assert min(result.servers_used) >= K


def test_guessed_share_on_a_disconnected_server(calls):
    with LocalGrid(N) as g:
        f = File(SIZE)
        order = put_on_ring(g, f)
        g.disconnect(order[0])  # its guessed read (if sent) fails at once; nobody is blamed
        data, result = fetch(g, f.cap)
        assert data == f.data and result.failures == ()
        assert 0 not in result.servers_used


def test_guessed_share_on_a_silent_server():
    # the first ring server never answers anything: the others' shares are used,
    # nothing is reported, and the download does not wait for the silent server
    with LocalGrid(N, deadlines=Deadlines(query=30.0, read=30.0)) as g:
        f = File(SIZE)
        order = put_on_ring(g, f)
        g.hang(order[0])
        data, result = fetch(g, f.cap)
        assert data == f.data and result.failures == ()
        assert 0 not in result.servers_used and result.elapsed < 10



def test_guessed_read_slower_than_the_listing():
    # server of share 0 lists at once but its reads never answer: the share opened
    # with the guessed read times out (a timeout, not corruption) and another is used
    with LocalGrid(N, deadlines=Deadlines(query=5.0, read=0.3)) as g:
        f = File(SIZE)
        order = put_on_ring(g, f)
        g.hang(order[0], methods=frozenset({"read"}))
        data, result = fetch(g, f.cap)
        assert data == f.data
        assert 0 not in result.servers_used
        assert [fl.kind for fl in result.failures if fl.shnum == 0] == ["timeout"]
        assert all(fl.kind != "corrupt" for fl in result.failures)



def test_guessed_share_corrupt():
    # the guessed read brings share 0 with one bit flipped in its block: caught by the
    # block hash check, reported as the corrupt share it is, and replaced
    with LocalGrid(N) as g:
        f = File(SIZE)
        order = put_on_ring(g, f)
        g.set_lying(order[0], reads=flip_bit_at(f.block_offset(0) + 5))
        data, result = fetch(g, f.cap)
        assert data == f.data
        assert [(fl.shnum, fl.kind) for fl in result.failures] == [(0, "corrupt")]
        assert 0 not in result.servers_used
        assert len(advisories(g, f.si)) == 1
