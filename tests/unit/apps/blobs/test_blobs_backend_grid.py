"""The grid blob backend on real storage servers in process (LocalGrid):
Soledad's IBlobsBackend methods, the record kept in per-user directories (a
new backend with an empty index and the same root rebuilds everything, and so
does one whose index was not closed cleanly), group commit of directory
writes, create-only and quota checks under concurrency, all-or-nothing
stream uploads."""

import io
import os

import pytest
from twisted.internet import defer
from twisted.web.client import FileBodyProducer
from zope.interface.verify import verifyObject

from shoal.apps.blobs import backend as backend_module
from shoal.apps.blobs.backend import GridBlobsBackend
from shoal.apps.blobs.errors import (
    BlobExists,
    BlobNotFound,
    InvalidFlag,
    NamespaceFull,
    ObjectQuotaExceeded,
    QuotaExceeded,
    TooManyNamespaces,
)
from shoal.apps.blobs.interfaces import IBlobsBackend
from shoal.apps.blobs.rules import tag_of
from shoal.apps.blobs.store import RootDirectory, shard_of


def run(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


def new_backend(maker, tmp_path, name, root_cap=None, quota=10**9):
    root = RootDirectory(maker, root_cap, str(tmp_path / f"{name}.rootcap"))
    return GridBlobsBackend(maker.files, maker, root=root, index_path=str(tmp_path / f"{name}.sqlite"), quota=quota)


class Collector:
    """A Twisted consumer that keeps what it is given."""

    def __init__(self):
        self.data = b""
        self.producer = None

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None

    def write(self, data):
        self.data += data


def test_backend_provides_soledads_iblobsbackend(maker, tmp_path):
    b = new_backend(maker, tmp_path, "iface")
    assert IBlobsBackend.providedBy(b)
    assert verifyObject(IBlobsBackend, b)
    assert sorted(IBlobsBackend.names()) == sorted(
        ["read_blob", "write_blob", "delete_blob", "get_blob_size", "count", "list_blobs", "get_total_storage",
         "get_tag", "get_flags", "set_flags"])
    b.close()


def test_iblobsbackend_methods(grid, maker, tmp_path):
    b = new_backend(maker, tmp_path, "api")
    blob = os.urandom(5000)

    async def go():
        await b.write_blob("alice", "one", FileBodyProducer(io.BytesIO(blob)), namespace="")
        with pytest.raises(BlobExists):
            await b.write_blob("alice", "one", FileBodyProducer(io.BytesIO(b"again")))
        await b.write_blob("alice", "tiny", FileBodyProducer(io.BytesIO(b"abc")), namespace="other")
        assert await b.get_blob_size("alice", "one") == 5000
        assert await b.get_tag("alice", "one") == tag_of(blob)
        assert await b.get_tag("alice", "tiny", "other") == tag_of(b"abc")
        whole, part = Collector(), Collector()
        await b.read_blob("alice", "one", whole)
        await b.read_blob("alice", "one", part, range=(100, 250))
        assert whole.data == blob and part.data == blob[100:250] and whole.producer is None
        assert await b.count("alice") == 1 and await b.count("alice", "other") == 1
        assert await b.get_total_storage("alice") == 5  # 5003 bytes, in 1024-byte units rounded up
        assert await b.usage("alice") == 5003
        assert await b.get_flags("alice", "one") == []
        await b.set_flags("alice", "one", ["PROCESSING"])
        assert await b.get_flags("alice", "one") == ["PROCESSING"]
        with pytest.raises(InvalidFlag):
            await b.set_flags("alice", "one", ["NOPE"])
        assert await b.list_blobs("alice", filter_flag="PROCESSING") == ["one"]
        await b.delete_blob("alice", "one")
        for call in (b.delete_blob("alice", "one"), b.get_flags("alice", "one"), b.get_blob_size("alice", "one"),
                     b.read_blob("alice", "one", Collector())):
            with pytest.raises(BlobNotFound):
                await call
        assert await b.list_blobs("alice", deleted=True) == ["one"]
        assert await b.count("alice") == 0 and await b.get_total_storage("alice") == 1
        await b.write_blob("alice", "one", FileBodyProducer(io.BytesIO(b"reborn")))  # after a delete: allowed
        assert await b.list_blobs("alice", deleted=True) == []

    run(grid, go)
    grid.call(b.close)


def test_rebuild_from_the_grid_with_an_empty_index(grid, maker, tmp_path):
    clock = iter(range(1000, 2000))
    a = new_backend(maker, tmp_path, "a")
    a._clock = lambda: float(next(clock))
    blobs = {f"b{i}": os.urandom(100 + 37 * i) for i in range(6)}

    async def fill():
        for blob_id, data in blobs.items():
            await a.store("alice", blob_id, io.BytesIO(data), len(data))
        await a.store("alice", "mail", io.BytesIO(b"x" * 70), 70, namespace="MX")
        await a.store("bob", "b0", io.BytesIO(b"bob's"), 5)
        await a.set_flags_of("alice", "b2", ["PENDING", "FAILED"])
        await a.delete("alice", "b4")

    run(grid, fill)
    grid.call(a.close)
    root_cap = open(tmp_path / "a.rootcap").read().strip()
    b = new_backend(maker, tmp_path, "b", root_cap=root_cap)

    async def check():
        assert await b.listing("alice", order_by="-date") == ["b5", "b3", "b2", "b1", "b0"]
        assert await b.listing("alice", deleted=True) == ["b4"]
        assert await b.listing("alice", filter_flag="FAILED") == ["b2"]
        assert await b.listing("alice", namespace="MX") == ["mail"]
        assert await b.listing("bob") == ["b0"]
        assert await b.usage("alice") == sum(len(d) for k, d in blobs.items() if k != "b4") + 70
        for blob_id, data in blobs.items():
            if blob_id != "b4":
                row = await b.row("alice", blob_id)
                assert await b.fetch(row) == data and row.tag == tag_of(data)
        assert list((await b.row("alice", "b2")).flags) == ["PENDING", "FAILED"]

    run(grid, check)
    grid.call(b.close)


def test_unclean_index_is_rebuilt(grid, maker, tmp_path):
    a = new_backend(maker, tmp_path, "crash")
    run(grid, a.store, "carol", "x", io.BytesIO(b"1" * 100), 100)
    index = a._index
    # another writer on the same root (as if this gateway crashed after the grid
    # write but before its index write)
    other = new_backend(maker, tmp_path, "other", root_cap=open(tmp_path / "crash.rootcap").read().strip())
    run(grid, other.store, "carol", "y", io.BytesIO(b"2" * 100), 100)
    grid.call(other.close)
    grid.call(index._db.close)  # never marked clean
    again = new_backend(maker, tmp_path, "crash")
    assert run(grid, again.listing, "carol") == ["x", "y"]
    grid.call(again.close)


def same_shard_ids(like: str, count: int) -> list[str]:
    """`count` ids whose entries live in the same shard directory as `like`'s."""
    ids = (f"c{n}" for n in range(100_000))
    return [i for i in ids if shard_of(i) == shard_of(like)][:count]


def test_group_commit_and_quota_under_concurrency(grid, maker, tmp_path):
    b = new_backend(maker, tmp_path, "q", quota=10_000)
    run(grid, b.store, "dave", "first", io.BytesIO(b"f" * 1000), 1000)  # make the directories
    writes_before = sum(x.writes for x in b._batchers.values())
    ids = same_shard_ids("first", 20)  # one shard: concurrent edits of it are batched

    async def many():
        results = await defer.DeferredList(
            [defer.ensureDeferred(b.store("dave", ids[i], io.BytesIO(bytes([i]) * 1000), 1000)) for i in range(20)],
            consumeErrors=True)
        return [r if ok else r.value for ok, r in results]

    results = run(grid, many)
    stored = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(stored) == 9 and len(refused) == 11  # 1000 used + 9 x 1000 = the quota, never more
    writes = sum(x.writes for x in b._batchers.values()) - writes_before
    assert writes < 9  # batched: fewer publishes than blobs
    assert run(grid, b.usage, "dave") == 10_000
    grid.call(b.close)
    rebuilt = new_backend(maker, tmp_path, "q2", root_cap=open(tmp_path / "q.rootcap").read().strip())
    assert sorted(run(grid, rebuilt.listing, "dave")) == sorted(["first", *(r.blob_id for r in stored)])
    grid.call(rebuilt.close)


def test_stream_upload_is_all_or_nothing(grid, maker, tmp_path):
    b = new_backend(maker, tmp_path, "s", quota=5000)
    run(grid, b.store, "erin", "exists", io.BytesIO(b"e" * 100), 100)
    body = b"a" * 100 + b"b" * 100
    with pytest.raises(BlobExists):
        run(grid, b.store_many, "erin", [("new1", 100), ("exists", 100)], io.BytesIO(body))
    with pytest.raises(QuotaExceeded):
        run(grid, b.store_many, "erin", [("new1", 4000), ("new2", 1000)], io.BytesIO(b"z" * 5000))
    assert run(grid, b.listing, "erin") == ["exists"]
    rows = run(grid, b.store_many, "erin", [("new1", 100), ("new2", 100)], io.BytesIO(body))
    assert [r.blob_id for r in rows] == ["new1", "new2"]
    assert run(grid, b.fetch, rows[1]) == b"b" * 100
    assert run(grid, b.listing, "erin") == ["exists", "new1", "new2"]
    grid.call(b.close)


class PausingConsumer(Collector):
    """Pauses its producer after every write and resumes it a little later; records
    any write that arrives while paused."""

    def __init__(self):
        super().__init__()
        self.paused = False
        self.writes_while_paused = 0
        self.pauses = 0

    def write(self, data):
        from twisted.internet import reactor

        if self.paused:
            self.writes_while_paused += 1
        super().write(data)
        self.paused = True
        self.pauses += 1
        self.producer.pauseProducing()
        reactor.callLater(0.001, self._resume)

    def _resume(self):
        self.paused = False
        if self.producer is not None:
            self.producer.resumeProducing()


def test_reads_honour_a_consumers_pauses(grid, maker, tmp_path):
    b = new_backend(maker, tmp_path, "pause")
    blob = os.urandom(1_500_000)  # several segments, so several writes
    run(grid, b.store, "frank", "big", io.BytesIO(blob), len(blob))
    consumer = PausingConsumer()
    run(grid, b.read_blob, "frank", "big", consumer)
    assert consumer.data == blob and consumer.pauses > 1 and consumer.writes_while_paused == 0
    grid.call(b.close)


class HangingUpConsumer(Collector):
    """Pauses after the first write, then the client goes away (the channel calls
    stopProducing and drops its producer itself)."""

    def __init__(self):
        super().__init__()
        self.writes = 0
        self.unregistered = False

    def unregisterProducer(self):
        self.unregistered = True
        super().unregisterProducer()

    def write(self, data):
        from twisted.internet import reactor

        super().write(data)
        self.writes += 1
        if self.writes == 1:
            self.producer.pauseProducing()
            reactor.callLater(0.001, self.producer.stopProducing)


def test_a_read_stops_when_the_client_goes_away(grid, maker, tmp_path):
    from shoal.streaming import ClientGoneError

    b = new_backend(maker, tmp_path, "gone")
    blob = os.urandom(1_500_000)  # several segments: the download would write several times
    run(grid, b.store, "gina", "big", io.BytesIO(blob), len(blob))
    consumer = HangingUpConsumer()
    with pytest.raises(ClientGoneError):
        run(grid, b.read_blob, "gina", "big", consumer)
    assert consumer.writes == 1 and len(consumer.data) < len(blob) and not consumer.unregistered
    grid.call(b.close)


# --- issue #4: limits on objects, namespace entries and namespaces ------------------------


def test_zero_byte_blobs_count_against_the_object_quota(grid, maker, tmp_path):
    """The bypass: many [id, 0] entries were charged 0 bytes and grew the directory."""
    b = new_backend(maker, tmp_path, "objects")
    b.max_objects = 5
    run(grid, b.store_many, "fay", [(f"a{i}", 0) for i in range(3)], io.BytesIO(b""))
    with pytest.raises(ObjectQuotaExceeded) as caught:
        run(grid, b.store_many, "fay", [(f"b{i}", 0) for i in range(3)], io.BytesIO(b""))
    assert caught.value.status == 507 and "3 of 5 blobs" in str(caught.value)
    with pytest.raises(ObjectQuotaExceeded):  # in another namespace too: the limit is per user
        run(grid, b.store_many, "fay", [(f"c{i}", 0) for i in range(3)], io.BytesIO(b""), namespace="MX")
    assert run(grid, b.listing, "fay") == ["a0", "a1", "a2"]  # refused before any work
    run(grid, b.store, "fay", "b0", io.BytesIO(b""), 0)
    run(grid, b.delete, "fay", "a0")  # deleting frees an object
    run(grid, b.store_many, "fay", [("b1", 0), ("b2", 0)], io.BytesIO(b""))  # 5 of 5
    with pytest.raises(ObjectQuotaExceeded):
        run(grid, b.store, "fay", "b3", io.BytesIO(b""), 0)
    grid.call(b.close)


def test_concurrent_uploads_cannot_pass_the_object_quota_together(grid, maker, tmp_path):
    b = new_backend(maker, tmp_path, "objects2")
    b.max_objects = 4

    def race():
        ds = [defer.ensureDeferred(b.store("gus", f"x{i}", io.BytesIO(b"q" * 100), 100)) for i in range(8)]
        return defer.DeferredList(ds, consumeErrors=True)

    outcomes = grid.call(race)
    assert sum(ok for ok, _ in outcomes) == 4
    assert all(f.check(ObjectQuotaExceeded) for ok, f in outcomes if not ok)
    grid.call(b.close)


def test_a_namespace_directory_has_an_entry_limit_counting_tombstones(grid, maker, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_module, "MAX_NAMESPACE_ENTRIES", 4)
    b = new_backend(maker, tmp_path, "entries")
    run(grid, b.store_many, "hal", [(f"n{i}", 1) for i in range(4)], io.BytesIO(b"abcd"))
    run(grid, b.delete, "hal", "n0")  # a tombstone is still an entry of the directory
    with pytest.raises(NamespaceFull) as caught:
        run(grid, b.store, "hal", "n4", io.BytesIO(b"e"), 1)
    assert caught.value.status == 507
    run(grid, b.store, "hal", "n0", io.BytesIO(b"again"), 5)  # re-creating a deleted id reuses its entry
    run(grid, b.store, "hal", "other", io.BytesIO(b"e"), 1, namespace="MX")  # the limit is per namespace
    grid.call(b.close)


def test_namespaces_per_user_are_limited(grid, maker, tmp_path, monkeypatch):
    monkeypatch.setattr(backend_module, "MAX_NAMESPACES", 2)
    b = new_backend(maker, tmp_path, "namespaces")
    run(grid, b.store, "ivy", "a", io.BytesIO(b"a"), 1, namespace="one")
    run(grid, b.store, "ivy", "a", io.BytesIO(b"a"), 1, namespace="two")
    with pytest.raises(TooManyNamespaces):
        run(grid, b.store, "ivy", "a", io.BytesIO(b"a"), 1, namespace="three")
    run(grid, b.store, "ivy", "b", io.BytesIO(b"b"), 1, namespace="two")
    grid.call(b.close)
