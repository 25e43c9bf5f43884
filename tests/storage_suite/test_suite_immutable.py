"""Immutable buckets through RIStorageServer: allocate, write, close, abort, read."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.storage_suite.values import lease_secrets, pattern, storage_index

SUITE_SETTINGS = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])


def upload(server, label, shnums, data, size=None):
    """Allocate, write ``data`` whole to every share, close; return the writers' keys."""
    renew, cancel = lease_secrets(label)
    si = storage_index(label)
    already, writers = server.allocate_buckets(si, renew, cancel, set(shnums), size or len(data))
    for writer in writers.values():
        writer.write(0, data)
        writer.close()
    return already, set(writers)


def read_all(server, label, length=10**6):
    return {sh: r.read(0, length) for sh, r in server.get_buckets(storage_index(label)).items()}


def test_new_bucket_is_allocated_and_reads_back(server):
    data = pattern(1000)
    already, allocated = upload(server, "a", {0, 3, 7}, data)
    assert already == set()
    assert allocated == {0, 3, 7}
    assert read_all(server, "a") == {0: data, 3: data, 7: data}


def test_writes_in_any_order_and_reads_in_pieces(server):
    data = pattern(5000, seed=1)
    renew, cancel = lease_secrets("b")
    _, writers = server.allocate_buckets(storage_index("b"), renew, cancel, {2}, len(data))
    for start in (4000, 0, 2000, 1000, 3000):
        writers[2].write(start, data[start : start + 1000])
    writers[2].close()
    reader = server.get_buckets(storage_index("b"))[2]
    assert reader.read(0, 5000) == data
    assert reader.read(1234, 100) == data[1234:1334]


def test_reads_past_the_end_are_cut(server):
    data = pattern(300)
    upload(server, "c", {0}, data)
    reader = server.get_buckets(storage_index("c"))[0]
    assert reader.read(250, 1000) == data[250:]
    assert reader.read(300, 10) == b""
    assert reader.read(10_000, 10) == b""
    assert reader.read(0, 0) == b""


def test_unwritten_bytes_read_as_zeros(server):
    renew, cancel = lease_secrets("holes")
    _, writers = server.allocate_buckets(storage_index("holes"), renew, cancel, {0}, 100)
    writers[0].write(10, b"x" * 10)
    writers[0].close()
    assert read_all(server, "holes") == {0: bytes(10) + b"x" * 10 + bytes(80)}


def test_already_held_shares_are_reported_all_of_them(server):
    upload(server, "d", {0, 1}, b"data")
    renew, cancel = lease_secrets("d-other")
    already, writers = server.allocate_buckets(storage_index("d"), renew, cancel, {1, 2}, 4)
    assert already == {0, 1}  # every share held, not just those asked about
    assert set(writers) == {2}
    writers[2].abort()


def test_shares_being_uploaded_get_no_second_writer(server):
    si = storage_index("e")
    renew, cancel = lease_secrets("e")
    _, first = server.allocate_buckets(si, renew, cancel, {0, 1}, 10)
    already, second = server.allocate_buckets(si, *lease_secrets("e2"), {0, 1, 2}, 10)
    assert already == set()  # in progress is neither held nor offered
    assert set(second) == {2}
    first[0].abort()
    _, third = server.allocate_buckets(si, renew, cancel, {0}, 10)
    assert set(third) == {0}
    for writer in (*first.values(), *second.values(), *third.values()):
        writer.abort()


def test_two_clients_allocating_one_storage_index_split_the_shares(server):
    si = storage_index("f")
    _, one = server.allocate_buckets(si, *lease_secrets("f1"), set(range(10)), 50)
    _, two = server.allocate_buckets(si, *lease_secrets("f2"), set(range(5, 15)), 50)
    assert set(one) == set(range(10))
    assert set(two) == set(range(10, 15))
    for writer in (*one.values(), *two.values()):
        writer.write(0, b"z" * 50)
        writer.close()
    assert set(server.get_buckets(si)) == set(range(15))


def test_write_past_the_allocated_size_is_refused(harness, server):
    renew, cancel = lease_secrets("g")
    _, writers = server.allocate_buckets(storage_index("g"), renew, cancel, {0}, 10)
    with harness.refuses("data-too-large"):
        writers[0].write(5, b"123456")
    with harness.refuses("data-too-large"):
        writers[0].write(11, b"")
    writers[0].write(0, b"0123456789")
    writers[0].close()
    assert read_all(server, "g") == {0: b"0123456789"}


def test_conflicting_overlapping_write_is_refused_and_changes_nothing(harness, server):
    renew, cancel = lease_secrets("h")
    _, writers = server.allocate_buckets(storage_index("h"), renew, cancel, {0}, 20)
    writers[0].write(0, b"abcdefghij")
    writers[0].write(5, b"fghij")  # the same bytes again are fine
    with harness.refuses("conflicting-write"):
        writers[0].write(8, b"XXklmnop")
    writers[0].write(8, b"ijklmnopqr")
    writers[0].close()
    assert read_all(server, "h") == {0: b"abcdefghijklmnopqr\x00\x00"}


def test_closed_bucket_refuses_writes_and_a_second_close(harness, server):
    renew, cancel = lease_secrets("i")
    _, writers = server.allocate_buckets(storage_index("i"), renew, cancel, {0}, 4)
    writers[0].write(0, b"abcd")
    writers[0].close()
    with harness.refuses("bucket-closed"):
        writers[0].write(0, b"abcd")
    with harness.refuses("bucket-closed"):
        writers[0].close()
    writers[0].abort()  # abort after close does nothing, as in Tahoe
    assert read_all(server, "i") == {0: b"abcd"}


def test_aborted_bucket_is_gone_and_can_be_allocated_again(harness, server):
    si = storage_index("j")
    renew, cancel = lease_secrets("j")
    _, writers = server.allocate_buckets(si, renew, cancel, {0}, 4)
    writers[0].write(0, b"abcd")
    writers[0].abort()
    writers[0].abort()
    with harness.refuses("bucket-closed"):
        writers[0].write(0, b"abcd")
    assert server.get_buckets(si) == {}
    already, again = server.allocate_buckets(si, renew, cancel, {0}, 4)
    assert already == set() and set(again) == {0}
    again[0].abort()


def test_unknown_storage_index_has_no_buckets(server):
    assert server.get_buckets(storage_index("nothing")) == {}


def test_zero_length_share(server):
    upload(server, "empty", {0}, b"", size=0)
    assert read_all(server, "empty") == {0: b""}


@pytest.mark.parametrize(
    "si, secret, shnums, size",
    [
        (b"short", b"r" * 32, {0}, 10),
        (b"x" * 17, b"r" * 32, {0}, 10),
        ("text-not-bytes!!", b"r" * 32, {0}, 10),
        (b"x" * 16, b"r" * 31, {0}, 10),
        (b"x" * 16, b"r" * 32, {-1}, 10),
        (b"x" * 16, b"r" * 32, {256}, 10),
        (b"x" * 16, b"r" * 32, set(range(257)), 10),
        (b"x" * 16, b"r" * 32, {0}, -1),
    ],
)
def test_allocate_rejects_bad_arguments(harness, server, si, secret, shnums, size):
    with harness.refuses("bad-request"):
        server.allocate_buckets(si, secret, b"c" * 32, shnums, size)
    assert server.get_buckets(b"x" * 16) == {}


def test_bad_read_arguments(harness, server):
    upload(server, "k", {0}, b"abc")
    reader = server.get_buckets(storage_index("k"))[0]
    with harness.refuses("bad-request"):
        reader.read(-1, 10)
    with harness.refuses("bad-request"):
        reader.read(0, -1)
    with harness.refuses("bad-request"):
        server.get_buckets(b"too short")


def test_read_only_server_allocates_nothing(harness):
    server = harness.server()
    upload(server, "l", {0}, b"held")
    server = harness.server(readonly=True)
    already, writers = server.allocate_buckets(storage_index("l"), *lease_secrets("l"), {0, 1}, 4)
    assert already == {0}
    assert writers == {}
    assert read_all(server, "l") == {0: b"held"}


def test_max_space_allocates_only_what_fits(harness):
    server = harness.server(max_space=3000)
    si = storage_index("m")
    _, writers = server.allocate_buckets(si, *lease_secrets("m"), {0, 1, 2, 3}, 1000)
    assert len(writers) == 2  # each share takes 1000 bytes plus its header and lease
    for writer in writers.values():
        writer.abort()
    _, writers = server.allocate_buckets(si, *lease_secrets("m"), {0, 1, 2, 3}, 1000)
    assert len(writers) == 2
    for writer in writers.values():
        writer.abort()


def test_shares_survive_a_restart_and_uploads_in_progress_do_not(harness):
    server = harness.server()
    data = pattern(777)
    upload(server, "n", {0, 1}, data)
    si = storage_index("n")
    _, pending = server.allocate_buckets(si, *lease_secrets("n"), {2}, 10)
    pending[2].write(0, b"partial")
    server = harness.server()
    assert read_all(server, "n") == {0: data, 1: data}
    already, writers = server.allocate_buckets(si, *lease_secrets("n"), {2}, 10)
    assert already == {0, 1} and set(writers) == {2}
    writers[2].abort()


def test_advise_corrupt_share_is_accepted(harness, server):
    upload(server, "o", {0}, b"abc")
    si = storage_index("o")
    server.get_buckets(si)[0].advise_corrupt_share(b"block hash mismatch")
    server.advise_corrupt_share(b"immutable", si, 0, b"again")
    server.advise_corrupt_share(b"immutable", si, 5, b"a share I do not hold")
    server.advise_corrupt_share(b"mutable", storage_index("none"), 0, b"nor this")
    with harness.refuses("bad-request"):
        server.advise_corrupt_share(b"immutable", b"short", 0, b"reason")


@st.composite
def write_plans(draw):
    """Data, and a list of (offset, length) pieces that cover it, some repeated, any order."""
    size = draw(st.integers(min_value=0, max_value=3000))
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(size - 1, 1)), max_size=8)))
    edges = [0, *[c for c in cuts if c < size], size]
    pieces = [(a, b - a) for a, b in zip(edges, edges[1:], strict=False) if b > a]
    extra = draw(st.lists(st.sampled_from(pieces), max_size=3)) if pieces else []
    order = draw(st.permutations(pieces + extra))
    return size, order


@SUITE_SETTINGS
@given(plan=write_plans(), seed=st.integers(min_value=0, max_value=255))
def test_any_cover_of_writes_reads_back(server, plan, seed):
    size, pieces = plan
    data = pattern(size, seed)
    label = f"cover-{seed}-{size}-{len(pieces)}-{hash(tuple(pieces))}"
    si = storage_index(label)
    already, writers = server.allocate_buckets(si, *lease_secrets(label), {0}, size)
    if already:  # the same plan drawn twice
        return
    for offset, length in pieces:
        writers[0].write(offset, data[offset : offset + length])
    writers[0].close()
    assert server.get_buckets(si)[0].read(0, size + 10) == data


@SUITE_SETTINGS
@given(reads=st.lists(st.tuples(st.integers(0, 1200), st.integers(0, 1200)), min_size=1, max_size=10))
def test_any_read_is_a_slice_of_the_share(server, reads):
    data = pattern(1000, seed=9)
    si = storage_index("slices")
    if not server.get_buckets(si):
        upload(server, "slices", {0}, data)
    reader = server.get_buckets(si)[0]
    for offset, length in reads:
        assert reader.read(offset, length) == data[offset : offset + length]


def _real_share(shnum: int, key: bytes = b"k" * 16) -> tuple[bytes, bytes]:
    """(storage index, share data) of share shnum of a real 3-of-10 file (its storage index from key)."""
    from shoal.immutable.encoder import encode_all
    from shoal.immutable.params import FileShape

    shares, result = encode_all(key, FileShape(5000, 3, 10, 999), [pattern(5000)])
    return result.storage_index, shares[shnum]


def test_advisory_about_a_good_share_changes_nothing(server):
    si, data = _real_share(4)
    renew, cancel = lease_secrets("good")
    _, writers = server.allocate_buckets(si, renew, cancel, {4}, len(data))
    writers[4].write(0, data)
    writers[4].close()
    server.get_buckets(si)[4].advise_corrupt_share(b"hash mismatch (not really)")
    assert server.get_buckets(si)[4].read(0, 10**6) == data


def test_advisory_about_a_damaged_share_takes_it_out_of_service(harness, server):
    import os

    from shoal.storage.layout import StorageLayout

    si, data = _real_share(2, key=b"d" * 16)
    renew, cancel = lease_secrets("damaged")
    _, writers = server.allocate_buckets(si, renew, cancel, {2}, len(data))
    writers[2].write(0, data)
    writers[2].close()
    path = StorageLayout(harness.directory).share_path(si, 2)
    with open(path, "r+b") as handle:  # one byte of the first block
        handle.seek(12 + 0x24)
        byte = handle.read(1)
        handle.seek(12 + 0x24)
        handle.write(bytes([byte[0] ^ 1]))
    server.advise_corrupt_share(b"immutable", si, 2, b"block 0 is bad")
    assert server.get_buckets(si) == {}
    already, writers = server.allocate_buckets(si, renew, cancel, {2}, len(data))
    assert already == set() and set(writers) == {2}
    writers[2].write(0, data)
    writers[2].close()
    assert server.get_buckets(si)[2].read(0, 10**6) == data
    assert os.path.isdir(os.path.join(harness.directory, "quarantine"))
