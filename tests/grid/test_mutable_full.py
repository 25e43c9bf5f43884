"""Mutable files on full storage servers (issue #10), real servers in process
(LocalGrid): SDMF and MDMF create and overwrite on servers over their
max_space, or whose disk answers ENOSPC, fail as the grid being full (the
web API's 507) with every server's own reason, as an immutable upload does."""

import errno
import random

import pytest
from twisted.internet import defer

from shoal.mutable import MutableClient, MutableFullError, NotEnoughServersError
from shoal.storage import slots
from shoal.testing.local_grid import LocalGrid
from shoal.web.common import humanize
from tests.unit.mutable.vector_keys import fresh_key

K, N = 3, 5
ROOM = 30_000  # each server takes a small file's share, not a 200 kB one's


@pytest.fixture(scope="module")
def grid():
    with LocalGrid(N, max_space={i: ROOM for i in range(N)}) as g:
        yield g


@pytest.fixture(scope="module")
def client(grid):
    return MutableClient(grid.broker, lease_secret=b"L" * 32, k=K, n=N)


def run(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


def assert_full(error: BaseException, reason: str) -> None:
    assert isinstance(error, MutableFullError)
    text, status = humanize(error)
    assert status == 507
    assert text.count(reason) == N  # every server's own reason
    assert "Traceback" not in text and "CopiedFailure" not in text and "\n" not in text


BIG = random.Random(1).randbytes(200_000)


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_create_on_full_servers_is_507_with_the_servers_reason(grid, client, fmt):
    with pytest.raises(MutableFullError) as caught:
        run(grid, client.create, BIG, format=fmt, private_key=fresh_key())
    assert_full(caught.value, "available")


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_overwrite_on_full_servers_is_507_with_the_servers_reason(grid, client, fmt):
    node = run(grid, client.create, b"small", format=fmt, private_key=fresh_key())
    with pytest.raises(MutableFullError) as caught:
        run(grid, node.overwrite, BIG)
    assert_full(caught.value, "available")
    assert run(grid, node.download_best_version) == b"small"  # the old version stands


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_a_disk_answering_enospc_is_full_too(grid, client, fmt, monkeypatch):
    """reserved_space 0 and a disk that fills: the server's OSError becomes its NoSpaceError."""
    node = run(grid, client.create, b"small", format=fmt, private_key=fresh_key())

    def no_room(self, temp, nodeid, write_enabler):
        raise OSError(errno.ENOSPC, "No space left on device", temp)

    monkeypatch.setattr(slots.SlotUpdate, "build", no_room)
    with pytest.raises(MutableFullError) as caught:
        run(grid, node.overwrite, b"other")
    assert_full(caught.value, "the disk is full (No space left on device)")


def test_servers_failing_otherwise_are_not_full(grid, client, monkeypatch):
    node = run(grid, client.create, b"small", format="MDMF", private_key=fresh_key())

    def broken(self, temp, nodeid, write_enabler):
        raise OSError(errno.EIO, "Input/output error", temp)

    monkeypatch.setattr(slots.SlotUpdate, "build", broken)
    with pytest.raises(NotEnoughServersError) as caught:
        run(grid, node.overwrite, b"other")
    assert not isinstance(caught.value, MutableFullError)
    assert humanize(caught.value)[1] == 503


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_an_update_that_grows_past_the_room_is_507(grid, client, fmt):
    node = run(grid, client.create, b"small", format=fmt, private_key=fresh_key())
    with pytest.raises(MutableFullError) as caught:
        run(grid, node.update, 5, BIG)  # MDMF: in place, segment by segment
    assert_full(caught.value, "available")
    assert run(grid, node.download_best_version) == b"small"
