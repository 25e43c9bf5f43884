"""The blob service's local index: a SQLite cache of what the grid holds.

The grid is the record (shoal.apps.blobs.store); this index only saves
reading directories on every request. It remembers the root directory it
caches (a different root empties it) and whether the gateway stopped
cleanly: a gateway that crashed may have written the grid without updating
the index, so an unclean index is emptied on open and every user is read
again from the grid on first use. Used from the reactor thread only.

Tables: ``meta`` (root cap, clean flag, whether the root was listed),
``users`` (user -> directory cap, loaded?), ``namespaces`` ((user,
namespace) -> directory cap), ``blobs`` (one row per id, live or tombstone).

The sums every upload's quota check needs (a user's live bytes and live
blobs, a namespace's entries and live blobs) are counted from the table once
and then kept up to date by every write, in memory: counted on each PUT they
cost ~50 ms of the reactor thread per PUT at 100,000 blobs.
"""

import json
import os
import sqlite3
from collections.abc import Iterable

import attrs

SCHEMA_VERSION = "2"  # 2: blobs.pack_offset
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (user TEXT PRIMARY KEY, dircap TEXT NOT NULL, loaded INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS namespaces (
    user TEXT NOT NULL, namespace TEXT NOT NULL, dircap TEXT NOT NULL, PRIMARY KEY (user, namespace));
CREATE TABLE IF NOT EXISTS blobs (
    user TEXT NOT NULL, namespace TEXT NOT NULL, blob_id TEXT NOT NULL,
    cap TEXT NOT NULL, size INTEGER NOT NULL, tag TEXT NOT NULL, flags TEXT NOT NULL,
    created REAL NOT NULL, deleted REAL, pack_offset INTEGER,
    PRIMARY KEY (user, namespace, blob_id));
CREATE TABLE IF NOT EXISTS shards (
    user TEXT NOT NULL, namespace TEXT NOT NULL, shard TEXT NOT NULL, dircap TEXT NOT NULL,
    PRIMARY KEY (user, namespace, shard));
CREATE INDEX IF NOT EXISTS blobs_by_date ON blobs (user, namespace, created);
"""


@attrs.frozen
class BlobRow:
    user: str
    namespace: str
    blob_id: str
    cap: str
    size: int
    tag: str
    flags: tuple[str, ...] = ()
    created: float = 0.0
    deleted: float | None = None  # a tombstone's deletion time
    offset: int | None = None  # where the blob starts in its pack (shoal.apps.blobs.packs); None: on its own

    @property
    def live(self) -> bool:
        return self.deleted is None


SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def make_private(path: str) -> None:
    """The database file (created empty if missing) and its -wal/-shm/-journal at 0600.

    It holds every cap of the service. SQLite creates its -wal and -shm with
    the database file's mode, so a 0600 database keeps them 0600 too.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for suffix in SQLITE_SUFFIXES:
        try:
            os.chmod(path + suffix, 0o600)
        except FileNotFoundError:
            pass


class BlobIndex:
    def __init__(self, path: str, root_cap: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        self.path = path
        make_private(path)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if self._schema_version() != SCHEMA_VERSION:
            # an index of an older layout is only a cache: start it again (read from the grid)
            for table in ("meta", "users", "namespaces", "shards", "blobs"):
                self._db.execute(f"DROP TABLE IF EXISTS {table}")
        self._db.executescript(_SCHEMA)
        self._user_sums: dict[str, list[int]] = {}  # user -> [live bytes, live blobs]
        self._namespace_sums: dict[tuple[str, str], list[int]] = {}  # -> [entries, live blobs]
        if self._meta("root_cap") != root_cap or self._meta("clean") != "1":
            self._wipe()
        self._set_meta("schema", SCHEMA_VERSION)
        self._set_meta("root_cap", root_cap)
        self._set_meta("clean", "0")

    # --- bookkeeping ----------------------------------------------------------------

    def _schema_version(self) -> str | None:
        try:
            return self._meta("schema")
        except sqlite3.OperationalError:  # no meta table yet
            return None

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _forget_sums(self, user: str | None = None) -> None:
        if user is None:
            self._user_sums.clear()
            self._namespace_sums.clear()
            return
        self._user_sums.pop(user, None)
        for key in [k for k in self._namespace_sums if k[0] == user]:
            del self._namespace_sums[key]

    def _wipe(self) -> None:
        self._forget_sums()
        with self._db:
            self._db.execute("BEGIN")
            for table in ("meta", "users", "namespaces", "shards", "blobs"):
                self._db.execute(f"DELETE FROM {table}")

    def close(self, clean: bool = True) -> None:
        """Close; `clean` marks the index as matching the grid (no edit was cut
        short), so the next start may trust it."""
        if clean:
            self._set_meta("clean", "1")
        self._db.close()

    @property
    def root_listed(self) -> bool:
        return self._meta("root_listed") == "1"

    def set_users(self, users: dict[str, str]) -> None:
        """The users the root directory lists (user -> directory cap), not loaded yet."""
        with self._db:
            self._db.execute("BEGIN")
            for user, dircap in users.items():
                self._db.execute("INSERT OR IGNORE INTO users (user, dircap, loaded) VALUES (?, ?, 0)",
                                 (user, dircap))
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('root_listed', '1')")

    # --- users and namespaces -------------------------------------------------------

    def user(self, user: str) -> tuple[str, bool] | None:
        """(directory cap, loaded?) of a known user."""
        row = self._db.execute("SELECT dircap, loaded FROM users WHERE user = ?", (user,)).fetchone()
        return None if row is None else (str(row[0]), bool(row[1]))

    def add_user(self, user: str, dircap: str) -> None:
        """A user made just now (nothing to load)."""
        self._db.execute("INSERT OR REPLACE INTO users (user, dircap, loaded) VALUES (?, ?, 1)", (user, dircap))

    def load_user(self, user: str, namespaces: dict[str, str], rows: Iterable[BlobRow]) -> None:
        """Everything the grid holds for `user`, read from its directories, in one go."""
        self.begin_load(user, namespaces)
        self.put_many(rows)
        self.finish_load(user)

    def begin_load(self, user: str, namespaces: dict[str, str]) -> None:
        """Start reading `user` from the grid: forget what the index had, record the
        namespaces; rows then come in batches (put_many) and finish_load marks the
        user loaded. A load cut short leaves the user unloaded, to be read again."""
        self._forget_sums(user)
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE users SET loaded = 0 WHERE user = ?", (user,))
            for table in ("namespaces", "shards", "blobs"):
                self._db.execute(f"DELETE FROM {table} WHERE user = ?", (user,))
            for namespace, dircap in namespaces.items():
                self._db.execute("INSERT INTO namespaces (user, namespace, dircap) VALUES (?, ?, ?)",
                                 (user, namespace, dircap))

    def finish_load(self, user: str) -> None:
        self._db.execute("UPDATE users SET loaded = 1 WHERE user = ?", (user,))

    def shard(self, user: str, namespace: str, shard: str) -> str | None:
        row = self._db.execute("SELECT dircap FROM shards WHERE user = ? AND namespace = ? AND shard = ?",
                               (user, namespace, shard)).fetchone()
        return None if row is None else str(row[0])

    def has_shards(self, user: str, namespace: str) -> bool:
        row = self._db.execute("SELECT 1 FROM shards WHERE user = ? AND namespace = ? LIMIT 1",
                               (user, namespace)).fetchone()
        return row is not None

    def add_shard(self, user: str, namespace: str, shard: str, dircap: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO shards (user, namespace, shard, dircap) VALUES (?, ?, ?, ?)",
                         (user, namespace, shard, dircap))

    def namespace(self, user: str, namespace: str) -> str | None:
        row = self._db.execute("SELECT dircap FROM namespaces WHERE user = ? AND namespace = ?",
                               (user, namespace)).fetchone()
        return None if row is None else str(row[0])

    def namespace_count(self, user: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM namespaces WHERE user = ?", (user,)).fetchone()
        return int(row[0])

    def add_namespace(self, user: str, namespace: str, dircap: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO namespaces (user, namespace, dircap) VALUES (?, ?, ?)",
                         (user, namespace, dircap))

    # --- blobs ----------------------------------------------------------------------

    def _insert(self, row: BlobRow) -> None:
        user_sums = self._user_sums.get(row.user)
        namespace_sums = self._namespace_sums.get((row.user, row.namespace))
        old = None
        if user_sums is not None or namespace_sums is not None:
            old = self._db.execute("SELECT size, deleted FROM blobs WHERE user = ? AND namespace = ? AND blob_id = ?",
                                   (row.user, row.namespace, row.blob_id)).fetchone()
        self._db.execute(
            "INSERT OR REPLACE INTO blobs (user, namespace, blob_id, cap, size, tag, flags, created, deleted,"
            " pack_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.user, row.namespace, row.blob_id, row.cap, row.size, row.tag, json.dumps(list(row.flags)),
             row.created, row.deleted, row.offset))
        old_live = old is not None and old[1] is None
        old_bytes = int(old[0]) if old is not None and old_live else 0
        live = int(row.live) - int(old_live)
        if user_sums is not None:
            user_sums[0] += (row.size if row.live else 0) - old_bytes
            user_sums[1] += live
        if namespace_sums is not None:
            namespace_sums[0] += int(old is None)
            namespace_sums[1] += live

    def put(self, row: BlobRow) -> None:
        self._insert(row)

    def put_many(self, rows: Iterable[BlobRow]) -> None:
        try:
            with self._db:
                self._db.execute("BEGIN")
                for row in rows:
                    self._insert(row)
        except BaseException:
            self._forget_sums()  # rolled back: the sums are counted again from the table
            raise

    def get(self, user: str, namespace: str, blob_id: str) -> BlobRow | None:
        """The row of an id, live or tombstone."""
        row = self._db.execute(
            "SELECT cap, size, tag, flags, created, deleted, pack_offset FROM blobs"
            " WHERE user = ? AND namespace = ? AND blob_id = ?", (user, namespace, blob_id)).fetchone()
        if row is None:
            return None
        cap, size, tag, flags, created, deleted, offset = row
        return BlobRow(user, namespace, blob_id, cap, size, tag, tuple(json.loads(flags)), created, deleted, offset)

    def list_ids(self, user: str, namespace: str, *, deleted: bool = False, filter_flag: str | None = None,
                 newest_first: bool | None = None) -> list[str]:
        """Live ids (tombstoned ids with deleted=True); by creation date when asked,
        else by id."""
        query = "SELECT blob_id, flags FROM blobs WHERE user = ? AND namespace = ? AND deleted IS "
        query += "NOT NULL" if deleted else "NULL"
        if newest_first is None:
            query += " ORDER BY blob_id"
        else:
            query += " ORDER BY created DESC, blob_id DESC" if newest_first else " ORDER BY created, blob_id"
        rows = self._db.execute(query, (user, namespace)).fetchall()
        return [blob_id for blob_id, flags in rows if filter_flag is None or filter_flag in json.loads(flags)]

    def _namespace_sum(self, user: str, namespace: str) -> list[int]:
        sums = self._namespace_sums.get((user, namespace))
        if sums is None:
            row = self._db.execute("SELECT COUNT(*), COUNT(*) FILTER (WHERE deleted IS NULL) FROM blobs"
                                   " WHERE user = ? AND namespace = ?", (user, namespace)).fetchone()
            sums = self._namespace_sums[(user, namespace)] = [int(row[0]), int(row[1])]
        return sums

    def _user_sum(self, user: str) -> list[int]:
        sums = self._user_sums.get(user)
        if sums is None:
            row = self._db.execute("SELECT COALESCE(SUM(size), 0), COUNT(*) FROM blobs"
                                   " WHERE user = ? AND deleted IS NULL", (user,)).fetchone()
            sums = self._user_sums[user] = [int(row[0]), int(row[1])]
        return sums

    def count(self, user: str, namespace: str) -> int:
        """Live blobs only (Soledad's server counted tombstones too)."""
        return self._namespace_sum(user, namespace)[1]

    def entries(self, user: str, namespace: str) -> int:
        """Entries of a namespace's directory: live blobs and tombstones."""
        return self._namespace_sum(user, namespace)[0]

    def objects(self, user: str) -> int:
        """The user's live blobs over every namespace."""
        return self._user_sum(user)[1]

    def usage(self, user: str) -> int:
        """Bytes of the user's live blobs over every namespace."""
        return self._user_sum(user)[0]
