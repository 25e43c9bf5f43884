"""Mutable slots through RIStorageServer: test-and-set, read vectors, truncation, deletion."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.encoding import base32
from tests.storage_suite.values import pattern, slot_secrets, storage_index

MAX_MUTABLE_SHARE_SIZE = 69_105 * 1000**4
SUITE_SETTINGS = settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
EMPTY = [(0, 1, b"eq", b"")]  # "this share does not exist yet"


def twrite(server, label, vectors, readv=(), secrets=None):
    return server.slot_testv_and_readv_and_writev(
        storage_index(label), secrets or slot_secrets(label), vectors, list(readv)
    )


def readv(server, label, shares=(), vector=((0, 10**6),)):
    return server.slot_readv(storage_index(label), list(shares), list(vector))


def test_create_write_and_read(server):
    assert twrite(server, "a", {0: (EMPTY, [(0, b"hello world")], None)}) == (True, {})
    assert readv(server, "a") == {0: [b"hello world"]}
    assert readv(server, "a", vector=[(0, 5), (6, 5), (3, 0)]) == {0: [b"hello", b"world", b""]}


def test_test_vector_guards_the_write(server):
    twrite(server, "b", {0: (EMPTY, [(0, b"version one")], None)})
    ok, old = twrite(server, "b", {0: ([(0, 11, b"eq", b"version one")], [(8, b"two")], None)}, [(0, 11)])
    assert ok and old == {0: [b"version one"]}
    ok, old = twrite(server, "b", {0: ([(0, 11, b"eq", b"version one")], [(0, b"XXXXXXX")], None)}, [(0, 11)])
    assert not ok
    assert old == {0: [b"version two"]}  # the read vector still answers
    assert readv(server, "b") == {0: [b"version two"]}


def test_missing_share_reads_as_empty_in_tests(server):
    ok, _ = twrite(server, "c", {0: ([(0, 3, b"eq", b"abc")], [(0, b"new")], None)})
    assert not ok
    assert readv(server, "c") == {}
    ok, _ = twrite(server, "c", {0: ([(0, 0, b"eq", b"")], [(0, b"new")], None)})
    assert ok


def test_a_failing_test_on_one_share_blocks_every_share(server):
    twrite(server, "d", {0: (EMPTY, [(0, b"zero")], None), 1: (EMPTY, [(0, b"one")], None)})
    ok, _ = twrite(server, "d", {
        0: ([(0, 4, b"eq", b"zero")], [(0, b"ZERO")], None),
        1: ([(0, 3, b"eq", b"two")], [(0, b"ONE")], None),
        2: ([], [(0, b"TWO")], None),
    })
    assert not ok
    assert readv(server, "d") == {0: [b"zero"], 1: [b"one"]}


def test_read_vector_sees_data_before_the_writes_of_the_same_call(server):
    twrite(server, "e", {0: (EMPTY, [(0, b"before")], None)})
    ok, old = twrite(server, "e", {0: ([], [(0, b"after!")], None)}, [(0, 6)])
    assert ok and old == {0: [b"before"]}
    assert readv(server, "e") == {0: [b"after!"]}


def test_read_vector_covers_every_existing_share(server):
    twrite(server, "f", {n: (EMPTY, [(0, b"share %d" % n)], None) for n in (0, 4, 9)})
    ok, old = twrite(server, "f", {4: ([], [(0, b"SHARE")], None)}, [(0, 7)])
    assert ok
    assert old == {0: [b"share 0"], 4: [b"share 4"], 9: [b"share 9"]}


def test_slot_readv_selects_shares(server):
    twrite(server, "g", {n: (EMPTY, [(0, b"%d" % n * 5)], None) for n in (1, 2, 3)})
    assert readv(server, "g") == {1: [b"11111"], 2: [b"22222"], 3: [b"33333"]}
    assert readv(server, "g", shares=[2, 3, 7]) == {2: [b"22222"], 3: [b"33333"]}
    assert readv(server, "g", shares=[8]) == {}
    assert readv(server, "nothing here") == {}


def test_holes_are_filled_with_zeros(server):
    twrite(server, "h", {0: (EMPTY, [(0, b"ab"), (10, b"cd")], None)})
    assert readv(server, "h") == {0: [b"ab" + bytes(8) + b"cd"]}
    twrite(server, "h", {0: ([], [(20, b"")], None)})  # an empty write past the end extends
    assert readv(server, "h") == {0: [b"ab" + bytes(8) + b"cd" + bytes(8)]}


def test_truncate_then_extend_shows_zeros_not_old_bytes(server):
    twrite(server, "i", {0: (EMPTY, [(0, b"secret data here")], None)})
    twrite(server, "i", {0: ([], [], 6)})
    assert readv(server, "i") == {0: [b"secret"]}
    twrite(server, "i", {0: ([], [(12, b"!")], None)})
    assert readv(server, "i") == {0: [b"secret" + bytes(6) + b"!"]}


def test_new_length_larger_than_the_data_is_ignored(server):
    twrite(server, "j", {0: (EMPTY, [(0, b"abc")], 100)})
    assert readv(server, "j") == {0: [b"abc"]}
    twrite(server, "j", {0: ([], [(0, b"abcdef")], 4)})
    assert readv(server, "j") == {0: [b"abcd"]}


def test_new_length_zero_deletes_the_share(server):
    twrite(server, "k", {0: (EMPTY, [(0, b"zero")], None), 1: (EMPTY, [(0, b"one")], None)})
    assert twrite(server, "k", {0: ([], [], 0)}) == (True, {0: [], 1: []})  # every share answers
    assert readv(server, "k") == {1: [b"one"]}
    twrite(server, "k", {1: ([], [(0, b"ignored")], 0), 5: ([], [], 0)})
    assert readv(server, "k") == {}
    # the slot can be created afresh, with any write enabler
    ok, _ = twrite(server, "k", {0: (EMPTY, [(0, b"again")], None)}, secrets=slot_secrets("other"))
    assert ok


def test_reads_past_the_end_are_cut(server):
    twrite(server, "l", {0: (EMPTY, [(0, b"0123456789")], None)})
    assert readv(server, "l", vector=[(5, 100), (10, 5), (1000, 1)]) == {0: [b"56789", b"", b""]}


def test_wrong_write_enabler_is_refused_naming_the_recording_nodeid(harness, server):
    twrite(server, "m", {0: (EMPTY, [(0, b"mine")], None)})
    we, renew, cancel = slot_secrets("m")
    with harness.refuses("bad-write-enabler") as caught:
        twrite(server, "m", {0: ([], [(0, b"evil")], None)}, secrets=(b"\x00" * 32, renew, cancel))
    assert "The write enabler was recorded by nodeid '%s'." % base32.b2a(harness.nodeid) in str(caught.value)
    # even a call that writes nothing, and one for a share that does not exist yet
    with harness.refuses("bad-write-enabler"):
        twrite(server, "m", {3: ([], [(0, b"x")], None)}, secrets=(b"\x00" * 32, renew, cancel))
    assert readv(server, "m") == {0: [b"mine"]}


@pytest.mark.parametrize("operator", [b"lt", b"le", b"ne", b"ge", b"gt", b"EQ", b""])
def test_only_the_eq_operator_is_accepted(harness, server, operator):
    twrite(server, "n", {0: (EMPTY, [(0, b"abc")], None)})
    with harness.refuses("unsupported-operator"):
        twrite(server, "n", {0: ([(0, 3, operator, b"abc")], [(0, b"xyz")], None)})
    assert readv(server, "n") == {0: [b"abc"]}


def test_share_larger_than_the_maximum_is_refused(harness, server):
    with harness.refuses("data-too-large"):
        twrite(server, "o", {0: ([], [(MAX_MUTABLE_SHARE_SIZE, b"x")], None)})
    assert readv(server, "o") == {}


@pytest.mark.parametrize(
    "si, secrets, vectors, read",
    [
        (b"short", (b"w" * 32, b"r" * 32, b"c" * 32), {}, []),
        (b"x" * 16, (b"w" * 31, b"r" * 32, b"c" * 32), {}, []),
        (b"x" * 16, (b"w" * 32, b"r" * 32), {}, []),
        (b"x" * 16, (b"w" * 32, b"r" * 32, b"c" * 32), {-1: ([], [], None)}, []),
        (b"x" * 16, (b"w" * 32, b"r" * 32, b"c" * 32), {0: ([], [(-1, b"x")], None)}, []),
        (b"x" * 16, (b"w" * 32, b"r" * 32, b"c" * 32), {0: ([], [(0, "text")], None)}, []),
        (b"x" * 16, (b"w" * 32, b"r" * 32, b"c" * 32), {0: ([], [], -5)}, []),
        (b"x" * 16, (b"w" * 32, b"r" * 32, b"c" * 32), {0: ([(0, -1, b"eq", b"")], [], None)}, []),
        (b"x" * 16, (b"w" * 32, b"r" * 32, b"c" * 32), {}, [(0, -1)]),
    ],
)
def test_bad_arguments_are_refused_and_change_nothing(harness, server, si, secrets, vectors, read):
    if harness.typed and len(secrets) != 3:
        pytest.skip("a StorageClient's WriteSecrets always holds three secrets")
    with harness.refuses("bad-request"):
        server.slot_testv_and_readv_and_writev(si, secrets, vectors, read)
    assert server.slot_readv(b"x" * 16, [], [(0, 10)]) == {}


def test_bad_slot_readv_arguments(harness, server):
    with harness.refuses("bad-request"):
        server.slot_readv(b"short", [], [(0, 1)])
    with harness.refuses("bad-request"):
        server.slot_readv(b"x" * 16, [-1], [(0, 1)])
    with harness.refuses("bad-request"):
        server.slot_readv(b"x" * 16, [], [(-1, 1)])


def test_read_only_server_refuses_mutable_writes(harness):
    server = harness.server()
    twrite(server, "p", {0: (EMPTY, [(0, b"kept")], None)})
    server = harness.server(readonly=True)
    with harness.refuses("read-only"):
        twrite(server, "p", {0: ([], [(0, b"lost")], None)})
    with harness.refuses("read-only"):
        twrite(server, "p", {0: ([], [], 0)})
    with harness.refuses("read-only"):
        twrite(server, "q", {0: (EMPTY, [(0, b"new")], None)})
    with harness.refuses("read-only"):
        twrite(server, "p", {1: ([], [], None)})  # would create an empty share
    # tests and reads still answer
    assert twrite(server, "p", {0: ([(0, 4, b"eq", b"kept")], [], None)}, [(0, 4)]) == (True, {0: [b"kept"]})
    assert readv(server, "p") == {0: [b"kept"]}
    assert readv(server, "q") == {}


def test_max_space_refuses_growth(harness):
    server = harness.server(max_space=5000)
    twrite(server, "r", {0: (EMPTY, [(0, b"a" * 1000)], None)})
    with harness.refuses("no-space"):
        twrite(server, "r", {0: ([], [(1000, b"b" * 4000)], None)})
    assert readv(server, "r") == {0: [b"a" * 1000]}
    twrite(server, "r", {0: ([], [(0, b"c" * 1000)], None)})  # rewriting in place takes no room
    assert readv(server, "r") == {0: [b"c" * 1000]}


def test_slots_survive_a_restart(harness):
    server = harness.server()
    twrite(server, "s", {0: (EMPTY, [(0, pattern(5000))], None), 1: (EMPTY, [(0, b"one")], None)})
    server = harness.server()
    assert readv(server, "s") == {0: [pattern(5000)], 1: [b"one"]}
    ok, _ = twrite(server, "s", {1: ([(0, 3, b"eq", b"one")], [(3, b"+")], None)})
    assert ok and readv(server, "s", shares=[1]) == {1: [b"one+"]}


writes = st.tuples(st.integers(min_value=0, max_value=600), st.binary(max_size=200))
operations = st.lists(
    st.tuples(
        st.sampled_from([0, 1]),
        st.lists(writes, max_size=3),
        st.one_of(st.none(), st.integers(min_value=0, max_value=700)),
    ),
    min_size=1,
    max_size=6,
)
read_vectors = st.lists(
    st.tuples(st.integers(min_value=0, max_value=900), st.integers(min_value=0, max_value=900)),
    max_size=4,
)


def model_apply(model, shnum, writes_, new_length):
    if new_length == 0:
        model.pop(shnum, None)
        return
    data = model.setdefault(shnum, bytearray())
    for offset, chunk in writes_:
        if offset > len(data):
            data.extend(bytes(offset - len(data)))
        data[offset : offset + len(chunk)] = chunk
    if new_length is not None and new_length < len(data):
        del data[new_length:]


def model_read(model, vector):
    return {shnum: [bytes(data[o : o + n]) for o, n in vector] for shnum, data in model.items()}


@SUITE_SETTINGS
@given(ops=operations, vector=read_vectors, tag=st.integers(min_value=0, max_value=10**9))
def test_write_and_read_vectors_match_a_model(server, ops, vector, tag):
    label = f"model-{tag}-{hash(repr(ops))}"
    if readv(server, label):
        return  # the same example drawn again
    model: dict[int, bytearray] = {}
    for shnum, writes_, new_length in ops:
        before = model_read(model, vector)
        ok, old = twrite(server, label, {shnum: ([], writes_, new_length)}, vector)
        assert ok
        assert old == before
        model_apply(model, shnum, writes_, new_length)
        assert readv(server, label, vector=vector) == model_read(model, vector)
    assert readv(server, label) == model_read(model, [(0, 10**6)])
