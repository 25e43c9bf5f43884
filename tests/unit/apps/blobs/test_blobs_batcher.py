"""The group commit of directory edits (shoal.apps.blobs.store.DirectoryBatcher):
edits that arrive while a publish runs go out together in the next one, each
caller answers only once its own publish is done (or failed), one caller's
entries are never split, and a publish stays within the entry and byte bounds."""

from typing import Any

from twisted.internet import defer

from shoal.apps.blobs import store
from shoal.apps.blobs.errors import BlobStoreError
from shoal.apps.blobs.store import DirectoryBatcher


class _Cap:
    def to_string(self) -> str:
        return "URI:DIR2:fake"


class HeldNode:
    """A directory whose publishes end only when the test says so."""

    cap = _Cap()

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.pending: list[defer.Deferred[None]] = []

    def set_children(self, entries: dict[str, Any], overwrite: bool = True) -> defer.Deferred[None]:
        assert overwrite
        self.published.append(dict(entries))
        d: defer.Deferred[None] = defer.Deferred()
        self.pending.append(d)
        return d

    def finish(self, error: Exception | None = None) -> None:
        d = self.pending.pop(0)
        d.errback(error) if error else d.callback(None)


def spec(n: int, pad: int = 0) -> tuple[str, None, dict[str, Any]]:
    return (f"URI:LIT:{'a' * pad}", None, {"blob": {"size": n}})


def link(batcher: DirectoryBatcher, entries: dict[str, Any]) -> list[Any]:
    outcome: list[Any] = []
    d = defer.ensureDeferred(batcher.link(entries))
    d.addCallbacks(lambda _: outcome.append("done"), lambda f: outcome.append(f.value))
    return outcome


def test_edits_during_a_publish_join_the_next_and_answer_after_it():
    node = HeldNode()
    b = DirectoryBatcher(node)  # type: ignore[arg-type]
    first = link(b, {"a": spec(1)})
    later = [link(b, {name: spec(2)}) for name in ("b", "c", "a")]
    assert node.published == [{"a": spec(1)}] and first == []
    node.finish()
    assert first == ["done"] and all(o == [] for o in later)  # not answered before their own publish
    assert node.published[1] == {"b": spec(2), "c": spec(2), "a": spec(2)}  # the latest edit of a name wins
    node.finish()
    assert all(o == ["done"] for o in later) and b.writes == 2 and not node.pending


def test_a_failed_publish_fails_only_its_own_callers():
    node = HeldNode()
    b = DirectoryBatcher(node)  # type: ignore[arg-type]
    first = link(b, {"a": spec(1)})
    second = link(b, {"b": spec(1)})
    node.finish(RuntimeError("grid gone"))
    assert len(first) == 1 and isinstance(first[0], BlobStoreError) and "URI:DIR2:fake" not in str(first[0])
    assert second == []
    node.finish()
    assert second == ["done"]


def test_a_publish_is_bounded_by_entries_and_bytes_without_splitting_a_caller(monkeypatch):
    monkeypatch.setattr(store, "BATCH_ENTRIES", 3)
    node = HeldNode()
    b = DirectoryBatcher(node)  # type: ignore[arg-type]
    link(b, {"first": spec(0)})
    big = link(b, {f"s{i}": spec(i) for i in range(5)})  # more than the bound: goes whole, alone
    small = [link(b, {f"x{i}": spec(i)}) for i in range(4)]
    node.finish()
    assert sorted(node.published[1]) == [f"s{i}" for i in range(5)]
    node.finish()
    assert big == ["done"] and sorted(node.published[2]) == ["x0", "x1", "x2"]
    node.finish()
    assert [o for o in small] == [["done"]] * 3 + [[]]
    assert sorted(node.published[3]) == ["x3"]
    node.finish()

    monkeypatch.setattr(store, "BATCH_ENTRIES", 1000)
    monkeypatch.setattr(store, "BATCH_BYTES", 2500)
    link(b, {"hold": spec(0)})
    for i in range(4):
        link(b, {f"y{i}": spec(i, pad=1000)})
    node.finish()
    assert sorted(node.published[-1]) == ["y0", "y1"]  # about 1,050 bytes each: two fit in 2,500
    node.finish()
    assert sorted(node.published[-1]) == ["y2", "y3"]
    node.finish()
    assert not node.pending


def test_edits_made_in_one_turn_share_the_first_publish():
    node = HeldNode()
    turns: list[Any] = []
    b = DirectoryBatcher(node, soon=turns.append)  # type: ignore[arg-type]
    outcomes = [link(b, {name: spec(1)}) for name in ("a", "b", "c")]  # e.g. the blobs of one pack
    assert node.published == [] and len(turns) == 1  # nothing until the turn ends
    turns.pop()()
    assert node.published == [{"a": spec(1), "b": spec(1), "c": spec(1)}]
    node.finish()
    assert outcomes == [["done"]] * 3 and b.writes == 1
    later = link(b, {"d": spec(1)})
    assert len(turns) == 1
    turns.pop()()
    node.finish()
    assert later == ["done"] and b.writes == 2
