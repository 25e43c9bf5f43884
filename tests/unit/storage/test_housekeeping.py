"""The housekeeping shell: ticks drive the crawler and the scrubber, their work in the CPU pool."""

import threading
from typing import Any

from twisted.internet import defer, task

from shoal import cpu
from shoal.formats import immutable_container as ic
from shoal.storage.housekeeping import Housekeeping
from shoal.storage.walk import run_here
from shoal.testing import reactor_thread
from tests.unit.storage.test_quarantine import LAYOUT, encoded, flip, quarantined, store


def test_ticks_run_both_walks_with_their_work_offloaded(server):
    shares, si = encoded(60_000, 3_000)
    store(server, si, dict(enumerate(shares)))
    flip(server.layout.share_path(si, 4), ic.DATA_OFFSET + LAYOUT.data + 3)
    offloaded: list[str] = []

    async def recording(fn: Any, *args: Any) -> Any:
        offloaded.append(fn.__name__)
        return await run_here(fn, *args)

    clock = task.Clock()
    keeping = Housekeeping(server, offload=recording, clock=clock, interval=1.0, slice_seconds=60.0)
    server.scrubber.bytes_per_slice = 10_000
    keeping.start()
    assert keeping.running
    for _ in range(1000):
        if server.scrubber.status()["last-cycle-finished"] == 0:
            break
        clock.advance(1.0)
    assert server.crawler.status()["last-cycle-finished"] == 0
    record = server.scrubber.status()["history"]["0"]
    assert record["shares-examined"] == 10 and record["shares-quarantined"] == 1
    assert len(quarantined(server)) == 1
    assert set(offloaded) == {"_process_bucket", "_check", "write_file_durably"}  # the state too
    assert offloaded.count("_process_bucket") == 1
    assert offloaded.count("_check") > 10  # slices of 10 kB: each share took several
    stopped = keeping.stop()
    assert stopped.called and not keeping.running


def test_stop_waits_for_a_slice_in_flight(server):
    shares, si = encoded(5_000, 999)
    store(server, si, {0: shares[0]})
    gate: defer.Deferred[None] = defer.Deferred()

    async def held(fn: Any, *args: Any) -> Any:
        await gate
        return fn(*args)

    clock = task.Clock()
    keeping = Housekeeping(server, offload=held, clock=clock)
    keeping.start()
    clock.advance(1.0)  # the crawler's first bucket waits at the gate
    stopped = keeping.stop()
    assert not stopped.called
    gate.callback(None)
    assert stopped.called
    assert server.crawler.state["cycle-to-date"]["buckets-examined"] == 1


def test_scrubbing_hashes_in_the_cpu_pool_not_on_the_reactor_thread(server):
    shares, si = encoded(60_000, 3_000)
    store(server, si, dict(enumerate(shares)))
    scrubber = server.scrubber
    where: list[str] = []
    check = scrubber._check

    def watched(*args: Any) -> Any:
        where.append(threading.current_thread().name)
        return check(*args)

    scrubber._check = watched  # type: ignore[method-assign]

    async def cycle() -> None:
        while await scrubber.slice(60.0, budget=8_000, offload=cpu.run):
            pass

    reactor_thread.call(lambda: defer.ensureDeferred(cycle()))
    assert where and all("shoal-cpu" in name for name in where)
    assert scrubber.status()["history"]["0"]["shares-good"] == 10
