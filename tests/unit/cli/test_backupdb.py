"""shoal.cli.backupdb: Tahoe 1.20's backupdb schema and rules (scripts/backupdb.py)."""

import os
import random
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.cli.backupdb import (
    ALWAYS_CHECK_AFTER,
    NO_CHECK_BEFORE,
    SCHEMA_V1,
    BackupDB,
    FileStat,
    check_probability,
    directory_hash,
)
from shoal.cli.errors import CLIError
from shoal.crypto.hashes import tagged_hash
from shoal.encoding.base32 import b2a_bytes
from shoal.encoding.netstring import netstring

CAP = "URI:CHK:pmlyybnfkk5xa5fsxz35mkaaaa:ll2s2bbsrcpatoyi3d7auxa3ideykefh5rzmygpc2w7ysm45odaq:1:1:5000"
DIRCAP = "URI:DIR2-CHK:sutxjy35zg63r6s5eaaaaaaaaa:qvyrljzmmftk63zm2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1:1:300"


class Clock:
    def __init__(self, now: float = 1_000_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_new_database_has_tahoes_tables_and_version(tmp_path):
    BackupDB(str(tmp_path / "b.sqlite")).close()
    db = sqlite3.connect(tmp_path / "b.sqlite")
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"version", "local_files", "caps", "last_upload", "directories"} <= tables
    assert db.execute("SELECT version FROM version").fetchall() == [(2,)]
    assert oct(os.stat(tmp_path / "b.sqlite").st_mode & 0o777) == "0o600"


def test_file_reused_while_unchanged(tmp_path):
    clock = Clock()
    bdb = BackupDB(str(tmp_path / "b.sqlite"), clock=clock, rng=random.Random(1))
    stat = FileStat("/home/u/a.txt", 5000, 1796277289, 1796277289)
    assert bdb.check_file(stat) is None
    bdb.did_upload_file(CAP, stat)
    known = bdb.check_file(stat)
    assert known is not None and known.cap == CAP and not known.should_check
    assert bdb.check_file(stat, use_timestamps=False) is None  # and the row is dropped
    assert bdb.check_file(stat) is None


@pytest.mark.parametrize("changed", [
    FileStat("/home/u/a.txt", 5001, 1796277289, 1796277289),
    FileStat("/home/u/a.txt", 5000, 1796277290, 1796277289),
    FileStat("/home/u/a.txt", 5000, 1796277289, 1796277290),
])
def test_a_changed_file_is_uploaded_again(tmp_path, changed):
    bdb = BackupDB(str(tmp_path / "b.sqlite"))
    bdb.did_upload_file(CAP, FileStat("/home/u/a.txt", 5000, 1796277289, 1796277289))
    assert bdb.check_file(changed) is None


def test_rows_are_written_as_tahoe_writes_them(tmp_path):
    bdb = BackupDB(str(tmp_path / "b.sqlite"))
    bdb.did_upload_file(CAP, FileStat("/home/u/a.txt", 5000, 1796277289, 1796277289))
    dirhash, _ = bdb.check_directory({"a.txt": CAP})
    bdb.did_create_directory(DIRCAP, dirhash)
    bdb.close()
    db = sqlite3.connect(tmp_path / "b.sqlite")
    assert db.execute("SELECT * FROM local_files").fetchall() == [("/home/u/a.txt", 5000, 1796277289, 1796277289, 1)]
    assert db.execute("SELECT * FROM caps").fetchall() == [(1, CAP.encode())]  # bytes, as Tahoe's
    (row,) = db.execute("SELECT dirhash, dircap FROM directories").fetchall()
    assert row == (dirhash, DIRCAP.encode()) and isinstance(row[0], bytes) and len(row[0]) == 52


def test_directory_hash_is_tahoes_construction():
    contents = {"b.txt": "URI:LIT:mjrgeyrr", "a.txt": CAP}
    data = netstring(b"a.txt") + netstring(CAP.encode()) + netstring(b"b.txt") + netstring(b"URI:LIT:mjrgeyrr")
    assert directory_hash(contents) == b2a_bytes(tagged_hash(b"allmydata_backupdb_dirhash_v1", data))


def test_directory_known_after_creation(tmp_path):
    bdb = BackupDB(str(tmp_path / "b.sqlite"))
    dirhash, known = bdb.check_directory({"a.txt": CAP})
    assert known is None
    bdb.did_create_directory(DIRCAP, dirhash)
    assert bdb.check_directory({"a.txt": CAP})[1].cap == DIRCAP
    assert bdb.check_directory({"a.txt": CAP, "b": CAP})[1] is None


def test_old_entries_are_checked_first(tmp_path):
    clock = Clock()
    bdb = BackupDB(str(tmp_path / "b.sqlite"), clock=clock)
    stat = FileStat("/x", 1, 2, 3)
    bdb.did_upload_file(CAP, stat)
    clock.now += ALWAYS_CHECK_AFTER + 1
    assert bdb.check_file(stat).should_check
    bdb.did_check_file_healthy(CAP)
    assert not bdb.check_file(stat).should_check  # the check counts as fresh


@given(st.floats(-1e9, 1e9))
def test_check_probability_ramp(age):
    p = check_probability(age)
    assert 0.0 <= p <= 1.0
    if age <= NO_CHECK_BEFORE:
        assert p == 0.0
    if age >= ALWAYS_CHECK_AFTER:
        assert p == 1.0


def test_a_version_1_database_is_upgraded(tmp_path):
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    db.execute("INSERT INTO version (version) VALUES (1)")
    db.commit()
    db.close()
    bdb = BackupDB(str(path))
    bdb.check_directory({})
    bdb.close()
    assert sqlite3.connect(path).execute("SELECT version FROM version").fetchall() == [(2,)]


def test_an_unusable_file_is_one_line(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(CLIError) as e:
        BackupDB(str(path))
    assert "junk.sqlite" in str(e.value) and "\n" not in str(e.value)
