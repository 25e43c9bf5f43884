"""The resumable share-tree walk and the slice driver (storage.walk) on a real directory tree.

Share files here are empty: the walk only reads names. The drivers' own
work (leases, hashes) is tested in test_storage_crawler and test_scrubber.
"""

import asyncio
import json
import os
import shutil
import tempfile
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.encoding import base32
from shoal.storage import StorageServer
from shoal.storage import layout as layout_module
from shoal.storage.layout import ALL_PREFIXES, StorageLayout
from shoal.storage.walk import (
    Bucket,
    Offload,
    Position,
    PrefixDone,
    Share,
    ShareTree,
    SlicedWalk,
    run_now,
)
from tests.storage_suite.harness import NODEID, FakeClock

# storage indexes crowded into three prefix directories, so buckets share prefixes
SIS = [bytes([first]) + bytes([n]) * 15 for first in (0, 1, 200) for n in range(4)]
shares_sets = st.sets(st.tuples(st.sampled_from(SIS), st.integers(0, 5)), max_size=20)


def put(store: StorageLayout, si: bytes, shnum: int) -> None:
    os.makedirs(store.bucket_dir(si), exist_ok=True)
    open(store.share_path(si, shnum), "wb").close()


def remove(store: StorageLayout, si: bytes, shnum: int) -> None:
    os.unlink(store.share_path(si, shnum))
    layout_module.remove_empty_dir(store.bucket_dir(si))


def name(si: bytes) -> str:
    return base32.b2a(si)


def prefix_of(si: bytes) -> int:
    return ALL_PREFIXES.index(name(si)[:2])


def expected_steps(shares: set[tuple[bytes, int]], by_share: bool) -> list[Any]:
    out: list[Any] = []
    for prefix in range(len(ALL_PREFIXES)):
        here = sorted((name(si), sh) for si, sh in shares if prefix_of(si) == prefix)
        if by_share:
            out += [Share(prefix, bucket, sh) for bucket, sh in here]
        else:
            out += [Bucket(prefix, bucket) for bucket in sorted({bucket for bucket, _ in here})]
        out.append(PrefixDone(prefix))
    return out


def fresh_store() -> StorageLayout:
    store = StorageLayout(os.path.join(tempfile.mkdtemp(prefix="walk-"), "storage"))
    store.prepare()
    return store


@settings(max_examples=30)
@given(shares=shares_sets, by_share=st.booleans())
def test_resuming_after_any_step_takes_every_remaining_step_once(shares, by_share):
    store = fresh_store()
    try:
        for si, shnum in shares:
            put(store, si, shnum)
        steps = list(ShareTree(store).walk(Position(), by_share=by_share))
        assert steps == expected_steps(shares, by_share)
        busy = {prefix_of(si) for si, _ in shares} | {0, 1, len(ALL_PREFIXES) - 1}
        for k, step in enumerate(steps):
            if isinstance(step, PrefixDone) and not ({step.prefix, step.prefix + 1} & busy):
                continue  # between two empty prefixes: like its neighbours (and slow to repeat)
            # a restart: a new tree (no cached listing) from the position saved after step k
            assert list(ShareTree(store).walk(step.after, by_share=by_share)) == steps[k + 1 :]
    finally:
        shutil.rmtree(os.path.dirname(store.root))


@settings(max_examples=40)
@given(start=shares_sets, data=st.data())
def test_shares_added_and_removed_during_a_walk(start, data):
    """Each share is visited at most once a cycle, every share present for the whole
    cycle is visited, in walk order, and a share removed before the walk reaches it
    is not a step."""
    store = fresh_store()
    try:
        present = set(start)
        for si, shnum in present:
            put(store, si, shnum)
        always = set(present)
        visited: list[tuple[str, int]] = []
        position = Position()
        steps = ShareTree(store).walk(position, by_share=True)
        while (step := next(steps, None)) is not None:
            position = step.after
            if not isinstance(step, Share):
                continue
            assert os.path.exists(store.share_path(base32.a2b(step.bucket), step.shnum))
            key = (step.bucket, step.shnum)
            assert key not in visited
            visited.append(key)
            action = data.draw(st.sampled_from(["step", "add", "remove", "restart"]))
            if action == "add":
                new = data.draw(st.tuples(st.sampled_from(SIS), st.integers(0, 5)))
                if new not in present:
                    put(store, *new)
                    present.add(new)
            elif action == "remove" and present:
                gone = data.draw(st.sampled_from(sorted(present)))
                remove(store, *gone)
                present.discard(gone)
                always.discard(gone)
            elif action == "restart":  # a new tree, from the position saved after this step
                steps = ShareTree(store).walk(position, by_share=True)
        assert {(name(si), sh) for si, sh in always} <= set(visited)
        assert visited == sorted(visited, key=lambda v: (ALL_PREFIXES.index(v[0][:2]), v))
    finally:
        shutil.rmtree(os.path.dirname(store.root))


# -- the slice driver ------------------------------------------------------------------


class Tally(SlicedWalk):
    """Counts each share three units of work (visited a unit at a time), keeping every
    completion in its state so restarts can be checked."""

    STATE_FILE = "tally.state.json"
    BY_SHARE = True

    @staticmethod
    def empty_cycle() -> dict[str, Any]:
        return {"done": [], "units": 0}

    @staticmethod
    def initial_state() -> dict[str, Any]:
        return {
            "version": 1, "current-cycle": None, "last-cycle-finished": None,
            "current-cycle-start-time": None, "next-cycle-time": None, "history": {},
            "at": [0, "", 0], "units-into-share": 0, "cycle-to-date": Tally.empty_cycle(),
        }

    def get_position(self) -> Position:
        return Position(*self.state["at"])

    def set_position(self, position: Position) -> None:
        if self.state["at"] != [position.prefix, position.bucket, position.shnum]:
            self.state["units-into-share"] = 0
        self.state["at"] = [position.prefix, position.bucket, position.shnum]

    async def visit(self, step: Bucket | Share, budget: int, offload: Offload) -> tuple[int, bool]:
        assert isinstance(step, Share)
        self.set_position(Position(step.prefix, step.bucket, step.shnum))
        self.threads.append(await offload(threading.get_ident))
        self.state["units-into-share"] += 1
        self.state["cycle-to-date"]["units"] += 1
        if self.state["units-into-share"] < 3:
            return 1, False
        self.state["cycle-to-date"]["done"].append([step.bucket, step.shnum])
        return 1, True

    threads: list[int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.threads = []
        super().__init__(*args, **kwargs)


@settings(max_examples=25)
@given(shares=shares_sets, budgets=st.lists(st.integers(1, 7), min_size=1, max_size=8))
def test_slices_with_restarts_complete_each_share_once(shares, budgets):
    root = tempfile.mkdtemp(prefix="walk-")
    try:
        storage_dir = os.path.join(root, "storage")
        clock = FakeClock()
        server = StorageServer(storage_dir, NODEID, clock=clock)
        for si, shnum in shares:
            put(server.layout, si, shnum)
        slices, more = 0, True
        while more:
            tally = Tally(server, state_path=None, minimum_cycle_time=3600.0)  # a restart every slice
            more = run_now(tally.slice(60.0, budget=budgets[slices % len(budgets)]))
            slices += 1
            assert slices < 10_000
        record = Tally(server, state_path=None, minimum_cycle_time=3600.0).state["history"]["0"]
        expected = sorted((name(si), sh) for si, sh in shares)
        assert sorted(map(tuple, record["done"])) == expected
        assert len(record["done"]) == len(expected)
        assert record["units"] == 3 * len(expected)
        # between cycles: nothing to do until the minimum cycle time has passed
        assert run_now(tally.slice(60.0)) is False
        clock.advance(3601)
        assert run_now(tally.slice(60.0, budget=10**6)) is False
        assert sorted(map(tuple, tally.state["history"]["1"]["done"])) == expected
    finally:
        shutil.rmtree(root)


def test_a_slice_stops_on_time_after_at_least_one_step(make_server):
    """With a clock that passes the deadline at every look, each slice takes exactly one
    step: an empty prefix directory, or one unit of a share."""
    server = make_server()
    for si in SIS[:2]:
        put(server.layout, si, 0)
    ticks = iter(range(10_000))
    tally = Tally(server, state_path=None, minimum_cycle_time=3600.0, monotonic=lambda: next(ticks))
    first = prefix_of(SIS[0])  # ALL_PREFIXES is sorted: "22" ... "77", then "aa"
    for n in range(first):
        assert run_now(tally.slice(0.5)) is True
        assert tally.state["at"] == [n + 1, "", 0]
    for units in range(1, 7):
        assert run_now(tally.slice(0.5)) is True
        assert tally.state["cycle-to-date"]["units"] == units
    assert len(tally.state["cycle-to-date"]["done"]) == 2


def test_the_state_survives_a_kill_while_it_is_written(make_server, monkeypatch):
    server = make_server()
    for si in SIS[:6]:
        put(server.layout, si, 0)
    tally = Tally(server, state_path=None, minimum_cycle_time=3600.0)
    assert run_now(tally.slice(60.0, budget=4))
    saved = open(tally.state_path, "rb").read()

    class Killed(BaseException):
        pass

    def die_halfway(handle: Any) -> None:
        handle.flush()
        handle.truncate(handle.tell() // 2)  # the temporary file is torn, then the process dies
        raise Killed

    monkeypatch.setattr(layout_module, "fsync_file", die_halfway)
    with pytest.raises(Killed):
        run_now(tally.slice(60.0, budget=4))
    monkeypatch.undo()
    assert open(tally.state_path, "rb").read() == saved  # the old state, whole
    assert os.listdir(server.layout.tmp_dir) == []
    restarted = Tally(server, state_path=None, minimum_cycle_time=3600.0)
    assert restarted.state == json.loads(saved)
    while run_now(restarted.slice(60.0, budget=4)):
        pass
    assert sorted(map(tuple, restarted.state["history"]["0"]["done"])) == sorted((name(si), 0) for si in SIS[:6])


def test_run_now_refuses_a_coroutine_that_waits():
    async def waits() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="waited"):
        run_now(waits())


def test_the_offload_runs_the_work_off_the_driving_thread(make_server):
    """With a thread offload the driver keeps the books on its own thread; the answers
    are the same as on one thread."""
    server = make_server()
    for si in SIS[:3]:
        put(server.layout, si, 1)
    tally = Tally(server, state_path=None, minimum_cycle_time=3600.0)

    async def in_thread(fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def cycle() -> None:
        while await tally.slice(60.0, budget=2, offload=in_thread):
            pass

    asyncio.run(cycle())
    assert tally.threads and threading.get_ident() not in tally.threads
    assert len(tally.state["history"]["0"]["done"]) == 3
