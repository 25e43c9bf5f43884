"""Packs: the blobs of a /stream upload (and concurrent PUTs) share one immutable
file. The plan is pure; the rest runs the grid backend on real storage servers
in process (LocalGrid): every blob reads back exactly its own bytes, ranges
never reach a neighbour's, a rebuild from the grid finds the same packs, and
deleting or flagging a packed blob leaves the others whole."""

import io
import os

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer

from shoal.apps.blobs import packs
from shoal.apps.blobs.rules import tag_of
from tests.unit.apps.blobs.test_blobs_backend_grid import Collector, new_backend, run


@given(st.lists(st.integers(0, 3 * packs.PACK_MAX_BLOB), max_size=80), st.integers(1, 300_000))
def test_plan_puts_every_item_in_one_upload(sizes, pack_bytes):
    groups = packs.plan(sizes, pack_bytes)
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(sizes)))  # each exactly once
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
    for g in groups:
        assert g == sorted(g)
        if len(g) > 1:  # a pack: packable blobs only, within the bound
            assert all(packs.packable(sizes[i]) for i in g)
            assert sum(sizes[i] for i in g) <= pack_bytes
    for i, size in enumerate(sizes):
        if not packs.packable(size):
            assert [i] in groups  # literal and large blobs go on their own


def test_plan_packs_consecutive_small_blobs_up_to_the_bound():
    kb10 = 10_000
    groups = packs.plan([kb10] * 250 + [20] + [200_000], pack_bytes=packs.PACK_BYTES)
    sizes = [len(g) for g in groups]
    assert sizes[:3] == [104, 104, 42] and sizes[3:] == [1, 1]


def test_packed_blobs_read_back_and_survive_a_rebuild(grid, maker, tmp_path):
    b = new_backend(maker, tmp_path, "packs")
    blobs = [(f"p{i}", os.urandom(1000 + 97 * i)) for i in range(8)]
    blobs.insert(3, ("lit", b"tiny"))  # a literal cap, on its own
    blobs.insert(6, ("big", os.urandom(packs.PACK_MAX_BLOB + 1)))  # on its own
    body = b"".join(d for _, d in blobs)
    rows = run(grid, b.store_many, "pat", [(i, len(d)) for i, d in blobs], io.BytesIO(body))
    by_id = {r.blob_id: r for r in rows}
    packed = [r for r in rows if r.offset is not None]
    assert len(packed) == 8 and len({r.cap for r in packed}) == 1  # one upload for the eight
    assert by_id["lit"].offset is None and by_id["lit"].cap.startswith("URI:LIT:")
    assert by_id["big"].offset is None and by_id["big"].cap != packed[0].cap
    for blob_id, data in blobs:
        row = by_id[blob_id]
        assert row.size == len(data) and row.tag == tag_of(data)
        assert run(grid, b.fetch, row) == data
    row, data = by_id["p2"], dict(blobs)["p2"]

    def ranged(offset, length):
        parts: list[bytes] = []
        run(grid, b.read, row, parts.append, offset, length)
        return b"".join(parts)

    assert ranged(10, 20) == data[10:30]
    assert ranged(len(data) - 5, 100) == data[-5:]  # clipped at the blob's end, not the pack's
    assert ranged(len(data), 10) == b"" and ranged(len(data) + 50, None) == b""
    whole = Collector()
    run(grid, lambda: b.read_blob("pat", "p2", whole, range=(5, 50)))
    assert whole.data == data[5:50]

    run(grid, b.delete, "pat", "p0")
    run(grid, b.set_flags_of, "pat", "p1", ["PENDING"])
    assert run(grid, b.row, "pat", "p1").offset == by_id["p1"].offset  # flags keep the blob's place
    assert run(grid, b.usage, "pat") == sum(len(d) for i, d in blobs if i != "p0")
    grid.call(b.close)

    again = new_backend(maker, tmp_path, "packs2", root_cap=open(tmp_path / "packs.rootcap").read().strip())

    async def check():
        assert await again.listing("pat", deleted=True) == ["p0"]
        for blob_id, data in blobs:
            if blob_id == "p0":
                continue
            row = await again.row("pat", blob_id)
            assert (row.cap, row.offset) == (by_id[blob_id].cap, by_id[blob_id].offset)
            assert await again.fetch(row) == data
        assert list((await again.row("pat", "p1")).flags) == ["PENDING"]

    run(grid, check)
    grid.call(again.close)


def test_a_failed_pack_upload_stores_none_of_the_batch(grid, maker, tmp_path, monkeypatch):
    b = new_backend(maker, tmp_path, "packfail")
    calls = []
    real = b._files.upload

    async def failing(source, size, *a, **kw):
        calls.append(size)
        raise OSError("the grid is away")

    monkeypatch.setattr(b._files, "upload", failing)
    blobs = [(f"f{i}", os.urandom(2000)) for i in range(5)]
    try:
        run(grid, b.store_many, "fay", [(i, len(d)) for i, d in blobs], io.BytesIO(b"".join(d for _, d in blobs)))
    except OSError:
        pass
    else:
        raise AssertionError("the batch should have failed")
    assert calls == [10_000]  # one upload for the five
    monkeypatch.setattr(b._files, "upload", real)
    assert run(grid, b.listing, "fay") == []
    assert run(grid, b.usage, "fay") == 0
    grid.call(b.close)


def test_concurrent_stream_uploads_pack_separately(grid, maker, tmp_path):
    b = new_backend(maker, tmp_path, "packconc")
    first = [(f"a{i}", os.urandom(500)) for i in range(4)]
    second = [(f"b{i}", os.urandom(700)) for i in range(4)]

    async def both():
        return await defer.gatherResults([
            defer.ensureDeferred(b.store_many("gus", [(i, len(d)) for i, d in batch],
                                              io.BytesIO(b"".join(d for _, d in batch))))
            for batch in (first, second)])

    rows_a, rows_b = run(grid, both)
    assert {r.cap for r in rows_a}.isdisjoint({r.cap for r in rows_b})
    for row, (_, data) in zip(rows_a + rows_b, first + second, strict=True):
        assert run(grid, b.fetch, row) == data
    grid.call(b.close)


def test_stream_out_reads_neighbours_in_a_pack_at_once(grid, maker, tmp_path, monkeypatch):
    from shoal.streaming import ConsumerWriter

    b = new_backend(maker, tmp_path, "packout")
    blobs = [(f"s{i:02d}", os.urandom(3000 + i)) for i in range(30)]
    blobs.insert(10, ("solo", os.urandom(packs.PACK_MAX_BLOB + 10)))
    rows = run(grid, b.store_many, "hal", [(i, len(d)) for i, d in blobs], io.BytesIO(b"".join(d for _, d in blobs)))
    downloads = []
    real = b._files.download

    async def counting(cap, write, offset=0, length=None):
        downloads.append(length)
        return await real(cap, write, offset, length)

    monkeypatch.setattr(b._files, "download", counting)
    wanted = [rows[i] for i in (0, 1, 2, 3, 10, 4, 5, 20, 21, 7)]  # runs broken by order and by "solo"
    out = Collector()

    async def stream():
        with ConsumerWriter(out) as writer:
            await b.stream_out(wanted, writer, lambda row: b"<%s>" % row.blob_id.encode())

    run(grid, stream)
    data = dict(blobs)
    assert out.data == b"".join(b"<%s>" % r.blob_id.encode() + data[r.blob_id] for r in wanted)
    # s00-s03 in one read; solo; s04 (a neighbour of s03 in the pack, but after solo) with s05; s19-s20; s07
    assert len(downloads) == 5
    grid.call(b.close)
