"""What the client node did lately: one status record per upload, download,
mutable publish/retrieve or directory operation, for `/status` and the
welcome page.

The JSON of a record carries the keys of Tahoe-LAFS 1.20's `/status?t=json`
items ("type", "storage-index-string", "total-size", "status", and
"progress-hash"/"progress-ciphertext"/"progress-encode-push" for uploads,
"progress" for downloads) plus shoal's own: "id", "started", "finished",
"active", "bytes-done", "phase", "timings" (seconds), "servers" (names of
the servers used).
"""

import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from shoal.encoding.base32 import b2a

RECENT = 50  # finished operations kept

# Tahoe's /status/<prefix>-N page names; a directory's creation is a mutable publish
LINK_PREFIX = {"upload": "up", "download": "down", "publish": "publish", "mkdir": "publish",
               "retrieve": "retrieve", "mapupdate": "mapupdate"}


@attrs.define
class OperationStatus:
    kind: str  # upload, download, publish, retrieve, mkdir, ...
    id: int
    size: int | None
    storage_index: bytes | None = None
    started: float = attrs.field(factory=time.time)
    finished: float | None = None
    phase: str = "starting"
    status: str = "started"
    bytes_done: int = 0
    progress_of: Callable[[], int] | None = None  # live byte counter while active
    timings: dict[str, float] = attrs.field(factory=dict)
    servers: list[str] = attrs.field(factory=list)
    on_finish: Callable[["OperationStatus"], None] | None = None

    @property
    def active(self) -> bool:
        return self.finished is None

    def done_bytes(self) -> int:
        if self.progress_of is not None and self.active:
            return self.progress_of()
        return self.bytes_done

    def progress(self) -> float:
        if not self.active:
            return 1.0 if self.status == "done" else self.fraction()
        return self.fraction()

    def fraction(self) -> float:
        if not self.size:
            return 0.0 if self.active else 1.0
        return min(1.0, self.done_bytes() / self.size)

    def finish(self, error: BaseException | None = None) -> None:
        if self.finished is not None:
            return
        self.bytes_done = self.done_bytes()
        self.progress_of = None
        self.finished = time.time()
        self.timings.setdefault("total", self.finished - self.started)
        self.status = "done" if error is None else f"failed: {type(error).__name__}: {error}"
        self.phase = "finished" if error is None else "failed"
        if self.on_finish is not None:
            self.on_finish(self)

    @property
    def link(self) -> str:
        """Its page under /status/, named as Tahoe names them: up-N, down-N, publish-N, ..."""
        return f"{LINK_PREFIX.get(self.kind, self.kind)}-{self.id}"

    def view(self) -> dict[str, Any]:
        """What the HTML pages show of it (every key present, for the templates)."""
        return {"kind": self.kind, "id": self.id, "link": self.link, "size": self.size,
                "progress": self.progress(), "status": self.status, "phase": self.phase,
                "started": self.started, "finished": self.finished, "active": self.active,
                "took": self.timings.get("total"), "timings": dict(self.timings), "servers": list(self.servers),
                "si": b2a(self.storage_index) if self.storage_index else None}

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "type": self.kind,
            "storage-index-string": b2a(self.storage_index) if self.storage_index else None,
            "total-size": self.size,
            "status": self.status,
        }
        p = self.progress()
        if self.kind == "upload":
            # Tahoe's three upload phases; shoal hashes while receiving, then encodes and pushes
            hashed = 1.0 if self.phase not in ("starting", "receiving") else p
            item["progress-hash"] = hashed
            item["progress-ciphertext"] = p if self.phase == "pushing" or not self.active else 0.0
            item["progress-encode-push"] = item["progress-ciphertext"]
        else:
            item["progress"] = p
        item.update({
            "id": self.id, "started": self.started, "finished": self.finished, "active": self.active,
            "bytes-done": self.done_bytes(), "phase": self.phase, "timings": dict(self.timings),
            "servers": list(self.servers),
        })
        return item


class History:
    """Active operations and the last RECENT finished ones."""

    def __init__(self, keep: int = RECENT) -> None:
        self._ids = itertools.count(1)
        self._active: dict[int, OperationStatus] = {}
        self._recent: deque[OperationStatus] = deque(maxlen=keep)

    def start(self, kind: str, size: int | None, storage_index: bytes | None = None) -> OperationStatus:
        op = OperationStatus(kind, next(self._ids), size, storage_index, on_finish=self._finished)
        self._active[op.id] = op
        return op

    def _finished(self, op: OperationStatus) -> None:
        self._active.pop(op.id, None)
        self._recent.appendleft(op)

    def active(self) -> list[OperationStatus]:
        return sorted(self._active.values(), key=lambda op: op.id, reverse=True)

    def recent(self) -> list[OperationStatus]:
        return list(self._recent)

    def as_json(self) -> dict[str, Any]:
        return {"active": [op.as_json() for op in self.active()], "recent": [op.as_json() for op in self.recent()]}
