"""Paths of the storage directory and the durable file helpers."""

import os

import pytest

from shoal.storage import layout
from shoal.storage.errors import BadRequestError
from shoal.storage.layout import StorageLayout

SI = bytes(range(16))


def test_paths_are_tahoes(tmp_path):
    store = StorageLayout(str(tmp_path / "storage"))
    text = layout.si_b2a(SI)
    assert text == "aaaqeayeaudaocajbifqydiob4"
    assert store.bucket_dir(SI) == str(tmp_path / "storage" / "shares" / "aa" / text)
    assert store.share_path(SI, 7) == str(tmp_path / "storage" / "shares" / "aa" / text / "7")
    assert store.incoming_path(SI, 7) == str(
        tmp_path / "storage" / "shares" / "incoming" / "aa" / text / "7"
    )
    assert store.advisory_dir == str(tmp_path / "storage" / "corruption-advisories")


def test_prefixes_are_the_1024_two_character_names_in_order():
    assert len(layout.ALL_PREFIXES) == 1024
    assert list(layout.ALL_PREFIXES) == sorted(layout.ALL_PREFIXES)
    assert layout.ALL_PREFIXES[0] == "22" and layout.ALL_PREFIXES[-1] == "zz"


def test_si_a2b_accepts_only_storage_indexes():
    assert layout.si_a2b(layout.si_b2a(SI)) == SI
    for bad in ("incoming", "aaaa", layout.si_b2a(SI).upper(), layout.si_b2a(SI)[:-1] + "b"):
        with pytest.raises(BadRequestError):
            layout.si_a2b(bad)


def test_prepare_discards_incoming_and_creates_directories(tmp_path):
    store = StorageLayout(str(tmp_path / "storage"))
    store.prepare()
    stale = os.path.dirname(store.incoming_path(SI, 0))
    os.makedirs(stale)
    with open(store.incoming_path(SI, 0), "wb") as handle:
        handle.write(b"partial")
    with open(store.temp_path(), "wb") as handle:
        handle.write(b"half a rewrite")
    store.prepare()
    assert os.listdir(store.incoming_dir) == ["tmp"]
    assert os.listdir(store.tmp_dir) == []
    assert os.path.isdir(store.advisory_dir)


def test_list_shares_takes_only_decimal_names(tmp_path):
    store = StorageLayout(str(tmp_path / "storage"))
    store.prepare()
    bucket = store.bucket_dir(SI)
    os.makedirs(bucket)
    for name in ("0", "12", "3", "x", "3.tmp", "-1", "07"):
        open(os.path.join(bucket, name), "wb").close()
    assert [shnum for shnum, _ in store.list_shares(SI)] == [0, 3, 7, 12]
    assert store.list_shares(bytes(16)) == []


def test_list_buckets_ignores_other_names(tmp_path):
    store = StorageLayout(str(tmp_path / "storage"))
    store.prepare()
    os.makedirs(store.bucket_dir(SI))
    os.makedirs(os.path.join(store.prefix_dir("aa"), "not-a-storage-index"))
    assert store.list_buckets("aa") == [layout.si_b2a(SI)]
    assert store.list_buckets("zz") == []


def test_makedirs_durably_creates_every_level(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    layout.makedirs_durably(str(target))
    layout.makedirs_durably(str(target))
    assert target.is_dir()


def test_remove_empty_dir(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    assert layout.remove_empty_dir(str(tmp_path / "empty"))
    assert not layout.remove_empty_dir(str(tmp_path / "full"))
    assert not layout.remove_empty_dir(str(tmp_path / "missing"))


def test_write_file_durably_replaces_whole(tmp_path):
    final = str(tmp_path / "state")
    layout.write_file_durably(final, b"one", str(tmp_path / "t1"))
    layout.write_file_durably(final, b"two", str(tmp_path / "t2"))
    assert open(final, "rb").read() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["state"]


def test_failed_rewrite_leaves_the_original_and_no_temporary(tmp_path):
    original = tmp_path / "share"
    original.write_bytes(b"original")

    def explode(handle):
        handle.write(b"garbage")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        layout.rewrite_durably(str(original), str(tmp_path / "temp"), explode)
    assert original.read_bytes() == b"original"
    assert sorted(os.listdir(tmp_path)) == ["share"]


def test_rewrite_durably_changes_a_copy_then_renames(tmp_path):
    original = tmp_path / "share"
    original.write_bytes(b"0123456789")
    inode = os.stat(original).st_ino

    def change(handle):
        handle.seek(2)
        handle.write(b"XY")

    assert layout.rewrite_durably(str(original), str(tmp_path / "temp"), change) == 10
    assert original.read_bytes() == b"01XY456789"
    assert os.stat(original).st_ino != inode


def test_copy_sparse_keeps_bytes_and_holes(tmp_path):
    source, copy = str(tmp_path / "sparse"), str(tmp_path / "copy")
    with open(source, "wb") as f:
        f.write(b"head" * 1000)
        f.seek(1 << 30)
        f.write(b"middle")
        f.seek(3 << 30)
        f.truncate()  # ends in a hole
    layout.copy_sparse(source, copy)
    with open(source, "rb") as a, open(copy, "rb") as b:
        assert os.path.getsize(copy) == os.path.getsize(source) == 3 << 30
        for at in (0, 4000, (1 << 30) - 10, 1 << 30, (3 << 30) - 10):
            a.seek(at)
            b.seek(at)
            assert a.read(20) == b.read(20)
    assert os.stat(copy).st_blocks * 512 < 1 << 20
