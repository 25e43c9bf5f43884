"""The I/O threads: answers on the reactor, per-server lanes, cancellation that frees the thread."""

import threading

import pytest
from twisted.internet import defer

from shoal.grid.io_threads import Lane, io_threads
from shoal.testing import reactor_thread


def on_reactor(fn):
    return reactor_thread.call(fn)


def test_answers_and_exceptions_arrive_on_the_reactor():
    pool = io_threads(reactor_thread.reactor)
    seen = []

    def work(flight):
        seen.append(threading.current_thread().name)
        return 42

    assert on_reactor(lambda: pool.run(work)) == 42
    assert seen == ["shoal-io"]

    def boom(flight):
        raise KeyError("x")

    with pytest.raises(KeyError):
        on_reactor(lambda: pool.run(boom))


def test_a_lane_runs_at_most_its_limit_and_cancel_frees_the_slot():
    lane = Lane(io_threads(reactor_thread.reactor), limit=1)
    started = threading.Event()
    released = threading.Event()

    def blocked(flight):
        started.set()
        while not flight.cancelled:  # the InFlight says when the caller gave up
            released.wait(0.01)
        return "late"

    first: list = []
    second: list = []

    def start():
        d1 = lane.run(blocked)
        d1.addErrback(lambda f: first.append(f.type))
        d2 = lane.run(lambda flight: "second")
        d2.addCallback(second.append)
        return d1, d2

    d1, d2 = on_reactor(start)
    assert started.wait(10)
    assert second == []  # waiting behind the first
    on_reactor(d1.cancel)
    on_reactor(lambda: d2)
    assert second == ["second"]
    assert first == [defer.CancelledError]


def test_cancelling_a_waiting_request_never_runs_it():
    lane = Lane(io_threads(reactor_thread.reactor), limit=1)
    gate = threading.Event()
    ran = []

    def start():
        d1 = lane.run(lambda flight: gate.wait(10))
        d2 = lane.run(lambda flight: ran.append(1))
        d2.addErrback(lambda f: f.trap(defer.CancelledError))
        d2.cancel()
        return [d1]  # not the Deferred itself: the reactor thread's call would wait for it

    [d1] = on_reactor(start)
    gate.set()
    on_reactor(lambda: d1)
    assert on_reactor(lambda: lane.run(lambda flight: "after")) == "after"
    assert ran == []
