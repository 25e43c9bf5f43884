"""The fan-out of namespaces over shard directories (shoal.apps.blobs.store): edits
rewrite one shard, never the whole namespace; a namespace written in the older
flat layout is still read, and edited through the shards; a rebuild reads
both; a failed /stream batch leaves no entry behind in the shards it wrote."""

import io
import os

import pytest

from shoal.apps.blobs import backend as backend_module
from shoal.apps.blobs.errors import BlobStoreError
from shoal.apps.blobs.store import TOMBSTONE_CAP, is_shard_name, shard_of
from tests.unit.apps.blobs.test_blobs_backend_grid import new_backend, run


def names(maker, grid, cap):
    node = maker.node_for(cap)
    return sorted(run(grid, node.list))


def test_shard_names():
    assert shard_of("abc") == ".shard-" + __import__("hashlib").sha256(b"abc").hexdigest()[:2]
    assert is_shard_name(".shard-0f") and not is_shard_name(".shard-0g") and not is_shard_name("shard-0f")
    assert len({shard_of(f"id{i}") for i in range(5000)}) == 256


def test_a_namespace_fans_out_once_it_is_large(grid, maker, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_module, "FLAT_LIMIT", 6)
    b = new_backend(maker, tmp_path, "grow")
    run(grid, b.store_many, "lee", [(f"s{i}", 1) for i in range(5)], io.BytesIO(b"abcde"))
    index = b._index
    ns_cap = grid.call(index.namespace, "lee", "default")
    assert names(maker, grid, ns_cap) == [f"s{i}" for i in range(5)]  # small: flat, no shard directories
    run(grid, b.store, "lee", "s5", io.BytesIO(b"f"), 1)  # the 6th entry: still flat
    run(grid, b.store, "lee", "s6", io.BytesIO(b"g"), 1)  # past the limit: its shard
    run(grid, b.delete, "lee", "s0")  # an old flat id's edit goes to its shard too
    top = names(maker, grid, ns_cap)
    assert [n for n in top if not is_shard_name(n)] == [f"s{i}" for i in range(6)]
    assert sorted(n for n in top if is_shard_name(n)) == sorted({shard_of("s6"), shard_of("s0")})
    grid.call(b.close)
    again = new_backend(maker, tmp_path, "grow2", root_cap=open(tmp_path / "grow.rootcap").read().strip())
    assert run(grid, again.listing, "lee") == [f"s{i}" for i in range(1, 7)]
    assert run(grid, again.listing, "lee", deleted=True) == ["s0"]
    grid.call(again.close)


def test_edits_rewrite_one_shard_not_the_namespace(grid, maker, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_module, "FLAT_LIMIT", 0)
    b = new_backend(maker, tmp_path, "fan")
    blobs = {f"m{i}": os.urandom(60 + i) for i in range(40)}
    run(grid, b.store_many, "ivy", [(k, len(v)) for k, v in blobs.items()],
        io.BytesIO(b"".join(blobs.values())))
    index = b._index
    ns_cap = grid.call(index.namespace, "ivy", "default")
    top = names(maker, grid, ns_cap)
    assert top and all(is_shard_name(n) for n in top)  # the namespace holds only shards
    assert set(top) == {shard_of(k) for k in blobs}
    shard = shard_of("m3")
    assert "m3" in names(maker, grid, grid.call(index.shard, "ivy", "default", shard))
    ns_batcher = b._batchers[ns_cap]
    writes = ns_batcher.writes
    run(grid, b.set_flags_of, "ivy", "m3", ["PENDING"])
    run(grid, b.delete, "ivy", "m4")
    run(grid, b.store, "ivy", "m3-again", io.BytesIO(b"x"), 1) if shard_of("m3-again") in top else None
    assert ns_batcher.writes == writes  # edits in existing shards never rewrite the namespace directory
    grid.call(b.close)
    again = new_backend(maker, tmp_path, "fan2", root_cap=open(tmp_path / "fan.rootcap").read().strip())
    assert sorted(run(grid, again.listing, "ivy")) == sorted(set(blobs) - {"m4"} | (
        {"m3-again"} if shard_of("m3-again") in top else set()))
    assert run(grid, again.listing, "ivy", deleted=True) == ["m4"]
    assert list(run(grid, again.row, "ivy", "m3").flags) == ["PENDING"]
    grid.call(again.close)


def test_the_older_flat_layout_is_read_and_edited_through_shards(grid, maker, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_module, "FLAT_LIMIT", 3)  # the old namespace counts as large
    # write a namespace as older shoal did: entries right in the namespace directory
    b = new_backend(maker, tmp_path, "flat")
    run(grid, b.store, "jo", "seed", io.BytesIO(b"s"), 1)  # makes root, user and namespace directories
    index = b._index
    ns_cap = grid.call(index.namespace, "jo", "default")
    grid.call(b.close)
    old = {f"old{i}": os.urandom(100 + i) for i in range(5)}

    async def flat_write():
        entries = {}
        for blob_id, data in old.items():
            result = await maker.files.upload(io.BytesIO(data), len(data))
            from shoal.apps.blobs.rules import tag_of
            entries[blob_id] = (result.cap, None, {"blob": {"size": len(data), "tag": tag_of(data), "flags": [],
                                                            "created": 1000.0}})
        await maker.node_for(ns_cap).set_children(entries)

    run(grid, flat_write)
    root = open(tmp_path / "flat.rootcap").read().strip()
    r = new_backend(maker, tmp_path, "flat-r", root_cap=root)
    assert sorted(run(grid, r.listing, "jo")) == sorted([*old, "seed"])
    for blob_id, data in old.items():
        assert run(grid, r.fetch, run(grid, r.row, "jo", blob_id)) == data
    run(grid, r.delete, "jo", "old1")
    run(grid, r.set_flags_of, "jo", "old2", ["FAILED"])
    assert "old1" in names(maker, grid, ns_cap)  # the flat entry stays; the shard's overrides it
    grid.call(r.close)
    r2 = new_backend(maker, tmp_path, "flat-r2", root_cap=root)
    assert run(grid, r2.listing, "jo", deleted=True) == ["old1"]
    assert sorted(run(grid, r2.listing, "jo")) == sorted(["seed", "old0", "old2", "old3", "old4"])
    assert list(run(grid, r2.row, "jo", "old2").flags) == ["FAILED"]
    grid.call(r2.close)


def test_a_failed_stream_batch_leaves_no_entries_in_the_shards(grid, maker, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_module, "FLAT_LIMIT", 0)
    b = new_backend(maker, tmp_path, "undo")
    run(grid, b.store, "kim", "keep", io.BytesIO(b"k"), 1)
    run(grid, b.delete, "kim", "keep")  # a tombstone, to be restored as it was
    items = [("keep", 2)] + [(f"u{i}", 2) for i in range(30)]
    target = shard_of("u7")
    real = b._link

    async def failing(batcher, entries):
        if "u7" in entries:
            raise BlobStoreError("injected shard failure")
        await real(batcher, entries)

    monkeypatch.setattr(b, "_link", failing)
    monkeypatch.setattr(backend_module, "LINK_PARALLEL", 1)
    with pytest.raises(BlobStoreError, match="injected"):
        run(grid, b.store_many, "kim", items, io.BytesIO(b"ab" * len(items)))
    monkeypatch.setattr(b, "_link", real)
    index = b._index
    for shard in {shard_of(i) for i, _ in items} - {target}:
        cap = grid.call(index.shard, "kim", "default", shard)
        if cap is None:
            continue
        listing = run(grid, maker.node_for(cap).list)
        assert not {f"u{i}" for i in range(30)} & set(listing), shard
        if "keep" in listing:
            assert listing["keep"].ro_cap == TOMBSTONE_CAP or listing["keep"].rw_cap == TOMBSTONE_CAP
    assert run(grid, b.listing, "kim") == [] and run(grid, b.listing, "kim", deleted=True) == ["keep"]
    grid.call(b.close)


def test_a_rebuild_holds_a_few_shards_at_a_time(grid, maker, tmp_path, monkeypatch):
    """Reading a fanned-out namespace back stores each shard's rows as they arrive, at
    most LOAD_PARALLEL shard listings at once: memory follows the shard size, not the
    namespace's."""
    monkeypatch.setattr(backend_module, "FLAT_LIMIT", 0)
    monkeypatch.setattr(backend_module, "LOAD_PARALLEL", 2)
    b = new_backend(maker, tmp_path, "big")
    ids = [f"r{i}" for i in range(600)]
    run(grid, b.store_many, "ned", [(i, 1) for i in ids], io.BytesIO(b"x" * len(ids)))
    grid.call(b.close)
    again = new_backend(maker, tmp_path, "big2", root_cap=open(tmp_path / "big.rootcap").read().strip())
    batches, listing_now, listing_max = [], [0], [0]
    real_list = type(maker.node_for(open(tmp_path / "big.rootcap").read().strip())).list

    async def counting_list(self):
        listing_now[0] += 1
        listing_max[0] = max(listing_max[0], listing_now[0])
        try:
            return await real_list(self)
        finally:
            listing_now[0] -= 1

    monkeypatch.setattr(type(maker.node_for(open(tmp_path / "big.rootcap").read().strip())), "list", counting_list)

    async def go():
        index = await again._ready()
        real_put_many = index.put_many

        def put_many(rows):
            rows = list(rows)
            batches.append(len(rows))
            real_put_many(rows)

        index.put_many = put_many
        return await again.listing("ned")

    assert sorted(run(grid, go)) == sorted(ids)
    assert max(batches) <= 20 and sum(batches) == len(ids)  # about 600/256 rows per shard, never all 600
    assert listing_max[0] <= 2
    grid.call(again.close)
