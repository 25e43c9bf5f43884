"""OwnVersions: the bounded memory of the versions this client published."""

from hypothesis import given
from hypothesis import strategies as st

from shoal.mutable.own_versions import OwnVersions
from shoal.mutable.servermap import ServerMap


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEYS = object()  # the cache never looks inside the keys


def test_an_entry_expires_after_max_age():
    clock = Clock()
    own = OwnVersions(clock, max_age=10)
    own.remember(b"si", b"contents", ServerMap(), KEYS)  # type: ignore[arg-type]
    clock.now += 9
    got = own.get(b"si")
    assert got is not None and got.contents == b"contents"
    clock.now += 2  # 11 s after it was written, whatever get() did meanwhile
    assert own.get(b"si") is None
    assert len(own) == 0


def test_forget_and_replace():
    own = OwnVersions(Clock())
    own.remember(b"si", b"one", ServerMap(), KEYS)  # type: ignore[arg-type]
    own.remember(b"si", b"two", ServerMap(), KEYS)  # type: ignore[arg-type]
    assert own.get(b"si").contents == b"two"  # type: ignore[union-attr]
    own.forget(b"si")
    own.forget(b"never")
    assert own.get(b"si") is None


def test_contents_larger_than_the_budget_are_not_kept():
    own = OwnVersions(Clock(), max_bytes=10)
    own.remember(b"si", b"x" * 11, ServerMap(), KEYS)  # type: ignore[arg-type]
    assert own.get(b"si") is None


@given(st.lists(st.tuples(st.integers(0, 20), st.binary(max_size=40), st.booleans()), max_size=60))
def test_bounds_hold_and_the_newest_survive(ops):
    own = OwnVersions(Clock(), max_entries=5, max_bytes=100)
    model: dict[bytes, bytes] = {}
    for n, data, forget in ops:
        si = b"%d" % n
        if forget:
            own.forget(si)
            model.pop(si, None)
        else:
            own.remember(si, data, ServerMap(), KEYS)  # type: ignore[arg-type]
            model[si] = data
    kept = {si: own.get(si) for si in model}
    live = {si: v.contents for si, v in kept.items() if v is not None}
    assert len(live) <= 5 and sum(map(len, live.values())) <= 100
    assert all(model[si] == data for si, data in live.items())  # never a stale or foreign entry
    if ops and not ops[-1][2] and len(ops[-1][1]) <= 100:
        last = b"%d" % ops[-1][0]
        assert live.get(last) == ops[-1][1]  # the newest entry is always kept
