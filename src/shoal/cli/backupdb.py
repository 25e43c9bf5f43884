"""NODEDIR/private/backupdb.sqlite: which local files and directories `backup` already
stored, in Tahoe-LAFS 1.20's schema (scripts/backupdb.py, version 2), so a history made
by `tahoe backup` is reused by `shoal backup` and the other way round.

Facts kept exactly as Tahoe writes them (checked against a database written by Tahoe
1.20): ``local_files`` rows are keyed by the absolute path (text) with the size and the
*integer* seconds of st_mtime and st_ctime; caps (``caps.filecap``,
``directories.dircap``) and ``directories.dirhash`` are stored as bytes (BLOBs), the
timestamps as float seconds. A file is unchanged when its size, mtime and ctime all
equal its row (without ``--ignore-timestamps``); a directory is known when the hash of
its sorted ``netstring(name) + netstring(cap)`` pairs (the backupdb_dirhash tag) has a
row. Something stored less than a month ago is reused as it is; after that it is
checked (``t=check``) with a probability rising to 1 at two months, and the check
refreshes ``last_checked``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Mapping

import attrs

from shoal.cli.errors import CLIError
from shoal.crypto.hashes import backupdb_dirhash
from shoal.encoding.base32 import b2a_bytes
from shoal.encoding.netstring import netstring

FILENAME = "backupdb.sqlite"
VERSION = 2
DAY = 24 * 60 * 60
MONTH = 30 * DAY
NO_CHECK_BEFORE = 1 * MONTH
ALWAYS_CHECK_AFTER = 2 * MONTH

SCHEMA_V1 = """
CREATE TABLE version -- added in v1
(
 version INTEGER  -- contains one row, set to 2
);

CREATE TABLE local_files -- added in v1
(
 path  VARCHAR(1024) PRIMARY KEY, -- index, this is an absolute UTF-8-encoded local filename
 size  INTEGER,       -- os.stat(fn)[stat.ST_SIZE]
 mtime NUMBER,        -- os.stat(fn)[stat.ST_MTIME]
 ctime NUMBER,        -- os.stat(fn)[stat.ST_CTIME]
 fileid INTEGER
);

CREATE TABLE caps -- added in v1
(
 fileid INTEGER PRIMARY KEY AUTOINCREMENT,
 filecap VARCHAR(256) UNIQUE       -- URI:CHK:...
);

CREATE TABLE last_upload -- added in v1
(
 fileid INTEGER PRIMARY KEY,
 last_uploaded TIMESTAMP,
 last_checked TIMESTAMP
);

"""
TABLE_DIRECTORY = """

CREATE TABLE directories -- added in v2
(
 dirhash varchar(256) PRIMARY KEY,  -- base32(dirhash)
 dircap varchar(256),               -- URI:DIR2-CHK:...
 last_uploaded TIMESTAMP,
 last_checked TIMESTAMP
);

"""
SCHEMA_V2 = SCHEMA_V1 + TABLE_DIRECTORY
UPDATE_V1_TO_V2 = TABLE_DIRECTORY + "UPDATE version SET version=2;\n"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def check_probability(age: float) -> float:
    """How likely something stored `age` seconds ago is checked before reuse (Tahoe's ramp)."""
    p = (age - NO_CHECK_BEFORE) / (ALWAYS_CHECK_AFTER - NO_CHECK_BEFORE)
    return min(max(p, 0.0), 1.0)


def directory_hash(contents: Mapping[str, str]) -> bytes:
    """base32 of the backupdb dirhash of a directory's {child name: cap} (as Tahoe's check_directory)."""
    entries = sorted((name.encode("utf-8"), cap.encode("ascii")) for name, cap in contents.items())
    data = b"".join(netstring(name) + netstring(cap) for name, cap in entries)
    return b2a_bytes(backupdb_dirhash(data))


@attrs.frozen
class FileStat:
    """What the backupdb compares: the absolute path, size and whole-second mtime and ctime."""

    path: str
    size: int
    mtime: int
    ctime: int

    @classmethod
    def of(cls, path: str, st: os.stat_result) -> FileStat:
        return cls(os.path.abspath(os.path.expanduser(path)), st.st_size, int(st.st_mtime), int(st.st_ctime))


@attrs.frozen
class Known:
    """A cap the database holds for a file or directory, and whether to check it before reuse."""

    cap: str
    should_check: bool


class BackupDB:
    """One open backupdb (Tahoe's schema v2; a v1 file is upgraded as Tahoe does)."""

    def __init__(self, path: str, *, rng: random.Random | None = None, clock: object = time.time) -> None:
        self.path = path
        self._rng = rng or random.Random()
        self._clock = clock
        must_create = not os.path.exists(path)
        try:
            if must_create:  # it maps local files to caps: private from the start
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self._db = sqlite3.connect(path)
            c = self._db.cursor()
            c.execute("PRAGMA foreign_keys = ON;")
            if must_create:
                c.executescript(SCHEMA_V2)
                c.execute("INSERT INTO version (version) VALUES (?)", (VERSION,))
                self._db.commit()
            row = c.execute("SELECT version FROM version").fetchone()
            version = row[0] if row else None
            if version == 1:
                c.executescript(UPDATE_V1_TO_V2)
                self._db.commit()
                version = 2
        except sqlite3.DatabaseError as e:
            raise CLIError(f"{path}: backupdb file is unusable: {e}") from None
        except OSError as e:
            raise CLIError(f"{path}: cannot open the backupdb: {e.strerror}") from None
        if version != VERSION:
            raise CLIError(f"{path}: unable to handle backupdb version {version}")

    def close(self) -> None:
        self._db.close()

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def _should_check(self, last_checked: float | None) -> bool:
        age = self._now() - float(last_checked or 0)
        return self._rng.random() < check_probability(age)

    # --- files ---------------------------------------------------------------------

    def check_file(self, stat: FileStat, use_timestamps: bool = True) -> Known | None:
        """The cap of an unchanged file stored before, or None (a changed file's row is dropped)."""
        c = self._db.cursor()
        row = c.execute("SELECT size, mtime, ctime, fileid FROM local_files WHERE path=?", (stat.path,)).fetchone()
        if row is None:
            return None
        size, mtime, ctime, fileid = row
        row2 = c.execute("SELECT caps.filecap, last_upload.last_checked FROM caps, last_upload"
                         " WHERE caps.fileid=? AND last_upload.fileid=?", (fileid, fileid)).fetchone()
        if (size != stat.size or not use_timestamps or mtime != stat.mtime or ctime != stat.ctime
                or row2 is None):
            c.execute("DELETE FROM local_files WHERE path=?", (stat.path,))
            self._db.commit()
            return None
        filecap, last_checked = row2
        return Known(_text(filecap), self._should_check(last_checked))

    def _fileid(self, filecap: str) -> int:
        c = self._db.cursor()
        cap = filecap.encode("ascii")  # Tahoe stores caps as bytes: a text value would not match its rows
        try:
            c.execute("INSERT INTO caps (filecap) VALUES (?)", (cap,))
        except (sqlite3.IntegrityError, sqlite3.OperationalError):
            pass
        row = c.execute("SELECT fileid FROM caps WHERE filecap=?", (cap,)).fetchone()
        assert row is not None
        return int(row[0])

    def did_upload_file(self, filecap: str, stat: FileStat) -> None:
        now = self._now()
        fileid = self._fileid(filecap)
        c = self._db.cursor()
        try:
            c.execute("INSERT INTO last_upload VALUES (?,?,?)", (fileid, now, now))
        except (sqlite3.IntegrityError, sqlite3.OperationalError):
            c.execute("UPDATE last_upload SET last_uploaded=?, last_checked=? WHERE fileid=?", (now, now, fileid))
        try:
            c.execute("INSERT INTO local_files VALUES (?,?,?,?,?)",
                      (stat.path, stat.size, stat.mtime, stat.ctime, fileid))
        except (sqlite3.IntegrityError, sqlite3.OperationalError):
            c.execute("UPDATE local_files SET size=?, mtime=?, ctime=?, fileid=? WHERE path=?",
                      (stat.size, stat.mtime, stat.ctime, fileid, stat.path))
        self._db.commit()

    def did_check_file_healthy(self, filecap: str) -> None:
        fileid = self._fileid(filecap)
        self._db.execute("UPDATE last_upload SET last_checked=? WHERE fileid=?", (self._now(), fileid))
        self._db.commit()

    # --- directories ---------------------------------------------------------------

    def check_directory(self, contents: Mapping[str, str]) -> tuple[bytes, Known | None]:
        """(dirhash, the cap of an immutable directory with exactly these children, if stored)."""
        dirhash = directory_hash(contents)
        row = self._db.execute("SELECT dircap, last_checked FROM directories WHERE dirhash=? OR dirhash=?",
                               (dirhash, dirhash.decode("ascii"))).fetchone()
        if row is None:
            return dirhash, None
        dircap, last_checked = row
        return dirhash, Known(_text(dircap), self._should_check(last_checked))

    def did_create_directory(self, dircap: str, dirhash: bytes) -> None:
        now = self._now()
        self._db.execute("REPLACE INTO directories VALUES (?,?,?,?)", (dirhash, dircap.encode("ascii"), now, now))
        self._db.commit()

    def did_check_directory_healthy(self, dircap: str) -> None:
        self._db.execute("UPDATE directories SET last_checked=? WHERE dircap=? OR dircap=?",
                         (self._now(), dircap.encode("ascii"), dircap))
        self._db.commit()
