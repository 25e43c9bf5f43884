"""The BlobManager's local cache: one SQLite file per user (stdlib sqlite3).

Sync states and priorities are Soledad's numbers (app-apis.md 1.5):
SYNCED=1, PENDING_UPLOAD=2, PENDING_DOWNLOAD=3, FAILED_UPLOAD=4,
FAILED_DOWNLOAD=5, PENDING_DELETE=6, LOCAL_ONLY=7; LOW=1, MEDIUM=2 (default),
HIGH=3, URGENT=4, the pending queue served highest priority first.

Table ``blobs`` holds each blob's *stored* bytes (already encrypted, exactly
what the server gets), so the cache on disk is ciphertext too; table
``sync_state`` holds status, priority and retry count per (namespace, id). A
PENDING_DOWNLOAD row has a state but no bytes yet. Calls are synchronous and
short; the manager runs them on the reactor thread.
"""

import enum
import os
import sqlite3
from collections.abc import Iterable


class SyncStatus(enum.IntEnum):
    SYNCED = 1
    PENDING_UPLOAD = 2
    PENDING_DOWNLOAD = 3
    FAILED_UPLOAD = 4
    FAILED_DOWNLOAD = 5
    PENDING_DELETE = 6
    LOCAL_ONLY = 7


class Priority(enum.IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    URGENT = 4
    DEFAULT = 2


PRIORITY_NAMES = {"low": Priority.LOW, "medium": Priority.MEDIUM, "high": Priority.HIGH, "urgent": Priority.URGENT}


def parse_priority(priority: int | str) -> Priority:
    """Soledad's `_parse_priority`: an int 1..4 or one of 'low', 'medium', 'high', 'urgent'; ValueError else."""
    if isinstance(priority, bool):
        raise ValueError(f"priority {priority!r} is not one of 1-4 or {', '.join(PRIORITY_NAMES)}")
    if isinstance(priority, int):
        if Priority.LOW <= priority <= Priority.URGENT:
            return Priority(priority)
    elif isinstance(priority, str) and priority in PRIORITY_NAMES:
        return PRIORITY_NAMES[priority]
    raise ValueError(f"priority {priority!r} is not one of 1-4 or {', '.join(PRIORITY_NAMES)}")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    namespace TEXT NOT NULL, blob_id TEXT NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (namespace, blob_id));
CREATE TABLE IF NOT EXISTS sync_state (
    namespace TEXT NOT NULL, blob_id TEXT NOT NULL, sync_status INTEGER NOT NULL,
    priority INTEGER NOT NULL DEFAULT 2, retries INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL, PRIMARY KEY (namespace, blob_id));
CREATE INDEX IF NOT EXISTS sync_queue ON sync_state (sync_status, priority DESC, seq);
"""


class LocalCache:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM sync_state").fetchone()
        self._seq = int(row[0])

    def close(self) -> None:
        self.db.close()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- payloads -----------------------------------------------------------

    def put(self, namespace: str, blob_id: str, payload: bytes, status: SyncStatus,
            priority: int | None = Priority.DEFAULT) -> None:
        """Store the bytes and state; priority None keeps the row's current priority."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?)", (namespace, blob_id, payload))
            self._set_state(namespace, blob_id, status, priority)

    def get(self, namespace: str, blob_id: str) -> bytes | None:
        row = self.db.execute("SELECT payload FROM blobs WHERE namespace=? AND blob_id=?",
                              (namespace, blob_id)).fetchone()
        return None if row is None else bytes(row[0])

    def has_payload(self, namespace: str, blob_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM blobs WHERE namespace=? AND blob_id=?",
                               (namespace, blob_id)).fetchone() is not None

    def delete(self, namespace: str, blob_id: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM blobs WHERE namespace=? AND blob_id=?", (namespace, blob_id))
            self.db.execute("DELETE FROM sync_state WHERE namespace=? AND blob_id=?", (namespace, blob_id))

    def drop_payload(self, namespace: str, blob_id: str) -> None:
        self.db.execute("DELETE FROM blobs WHERE namespace=? AND blob_id=?", (namespace, blob_id))

    # -- sync state ---------------------------------------------------------

    def _set_state(self, namespace: str, blob_id: str, status: SyncStatus, priority: int | None) -> None:
        row = self.db.execute("SELECT priority FROM sync_state WHERE namespace=? AND blob_id=?",
                              (namespace, blob_id)).fetchone()
        prio = int(priority if priority is not None else (row[0] if row else Priority.DEFAULT))
        self.db.execute("INSERT OR REPLACE INTO sync_state VALUES (?, ?, ?, ?, 0, ?)",
                        (namespace, blob_id, int(status), prio, self._next_seq()))

    def set_status(self, namespace: str, blob_id: str, status: SyncStatus, priority: int | None = None) -> None:
        """Set the state (keeping the priority unless one is given); resets the retry count."""
        self._set_state(namespace, blob_id, status, priority)

    def set_statuses(self, namespace: str, blob_ids: Iterable[str], status: SyncStatus) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for blob_id in blob_ids:
                self._set_state(namespace, blob_id, status, None)

    def set_priority(self, namespace: str, blob_id: str, priority: int) -> None:
        self.db.execute("UPDATE sync_state SET priority=? WHERE namespace=? AND blob_id=?",
                        (int(priority), namespace, blob_id))

    def status(self, namespace: str, blob_id: str) -> tuple[SyncStatus, int, int] | None:
        """(status, priority, retries) or None if the id is unknown locally."""
        row = self.db.execute("SELECT sync_status, priority, retries FROM sync_state "
                              "WHERE namespace=? AND blob_id=?", (namespace, blob_id)).fetchone()
        return None if row is None else (SyncStatus(row[0]), int(row[1]), int(row[2]))

    def count_retry(self, namespace: str, blob_id: str) -> int:
        self.db.execute("UPDATE sync_state SET retries = retries + 1 WHERE namespace=? AND blob_id=?",
                        (namespace, blob_id))
        st = self.status(namespace, blob_id)
        return st[2] if st else 0

    def list_ids(self, namespace: str, status: SyncStatus | None = None) -> list[str]:
        if status is None:
            rows = self.db.execute("SELECT blob_id FROM sync_state WHERE namespace=? ORDER BY seq",
                                   (namespace,))
        else:
            rows = self.db.execute("SELECT blob_id FROM sync_state WHERE namespace=? AND sync_status=? "
                                   "ORDER BY priority DESC, seq", (namespace, int(status)))
        return [r[0] for r in rows]

    def next_in_queue(self, namespace: str, statuses: Iterable[SyncStatus], exclude: set[str]) -> str | None:
        """The highest-priority (then oldest) id in one of `statuses`, skipping `exclude`."""
        codes = [int(s) for s in statuses]
        marks = ",".join("?" * len(codes))
        for (blob_id,) in self.db.execute(
                f"SELECT blob_id FROM sync_state WHERE namespace=? AND sync_status IN ({marks}) "
                "ORDER BY priority DESC, seq", (namespace, *codes)):
            if blob_id not in exclude:
                return str(blob_id)
        return None

    def progress(self, namespace: str) -> dict[str, int]:
        counts = {s.name: 0 for s in SyncStatus}
        for code, n in self.db.execute("SELECT sync_status, COUNT(*) FROM sync_state WHERE namespace=? "
                                       "GROUP BY sync_status", (namespace,)):
            counts[SyncStatus(code).name] = int(n)
        return counts
