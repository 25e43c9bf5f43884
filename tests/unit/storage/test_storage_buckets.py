"""Immutable bucket writers and readers: files on disk, refused writes, idle abort."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.formats import immutable_container as ic
from shoal.formats.lease import LeaseSchema, hash_lease_secret
from shoal.storage import BucketClosedError, ConflictingWriteError, DataTooLargeError
from shoal.storage.buckets import IDLE_TIMEOUT, WrittenRanges
from shoal.storage.expiration import LEASE_DURATION

SI = b"\x11" * 16
RENEW, CANCEL = b"r" * 32, b"c" * 32


def allocate(server, shnums=(0,), size=100, si=SI, owner_num=0):
    return server.allocate_buckets(si, RENEW, CANCEL, set(shnums), size, owner_num=owner_num)[1]


def test_writer_attributes(server):
    writer = allocate(server, (4,), 123)[4]
    assert (writer.storage_index, writer.shnum, writer.allocated_size) == (SI, 4, 123)
    writer.abort()


def test_incoming_file_then_final_file_are_tahoes_container(server, clock):
    writer = allocate(server, (0,), 100, owner_num=7)[0]
    incoming = server.layout.incoming_path(SI, 0)
    final = server.layout.share_path(SI, 0)
    assert os.path.exists(incoming) and not os.path.exists(final)
    writer.write(0, b"d" * 60)
    assert not os.path.exists(final)  # not visible before close
    assert server.get_buckets(SI) == {}
    writer.close()
    assert not os.path.exists(incoming)
    assert not os.path.exists(os.path.dirname(incoming))  # emptied incoming dirs go
    assert not os.path.exists(os.path.dirname(os.path.dirname(incoming)))
    raw = open(final, "rb").read()
    assert len(raw) == 12 + 100 + 72
    header = ic.ImmutableHeader.from_bytes(raw)
    assert header == ic.ImmutableHeader(2, 100, 1)
    assert raw[12:112] == b"d" * 60 + bytes(40)
    (lease,) = ic.unpack_leases(raw[112:], LeaseSchema.HASHED)
    assert lease.owner_num == 7
    assert lease.renew_secret == hash_lease_secret(RENEW)
    assert lease.cancel_secret == hash_lease_secret(CANCEL)
    assert lease.expiration_time == int(clock()) + LEASE_DURATION


def test_refused_writes_change_nothing_on_disk(server):
    writer = allocate(server, (0,), 20)[0]
    writer.write(0, b"0123456789")
    path = server.layout.incoming_path(SI, 0)
    before = open(path, "rb").read()
    with pytest.raises(ConflictingWriteError, match=r"share .*/0: write at offset 5 .* offsets 5-10"):
        writer.write(5, b"5678X")
    with pytest.raises(DataTooLargeError, match="offset 15 passes the allocated size 20"):
        writer.write(15, b"123456")
    assert open(path, "rb").read() == before
    writer.write(5, b"56789abc")  # a consistent overlap extends
    assert writer.remaining() == [(13, 20)]
    writer.abort()


def test_conflict_in_a_later_range_is_found(server):
    writer = allocate(server, (0,), 30)[0]
    writer.write(0, b"a" * 5)
    writer.write(10, b"b" * 5)
    writer.write(20, b"c" * 5)
    with pytest.raises(ConflictingWriteError, match="offsets 20-25"):
        writer.write(0, b"a" * 5 + bytes(5) + b"b" * 5 + bytes(5) + b"cccxc")
    writer.write(0, b"a" * 5 + bytes(5) + b"b" * 5 + bytes(5) + b"c" * 5)
    assert writer.remaining() == [(25, 30)]
    writer.abort()


def test_close_twice_and_write_after_close(server):
    writer = allocate(server)[0]
    writer.close()
    with pytest.raises(BucketClosedError, match="already closed"):
        writer.close()
    with pytest.raises(BucketClosedError, match="cannot write"):
        writer.write(0, b"x")
    writer.abort()
    assert os.path.exists(server.layout.share_path(SI, 0))


def test_abort_removes_the_file_and_empty_directories(server):
    writers = allocate(server, (0, 1))
    writers[0].abort()
    assert os.path.exists(server.layout.incoming_path(SI, 1))
    writers[1].abort()
    assert not os.path.exists(os.path.dirname(server.layout.incoming_path(SI, 1)))
    with pytest.raises(BucketClosedError, match="already aborted"):
        writers[0].close()
    assert not os.path.exists(server.layout.bucket_dir(SI))


def test_idle_writers_are_aborted_after_30_minutes(server, clock):
    writers = allocate(server, (0, 1, 2))
    clock.advance(IDLE_TIMEOUT - 10)
    writers[1].write(0, b"still here")
    writers[2].close()
    clock.advance(20)
    assert server.abort_idle_writers() == [writers[0]]
    assert not os.path.exists(server.layout.incoming_path(SI, 0))
    with pytest.raises(BucketClosedError):
        writers[0].write(0, b"late")
    clock.advance(IDLE_TIMEOUT)
    assert server.abort_idle_writers() == [writers[1]]
    assert server.abort_idle_writers() == []
    assert set(server.get_buckets(SI)) == {2}


def test_reader_reports_length_and_cuts_reads(server):
    writer = allocate(server, (0,), 10)[0]
    writer.write(0, b"0123456789")
    writer.close()
    reader = server.get_buckets(SI)[0]
    assert reader.get_length() == 10
    assert (reader.storage_index, reader.shnum) == (SI, 0)
    assert reader.read(8, 100) == b"89"
    assert reader.read(2**40, 1) == b""


def test_reader_of_a_removed_share_says_so(server):
    from shoal.storage import ShareNotFoundError

    writer = allocate(server, (0,), 10)[0]
    writer.close()
    reader = server.get_buckets(SI)[0]
    os.unlink(server.layout.share_path(SI, 0))
    with pytest.raises(ShareNotFoundError, match="no longer exists"):
        reader.read(0, 1)


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 50)), max_size=20),
       st.tuples(st.integers(0, 200), st.integers(0, 50)))
def test_written_ranges_match_a_set_model(pieces, probe):
    ranges = WrittenRanges()
    model: set[int] = set()
    for start, length in pieces:
        ranges.add(start, start + length)
        model.update(range(start, start + length))
    assert ranges.total() == len(model)
    start, length = probe
    covered = set()
    for a, b in ranges.overlaps(start, start + length):
        assert start <= a < b <= start + length
        covered.update(range(a, b))
    assert covered == model & set(range(start, start + length))
    gaps = set()
    for a, b in ranges.missing(260):
        gaps.update(range(a, b))
    assert gaps == set(range(260)) - model
