"""PutQueue: small PUTs that arrive while an upload is in flight go together.
Pure logic over Deferreds the test fires itself (no reactor)."""

import io
import os

from twisted.internet import defer

from shoal.apps.blobs.index import BlobRow
from shoal.apps.blobs.putqueue import PutQueue
from tests.unit.apps.blobs.test_blobs_backend_grid import new_backend, run


class FakeGrid:
    def __init__(self):
        self.calls: list[tuple[list[str], defer.Deferred]] = []

    def upload(self, items):
        d = defer.Deferred()
        self.calls.append(([blob_id for blob_id, _ in items], d))
        return d

    def finish(self, n, fail=False):
        ids, d = self.calls[n]
        if fail:
            d.errback(OSError("the grid is away"))
        else:
            d.callback([BlobRow("u", "ns", i, f"cap{n}", 1, "t", (), 0.0, None, k) for k, i in enumerate(ids)])


def start(queue, blob_id, data=b"x" * 100):
    return defer.ensureDeferred(queue.add(blob_id, data))


def test_puts_that_wait_go_together_and_each_gets_its_own_row():
    grid, idle = FakeGrid(), []
    queue = PutQueue(grid.upload, on_idle=lambda: idle.append(True))
    first = start(queue, "a")
    assert [ids for ids, _ in grid.calls] == [["a"]]  # nothing in flight: at once, alone
    waiting = [start(queue, b) for b in ("b", "c", "d")]
    assert len(grid.calls) == 1  # they wait for the upload in flight
    grid.finish(0)
    assert first.result.blob_id == "a"
    assert [ids for ids, _ in grid.calls] == [["a"], ["b", "c", "d"]]
    assert not idle
    grid.finish(1)
    rows = [d.result for d in waiting]
    assert [(r.blob_id, r.cap, r.offset) for r in rows] == [("b", "cap1", 0), ("c", "cap1", 1), ("d", "cap1", 2)]
    assert idle == [True] and queue.idle and queue.uploads == 2


def test_a_pack_stops_at_its_size_bound():
    grid = FakeGrid()
    queue = PutQueue(grid.upload, pack_bytes=250)
    start(queue, "a")
    later = [start(queue, b) for b in "bcdef"]
    grid.finish(0)
    grid.finish(1)
    grid.finish(2)
    assert [ids for ids, _ in grid.calls] == [["a"], ["b", "c"], ["d", "e"], ["f"]]
    grid.finish(3)
    assert all(d.called for d in later)


def test_a_failed_upload_fails_its_own_batch_only():
    grid = FakeGrid()
    queue = PutQueue(grid.upload)
    first = start(queue, "a")
    second = start(queue, "b")
    errors = []
    first.addErrback(errors.append)
    grid.finish(0, fail=True)
    assert len(errors) == 1 and errors[0].check(OSError)
    assert not second.called  # its own upload is still to come
    grid.finish(1)
    assert second.result.blob_id == "b"


def test_concurrent_small_puts_share_packs_on_the_grid(grid, maker, tmp_path):
    b = new_backend(maker, tmp_path, "putq")
    blobs = {f"q{i}": os.urandom(2000 + i) for i in range(12)}

    async def many():
        return await defer.gatherResults([defer.ensureDeferred(b.store("ivy", i, io.BytesIO(d), len(d)))
                                          for i, d in blobs.items()])

    rows = run(grid, many)
    assert len({r.cap for r in rows}) < len(rows)  # packed: fewer files than blobs
    assert not b._put_queues  # idle queues are dropped
    for row in rows:
        assert run(grid, b.fetch, row) == blobs[row.blob_id]
    grid.call(b.close)
    again = new_backend(maker, tmp_path, "putq2", root_cap=open(tmp_path / "putq.rootcap").read().strip())

    async def check():
        for blob_id, data in blobs.items():
            assert await again.fetch(await again.row("ivy", blob_id)) == data

    run(grid, check)
    grid.call(again.close)
