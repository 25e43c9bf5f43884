"""The namespace grid's links themselves: delay, bandwidth, partitions, cuts, cleanup.

A probe (pinger.py) echoes bytes on one host; another host times round trips
through the hub's relay, over one TCP connection kept across the changes.
"""

import os
import pathlib
import select
import subprocess
import sys

import pytest

from shoal.testing.netgrid import TUB_PORT, cleanup_stale, list_namespaces
from shoal.testing.netlinks import namespace
from shoal.testing.wait import wait_until

PINGER = str(pathlib.Path(__file__).with_name("pinger.py"))
QUIET = 0.3  # seconds a blocked link must stay silent


class Probe:
    def __init__(self, grid, frm: str, to: str) -> None:
        self.server = grid.popen(to, [sys.executable, PINGER, "serve", grid.host(to).ip, str(TUB_PORT)],
                                 stdout=subprocess.PIPE, text=True)
        assert self.server.stdout.readline().strip() == "ready"
        self.client = grid.popen(frm, [sys.executable, PINGER, "ping", grid.host(to).relay, str(TUB_PORT)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.client.stdout.readline().strip() == "ready"

    def send(self, n: int = 1) -> None:
        self.client.stdin.write(f"{n}\n")
        self.client.stdin.flush()

    def answered_within(self, seconds: float) -> bool:
        return bool(select.select([self.client.stdout], [], [], seconds)[0])

    def answer(self) -> float:
        line = self.client.stdout.readline().strip()
        assert not line.startswith("error"), line
        return float(line)

    def rtt(self, n: int = 1) -> float:
        self.send(n)
        return self.answer()

    def close(self) -> None:
        for p in (self.client, self.server):
            p.kill()
            p.wait(10)
            for pipe in (p.stdin, p.stdout):
                if pipe:
                    pipe.close()


@pytest.fixture
def probe(make_netgrid):
    grid = make_netgrid()
    grid.add_host("a")
    grid.add_host("b")
    p = Probe(grid, "a", "b")
    yield grid, p
    p.close()


def test_delay_applies_per_host_and_changes_on_a_live_connection(probe):
    grid, p = probe
    # lower bounds are the links'; upper bounds (the best of three) allow for a loaded machine
    assert min(p.rtt() for _ in range(3)) < 0.05
    grid.set_link("a", delay=0.02)
    grid.set_link("b", delay=0.03)  # round trip 2 * (20 + 30) ms
    times = [p.rtt() for _ in range(3)]
    assert min(times) >= 0.1 and min(times) < 0.15, times
    grid.set_round_trip(0.02)
    times = [p.rtt() for _ in range(3)]
    assert min(times) >= 0.02 and min(times) < 0.07, times


def test_bandwidth_limit_on_the_uplink(probe):
    grid, p = probe
    size = 400_000
    fast = p.rtt(size)
    grid.set_link("b", up_mbit=8)  # the echo comes back over b's uplink at 1 MB/s
    slow = p.rtt(size)
    assert slow >= 0.3 and slow > 3 * fast, (fast, slow)
    grid.set_link("b", up_mbit=None)
    assert p.rtt(size) < slow / 3


def test_partition_holds_traffic_until_heal(probe):
    grid, p = probe
    grid.add_host("c")
    grid.partition(["b", "c"])  # a on one side, b (and c) on the other
    p.send()
    assert not p.answered_within(QUIET)
    grid.heal()
    assert p.answer() >= 0.8 * QUIET  # the probe starts its clock when it reads the request
    grid.partition(["a", "b"])  # both on the same side: not separated
    p.send()
    assert p.answered_within(QUIET)
    p.answer()


def test_cut_link_goes_silent_and_comes_back(probe):
    grid, p = probe
    grid.cut("b")
    p.send()
    assert not p.answered_within(QUIET)
    grid.restore("b")
    assert p.answer() >= 0.8 * QUIET  # the probe starts its clock when it reads the request


def test_close_removes_everything_and_stale_runs_are_cleaned(make_netgrid):
    grid = make_netgrid()
    grid.add_host("a")
    names = {grid.hub, grid.host("a").ns}
    assert names <= set(list_namespaces())
    grid.close()
    assert not names & set(list_namespaces())
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = namespace(dead.pid, 0, "a")
    subprocess.run(["ip", "netns", "add", stale], check=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "600"])
    try:
        wait_until(lambda: str(sleeper.pid) in subprocess.run(["ip", "netns", "pids", stale],
                                                               capture_output=True, text=True).stdout,
                   10, "the leftover process to run in its namespace")
        assert stale in cleanup_stale()
        assert sleeper.wait(10) == -9
        assert stale not in list_namespaces()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
    assert os.getpid()  # the harness itself survives its own cleanup
