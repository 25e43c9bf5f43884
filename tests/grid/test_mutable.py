"""Mutable files (shoal.mutable) on real storage servers in process (LocalGrid):
round trips of both formats, caps from keys, placement, partial reads and writes
against a bytes model, racing writers, rollback, corrupt shares, read-only caps."""

import os
import random
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer

from shoal.formats.mutable_container import DATA_OFFSET
from shoal.formats.mutable_share import unpack_header
from shoal.grid.storage_client import SlotWrite
from shoal.mutable import (
    MODE_CHECK,
    MODE_READ,
    MutableClient,
    MutableError,
    NotEnoughSharesError,
    UncoordinatedWriteError,
)
from shoal.mutable.errors import ReadOnlyError
from shoal.storage.layout import si_b2a
from shoal.testing.local_grid import LocalGrid, flip_bit_at
from tests.unit.mutable.vector_keys import fresh_key, vector_key

K, N = 3, 10


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


@pytest.fixture(scope="module")
def client(grid):
    return MutableClient(grid.broker, lease_secret=b"L" * 32, k=K, n=N)


def run(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


def create(grid, client, data=b"", fmt="SDMF"):
    return run(grid, client.create, data, format=fmt, private_key=fresh_key())


def share_paths(grid, si) -> dict[tuple[int, int], str]:
    """(server index, shnum) -> share file."""
    out = {}
    for i, s in enumerate(grid.servers):
        for p in s.share_files():
            if os.sep + si_b2a(si) + os.sep in p:
                out[(i, int(os.path.basename(p)))] = p
    return out


def flip(path: str, share_offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(DATA_OFFSET + share_offset)
        b = f.read(1)
        f.seek(DATA_OFFSET + share_offset)
        f.write(bytes([b[0] ^ 0x55]))


def share_header(path: str):
    with open(path, "rb") as f:
        f.seek(DATA_OFFSET)
        return unpack_header(f.read(4096))


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
@pytest.mark.parametrize("size", [0, 1, 1024, 131072, 131073, 131074, 400_000])
def test_round_trip(grid, client, fmt, size):
    data = random.Random(size).randbytes(size)
    node = create(grid, client, data, fmt)
    assert node.format == fmt and not node.is_readonly()
    assert run(grid, node.download_best_version) == data
    assert run(grid, node.get_size_of_best_version) == size
    ro = client.node_for(node.readonly_cap)
    assert ro.is_readonly() and ro.storage_index == node.storage_index
    assert run(grid, ro.download_best_version) == data
    data2 = data[::-1] + b"2"
    run(grid, node.overwrite, data2)
    assert run(grid, ro.download_best_version) == data2
    smap = run(grid, node.servermap, MODE_CHECK)
    (best,) = smap.versions()
    assert best.seqnum == 2 and best.data_length == len(data2)
    assert len(smap.shares_of(best)) == N and not smap.bad_shares


@pytest.mark.parametrize("index", [0, 1, 2, 3, 18, 19])
def test_create_from_key_gives_tahoes_caps(grid, client, index):
    fmt, key, expected = vector_key(index)
    node = run(grid, client.create, b"vector", format=fmt, private_key=key)
    assert node.cap.to_string() == expected
    assert run(grid, client.node_for(node.cap).download_best_version) == b"vector"


def test_one_share_per_server_in_ring_order(grid, client):
    node = create(grid, client, b"placed", "SDMF")
    ring = [s.server_id for s in grid.broker.get_servers_for_psi(node.storage_index)]
    by_id = {s.server_id: i for i, s in enumerate(grid.servers)}
    placed = share_paths(grid, node.storage_index)
    assert sorted(placed) == sorted((by_id[ring[sh]], sh) for sh in range(N))


def test_segment_sizes_are_tahoes(grid, client):
    node = create(grid, client, b"m" * 300_000, "MDMF")
    headers = [share_header(p)[0] for p in share_paths(grid, node.storage_index).values()]
    assert {(h.k, h.n, h.segment_size, h.data_length) for h in headers} == {(3, 10, 131073, 300_000)}
    node = create(grid, client, b"s" * 1000, "SDMF")
    headers = [share_header(p)[0] for p in share_paths(grid, node.storage_index).values()]
    assert {(h.segment_size, h.data_length, h.seqnum) for h in headers} == {(1002, 1000, 1)}


def test_read_only_and_verify_caps_refuse_writes(grid, client):
    node = create(grid, client, b"mine", "MDMF")
    ro = client.node_for(node.readonly_cap)
    for op in (lambda: ro.overwrite(b"x"), lambda: ro.modify(lambda b: b + b"x"), lambda: ro.update(0, b"x")):
        with pytest.raises(ReadOnlyError):
            run(grid, op)
    verifier = client.node_for(node.verifier_cap)
    with pytest.raises(MutableError):
        run(grid, verifier.download_best_version)
    assert run(grid, node.download_best_version) == b"mine"


SEG = 30  # small MDMF segments: many-segment files stay cheap


@pytest.fixture(scope="module")
def small_seg_client(grid):
    c = MutableClient(grid.broker, lease_secret=b"S" * 32, k=K, n=N)
    c.mdmf_segment_size = SEG
    return c


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 200), st.lists(st.tuples(st.integers(0, 250), st.binary(min_size=1, max_size=90)),
                                     min_size=1, max_size=3), st.data())
def test_partial_writes_and_reads_match_a_bytes_model(grid, small_seg_client, size, writes, data):
    c = small_seg_client
    model = random.Random(size).randbytes(size)
    node = create(grid, c, model, "MDMF")
    for offset, new in writes:
        offset = min(offset, len(model))
        run(grid, node.update, offset, new)
        model = model[:offset] + new + model[offset + len(new):]
    assert run(grid, node.download_best_version) == model
    for _ in range(3):
        off = data.draw(st.integers(0, len(model) + 5))
        length = data.draw(st.integers(0, len(model) + 5))
        parts: list[bytes] = []
        run(grid, node.read, parts.append, off, length)
        assert b"".join(parts) == model[off:off + length]


def test_partial_read_fetches_only_overlapping_segments(grid, small_seg_client, monkeypatch):
    from shoal.mutable import remote

    node = create(grid, small_seg_client, bytes(range(256)) * 40, "MDMF")  # 10240 bytes, 342 segments
    calls: list[list] = []
    real = remote.readv

    async def spy(server, si, shares, vector):
        calls.append(vector)
        return await real(server, si, shares, vector)

    monkeypatch.setattr(remote, "readv", spy)
    parts: list[bytes] = []
    run(grid, node.read, parts.append, 6000, 50)  # segments 200 and 201
    assert b"".join(parts) == (bytes(range(256)) * 40)[6000:6050]
    block_reads = [span for v in calls for span in v if span[0] >= 2167 and span[1] == 16 + SEG // K]
    assert len(block_reads) == 2 * K


def test_in_place_update_rewrites_only_touched_segments(grid, small_seg_client, monkeypatch):
    from shoal.mutable import remote

    data = os.urandom(3000)  # 100 segments of 30 bytes
    node = create(grid, small_seg_client, data, "MDMF")
    sent: list[dict] = []
    real = remote.test_and_write

    async def spy(server, si, secrets, vectors, read_vector):
        sent.append(vectors)
        return await real(server, si, secrets, vectors, read_vector)

    monkeypatch.setattr(remote, "test_and_write", spy)
    run(grid, node.update, 1500, b"abc")  # inside segment 50
    block_len = 16 + SEG // K
    for vectors in sent:
        for writes in (w.writes for w in vectors.values()):
            blocks = [w for w in writes if w[0] >= 2167 and len(w[1]) == block_len]
            assert [w[0] for w in blocks] == [2167 + 50 * block_len]
    assert sum(len(v) for v in sent) == N
    assert run(grid, node.download_best_version) == data[:1500] + b"abc" + data[1503:]


def test_sdmf_update_and_modify(grid, client):
    node = create(grid, client, b"hello world", "SDMF")
    run(grid, node.update, 6, b"WORLD!")
    assert run(grid, node.download_best_version) == b"hello WORLD!"
    run(grid, node.modify, lambda old: old.upper())
    assert run(grid, node.download_best_version) == b"HELLO WORLD!"
    run(grid, node.modify, lambda old: None)  # no change: no new version
    smap = run(grid, node.servermap, MODE_READ)
    assert smap.best_recoverable_version().seqnum == 3
    with pytest.raises(MutableError):
        run(grid, node.update, 100, b"past the end")


def _consistent(grid, node):
    """Every share on disk parses and checks (none left half-written)."""
    smap = run(grid, node.servermap, MODE_CHECK)
    assert not smap.bad_shares, smap.problems()
    return smap


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_racing_modifiers_lose_nothing(grid, fmt):
    """Two clients (separate locks) modify one file at the same time, many times:
    every change survives, and every share is whole."""
    a = MutableClient(grid.broker, lease_secret=b"A" * 32, k=K, n=N)
    b = MutableClient(grid.broker, lease_secret=b"B" * 32, k=K, n=N)
    node_a = create(grid, a, b"", fmt)
    node_b = b.node_for(node_a.cap)

    def adder(line: bytes):
        def modify(old: bytes) -> bytes | None:
            lines = set(old.split(b"\n")) - {b""}
            if line in lines:
                return None
            return b"\n".join(sorted(lines | {line})) + b"\n"
        return modify

    async def race() -> None:
        ds = []
        for i in range(6):
            ds.append(defer.ensureDeferred(node_a.modify(adder(b"a%d" % i))))
            ds.append(defer.ensureDeferred(node_b.modify(adder(b"b%d" % i))))
        await defer.gatherResults(ds, consumeErrors=True)

    grid.call(lambda: defer.ensureDeferred(race()))
    final = run(grid, node_a.download_best_version)
    assert set(final.split(b"\n")) - {b""} == {b"a%d" % i for i in range(6)} | {b"b%d" % i for i in range(6)}
    _consistent(grid, node_a)


def test_racing_overwrites_are_reported(grid):
    """Two clients overwrite at once: unless one ran wholly after the other, one of
    them is told (UncoordinatedWriteError); shares stay whole either way."""
    a = MutableClient(grid.broker, lease_secret=b"A" * 32, k=K, n=N)
    b = MutableClient(grid.broker, lease_secret=b"B" * 32, k=K, n=N)
    outcomes = []
    async def race(node_a, node_b):
        return await defer.DeferredList(
            [defer.ensureDeferred(node_a.overwrite(b"from a")), defer.ensureDeferred(node_b.overwrite(b"from b"))],
            consumeErrors=True,
        )

    for _ in range(4):
        node_a = create(grid, a, b"v1", "SDMF")
        node_b = b.node_for(node_a.cap)
        results = run(grid, race, node_a, node_b)
        failures = [r.value for ok, r in results if not ok]
        assert all(isinstance(f, UncoordinatedWriteError) for f in failures), failures
        smap = _consistent(grid, node_a)
        if not failures:
            # both succeeded: then one wrote after seeing the other's version
            assert smap.highest_seqnum() == 3
        outcomes.append(len(failures))
        if failures:
            # the survivors can always settle the file with a modify
            run(grid, node_a.modify, lambda old: old + b"+")
            final = run(grid, node_a.download_best_version)
            assert final in (b"from a+", b"from b+")
    assert sum(outcomes) >= 1  # the writers did race (both start in the same reactor turn)


def _roll_back(grid, client):
    """A file at version two whose first N - K servers were rolled back to version one."""
    node = create(grid, client, b"version one", "SDMF")
    si = node.storage_index
    saved = {}
    for key, path in share_paths(grid, si).items():
        saved[key] = path + ".v1"
        shutil.copyfile(path, saved[key])
    run(grid, node.overwrite, b"version two")
    paths = share_paths(grid, si)
    for key in sorted(paths)[: N - K]:
        shutil.copyfile(saved[key], paths[key])
    for p in saved.values():
        os.remove(p)
    return node


def test_rollback_is_detected_when_k_servers_have_the_new_version(grid, client):
    node = _roll_back(grid, client)
    other = MutableClient(grid.broker, lease_secret=b"L" * 32, k=K, n=N).node_for(node.cap)
    assert run(grid, other.download_best_version) == b"version two"
    smap = run(grid, other.servermap, MODE_CHECK)
    assert [v.seqnum for v in smap.recoverable_versions()] == [1, 2]
    # a write after the rollback builds on the newest version and overwrites the old shares
    run(grid, other.modify, lambda old: old + b"+")
    assert run(grid, other.download_best_version) == b"version two+"
    smap = run(grid, other.servermap, MODE_CHECK)
    assert [v.seqnum for v in smap.versions()] == [3]


def test_rollback_behind_the_writers_back_is_settled_once(grid, client):
    """The writer remembers version two as on every server; its next modify starts
    there, the rolled-back servers refuse it, and the modify settles every share on
    one version holding its change exactly once."""
    node = _roll_back(grid, client)
    assert client.own_versions.get(node.storage_index) is not None
    run(grid, node.modify, lambda old: old + b"+")
    assert run(grid, node.download_best_version) == b"version two+"
    smap = run(grid, node.servermap, MODE_CHECK)
    assert len(smap.versions()) == 1 and len(smap.shares) == N
    assert smap.best_recoverable_version().seqnum >= 3


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_corrupt_shares_are_skipped(grid, client, fmt):
    data = os.urandom(200_000 if fmt == "MDMF" else 5000)
    node = create(grid, client, data, fmt)
    paths = share_paths(grid, node.storage_index)
    header, offsets = share_header(next(iter(paths.values())))
    spots = [
        offsets.share_data + 20,  # a block
        offsets.share_data + 5,  # a block (MDMF: the salt)
        offsets.signature + 3,  # the signature
        offsets.share_hash_chain + 10,  # the share hash chain
        offsets.block_hash_tree + 1,  # the block hash tree
        offsets.verification_key + 40,  # the verification key
        12,  # the root hash in the signed prefix
    ]
    keys = sorted(paths)
    for key, spot in zip(keys, spots, strict=False):
        flip(paths[key], spot)
    assert run(grid, node.download_best_version) == data  # 3 good shares remain
    parts: list[bytes] = []
    run(grid, node.read, parts.append, 1000, 3000)
    assert b"".join(parts) == data[1000:4000]


def test_too_many_corrupt_shares_fail_without_a_bad_byte(grid, client):
    data = os.urandom(150_000)
    node = create(grid, client, data, "MDMF")
    paths = share_paths(grid, node.storage_index)
    _, offsets = share_header(next(iter(paths.values())))
    for key in sorted(paths)[: N - K + 1]:  # only k - 1 good shares left
        flip(paths[key], offsets.share_data + 16 + 131073 // 3 + 40)  # segment 1's block
    got: list[bytes] = []
    with pytest.raises(NotEnoughSharesError):
        run(grid, node.read, got.append)
    assert b"".join(got) == data[: len(b"".join(got))]  # only checked bytes (segment 0) came out
    assert len(b"".join(got)) in (0, 131073)


def test_bad_shares_are_replaced_by_the_next_write(grid, client):
    node = create(grid, client, b"x" * 3000, "SDMF")
    paths = share_paths(grid, node.storage_index)
    _, offsets = share_header(next(iter(paths.values())))
    flip(paths[sorted(paths)[0]], offsets.signature + 1)
    smap = run(grid, node.servermap, MODE_CHECK)
    assert len(smap.bad_shares) == 1
    run(grid, node.overwrite, b"y" * 3000)
    smap = _consistent(grid, node)
    assert len(smap.shares) == N


def test_publish_survives_a_stopped_server(grid, client):
    node = create(grid, client, b"before", "MDMF")
    victim = share_paths(grid, node.storage_index)
    first = sorted(victim)[0][0]
    grid.stop_server(first)
    try:
        grid.call(lambda: None)
        run(grid, node.overwrite, b"after")
        assert run(grid, node.download_best_version) == b"after"
        # remembered: every share of the new version is on a connected server
        assert client.own_versions.get(node.storage_index) is not None
    finally:
        grid.restart_server(first)
        grid.wait_connected(N)
    # the stopped server is back (with its old share): the next write maps the servers
    # again and settles every share, that one's too
    assert client.own_versions.get(node.storage_index, node._connected()) is None
    run(grid, node.modify, lambda old: old + b"!")
    assert client.own_versions.get(node.storage_index) is not None
    smap = run(grid, node.servermap, MODE_CHECK)
    assert len(smap.versions()) == 1 and run(grid, node.download_best_version) == b"after!"


def test_missing_file(grid, client):
    from shoal.caps import mutable_caps_from_private_key

    cap = mutable_caps_from_private_key(fresh_key(), False)[0]
    with pytest.raises(NotEnoughSharesError):
        run(grid, client.node_for(cap).download_best_version)


def test_lying_servers_are_skipped(grid, client):
    data = os.urandom(150_000)
    node = create(grid, client, data, "MDMF")
    ring = grid.broker.get_servers_for_psi(node.storage_index)
    by_id = {s.server_id: i for i, s in enumerate(grid.servers)}
    liars = [by_id[s.server_id] for s in ring[: N - K]]
    spots = [12, 2167 + 30, 2167 + 16 + 43691 + 16 + 5, 200, 2167 + 2, 140, 2167 + 900]
    try:
        for i, spot in zip(liars, spots, strict=True):
            grid.set_lying(i, slots=flip_bit_at(spot))
        assert run(grid, node.download_best_version) == data
        parts: list[bytes] = []
        run(grid, node.read, parts.append, 140_000, 5000)
        assert b"".join(parts) == data[140_000:145_000]
    finally:
        for i in liars:
            grid.set_lying(i)


def test_update_with_a_missing_share_rewrites_the_file(grid, small_seg_client):
    """In-place updates need every share's block hashes; with a share gone the
    file is rewritten whole, which also puts the missing share back."""
    data = os.urandom(900)
    node = create(grid, small_seg_client, data, "MDMF")
    paths = share_paths(grid, node.storage_index)
    os.remove(paths[sorted(paths)[4]])
    run(grid, node.update, 450, b"middle")
    assert run(grid, node.download_best_version) == data[:450] + b"middle" + data[456:]
    smap = _consistent(grid, node)
    (version,) = smap.versions()
    assert version.seqnum == 2 and len(smap.shares_of(version)) == N


def test_share_numbers_beyond_n_do_not_count(grid, client):
    """A server cannot make a version look recoverable by serving copies of a real
    share under share numbers that do not exist."""
    from shoal.mutable import remote

    node = create(grid, client, b"k of n", "SDMF")
    paths = share_paths(grid, node.storage_index)
    (server_i, shnum), path = sorted(paths.items())[0]
    with open(path, "rb") as f:
        f.seek(DATA_OFFSET)
        share = f.read()
    server = grid.server_for(server_i)
    secrets = remote.write_secrets(node.cap.writekey, b"L" * 32, node.storage_index, server)
    vectors = {sh: SlotWrite([(0, 1, b"eq", b"")], [(0, share)]) for sh in (10, 11)}
    result = run(grid, remote.test_and_write, server, node.storage_index, secrets, vectors, [])
    assert result.success
    smap = run(grid, node.servermap, MODE_CHECK)
    (version,) = smap.versions()
    assert sorted(smap.shares_of(version)) == list(range(N))
    assert sorted(sh for _, sh in smap.bad_shares) == [10, 11]


def test_one_client_serialises_its_own_writes(grid, monkeypatch):
    from shoal.mutable import publish

    c = MutableClient(grid.broker, lease_secret=b"C" * 32, k=K, n=N)
    node = create(grid, c, b"", "MDMF")
    other_node = c.node_for(node.cap)  # another node object, same file, same client
    publishes: list[int] = []
    real = publish.Publisher.publish

    async def counted(self, encoded):
        publishes.append(encoded.prefix.seqnum)
        return await real(self, encoded)

    monkeypatch.setattr(publish.Publisher, "publish", counted)

    async def all_at_once():
        ds = [defer.ensureDeferred(n.modify(lambda old, i=i: old + b"%d," % i))
              for i, n in enumerate([node, other_node] * 3)]
        ds.append(defer.ensureDeferred(node.overwrite(b"")))
        await defer.gatherResults(ds, consumeErrors=True)

    grid.call(lambda: defer.ensureDeferred(all_at_once()))
    assert publishes == list(range(2, 9))  # one after another, none refused or retried
    assert not c._locks


def test_a_write_that_raced_and_lost_everywhere_is_republished(grid, monkeypatch):
    """After an uncoordinated write that left our version on too few servers to
    be read, modify() publishes its own contents again (not the older version),
    without calling the modifier twice."""
    from shoal.mutable import publish

    c = MutableClient(grid.broker, lease_secret=b"R" * 32, k=K, n=N)
    node = create(grid, c, b"base", "SDMF")
    real = publish.Publisher._write
    state = {"first": True}

    async def flaky_write(self, server, shnums, encoded, new_cs):
        if state["first"] and encoded.prefix.seqnum == 2 and shnums[0] >= K - 1:
            self.surprises.append(f"pretend another writer holds {shnums}")
            return None
        return await real(self, server, shnums, encoded, new_cs)

    async def first_publish_races(self, encoded):
        try:
            return await real_publish(self, encoded)
        finally:
            state["first"] = False

    real_publish = publish.Publisher.publish
    monkeypatch.setattr(publish.Publisher, "_write", flaky_write)
    monkeypatch.setattr(publish.Publisher, "publish", first_publish_races)
    calls: list[bytes] = []

    def modifier(old: bytes) -> bytes:
        calls.append(old)
        return old + b"+mine"

    run(grid, node.modify, modifier)
    assert calls == [b"base"]
    assert run(grid, node.download_best_version) == b"base+mine"
    smap = _consistent(grid, node)
    (version,) = smap.versions()
    assert version.seqnum == 3 and len(smap.shares_of(version)) == N
