"""Mutable slots on disk: all-or-nothing calls, deletion, leases through writes."""

import os

import pytest

from shoal.formats import mutable_container as mc
from shoal.formats.lease import hash_lease_secret
from shoal.storage import BadWriteEnablerError, CorruptShareError, DataTooLargeError, NoSpaceError
from shoal.storage.shares import MutableShareFile

SLOT = b"\x44" * 16
WE = b"w" * 32


def secrets(n: int = 0) -> tuple[bytes, bytes, bytes]:
    return WE, bytes([65 + n]) * 32, bytes([97 + n]) * 32


def twrite(server, vectors, readv=(), n=0, we=WE):
    _, renew, cancel = secrets(n)
    return server.slot_testv_and_readv_and_writev(SLOT, (we, renew, cancel), vectors, list(readv))


def snapshot(server):
    """Every file under shares/ (incoming included) with its bytes and inode."""
    found = {}
    for root, _dirs, files in os.walk(server.layout.shares_dir):
        for name in files:
            path = os.path.join(root, name)
            found[path] = (open(path, "rb").read(), os.stat(path).st_ino)
    return found


def share(server, shnum):
    return MutableShareFile(server.layout.share_path(SLOT, shnum), SLOT, shnum)


@pytest.fixture
def slot(server):
    twrite(server, {0: ([], [(0, b"zero" * 10)], None), 1: ([], [(0, b"one")], None)})
    return server


def test_a_failed_test_changes_no_file(slot):
    before = snapshot(slot)
    ok, old = twrite(slot, {0: ([(0, 4, b"eq", b"ZERO")], [(0, b"x" * 5000)], 0), 5: ([], [(0, b"n")], None)}, [(0, 4)])
    assert not ok and old == {0: [b"zero"], 1: [b"one"]}
    assert snapshot(slot) == before


def test_a_bad_write_enabler_changes_no_file(slot):
    before = snapshot(slot)
    with pytest.raises(BadWriteEnablerError, match=r"share .*/0: bad write enabler\. The write enabler was recorded by nodeid 'aebagbafaydqqcikbmga2dqpcaireeyu'\."):
        twrite(slot, {0: ([], [(0, b"x")], None)}, we=b"W" * 32)
    assert snapshot(slot) == before


def test_a_refused_growth_changes_no_file(make_server, disk):
    server = make_server()
    twrite(server, {0: ([], [(0, b"zero")], None)})
    before = snapshot(server)
    disk.free = 4096
    with pytest.raises(NoSpaceError):
        twrite(server, {0: ([], [(0, b"small")], None), 1: ([], [(0, b"x" * 5000)], None)})
    with pytest.raises(DataTooLargeError, match="maximum mutable share size"):
        twrite(server, {0: ([], [(0, b"small"), (mc.MAX_DATA_LENGTH, b"x")], None)})
    assert snapshot(server) == before


def test_writes_replace_the_file_and_leave_no_temporary(slot):
    inode = os.stat(slot.layout.share_path(SLOT, 0)).st_ino
    twrite(slot, {0: ([], [(4, b"ZERO")], None)})
    assert os.stat(slot.layout.share_path(SLOT, 0)).st_ino != inode
    assert os.listdir(slot.layout.tmp_dir) == []
    assert slot.slot_readv(SLOT, [0], [(0, 8)]) == {0: [b"zeroZERO"]}


def test_renewing_only_changes_the_expiration_in_place(slot, clock):
    path = slot.layout.share_path(SLOT, 0)
    inode = os.stat(path).st_ino
    before = open(path, "rb").read()
    clock.advance(3600)
    twrite(slot, {0: ([], [], None)})
    after = open(path, "rb").read()
    assert os.stat(path).st_ino == inode
    assert [i for i in range(len(before)) if before[i] != after[i]] != []
    assert all(mc.LEASE_SLOTS_OFFSET + 4 <= i < mc.LEASE_SLOTS_OFFSET + 8 for i in range(len(before)) if before[i] != after[i])
    (lease,) = share(slot, 0).leases()
    assert lease.expiration_time == int(clock()) + 31 * 24 * 3600


def test_new_length_zero_removes_shares_then_the_bucket_directory(slot):
    bucket = slot.layout.bucket_dir(SLOT)
    twrite(slot, {0: ([], [], 0)})
    assert sorted(os.listdir(bucket)) == ["1"]
    twrite(slot, {1: ([], [], 0), 7: ([], [], 0)})
    assert not os.path.exists(bucket)
    assert os.path.isdir(os.path.dirname(bucket))  # the prefix directory stays, as in Tahoe
    assert slot.slot_readv(SLOT, [], [(0, 1)]) == {}


def test_leases_fill_slots_then_extra_leases_that_move_when_data_grows(server):
    for n in range(6):
        twrite(server, {0: ([], [(0, b"data")], None)}, n=n)
    sh = share(server, 0)
    assert sh.extra_count == 2
    assert sh.header.extra_lease_offset == mc.DATA_OFFSET + 4
    twrite(server, {0: ([], [(1000, b"grown")], None)}, n=0)
    sh = share(server, 0)
    assert sh.header.extra_lease_offset == mc.DATA_OFFSET + 1005
    assert sh.size == mc.DATA_OFFSET + 1005 + 4 + 2 * mc.LEASE_SIZE
    renews = [lease.renew_secret for lease in sh.leases()]
    assert renews == [hash_lease_secret(secrets(n)[1]) for n in range(6)]
    assert server.slot_readv(SLOT, [], [(0, 4), (4, 4), (1000, 10)]) == {0: [b"data", bytes(4), b"grown"]}
    twrite(server, {0: ([], [], 10)})
    assert share(server, 0).header.extra_lease_offset == mc.DATA_OFFSET + 1005  # never shrinks


def test_a_new_share_in_a_call_that_writes_nothing_is_created_empty(server):
    assert twrite(server, {3: ([], [], None)}) == (True, {})
    assert server.slot_readv(SLOT, [], [(0, 10)]) == {3: [b""]}
    assert len(share(server, 3).leases()) == 1


def test_corrupt_mutable_share_is_reported(slot):
    with open(slot.layout.share_path(SLOT, 1), "r+b") as handle:
        handle.seek(mc.EXTRA_LEASE_POINTER_OFFSET)
        handle.write((2**40).to_bytes(8, "big"))
    with pytest.raises(CorruptShareError, match=r"share .*/1: "):
        slot.slot_readv(SLOT, [], [(0, 1)])
    with pytest.raises(CorruptShareError):
        twrite(slot, {0: ([], [(0, b"x")], None)})


def _allocated(path: str) -> int:
    return os.stat(path).st_blocks * 512


def test_a_write_far_past_the_end_leaves_a_hole_not_zeros(make_server):
    """issue #15: a write at offset 2e9 on a new slot wrote 1.9 GB of real zeros."""
    server = make_server()
    far = 2_000_000_000
    ok, _ = twrite(server, {0: ([], [(far, b"end")], None)})
    assert ok
    path = server.layout.share_path(SLOT, 0)
    assert os.path.getsize(path) > far
    assert _allocated(path) < 1 << 20
    assert server.slot_readv(SLOT, [0], [(far - 2, 5), (1000, 4)]) == {0: [b"\0\0end", b"\0" * 4]}
    # a second write copies the container; the copy keeps the hole
    ok, _ = twrite(server, {0: ([], [(0, b"head")], None)})
    assert ok
    assert _allocated(path) < 1 << 20
    assert server.slot_readv(SLOT, [0], [(0, 4), (far, 3)]) == {0: [b"head", b"end"]}
