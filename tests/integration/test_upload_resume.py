"""A direct upload over HTTP storage resumes across a restart of the client node.

Four shoal storage nodes announce relay addresses (shoal.testing.tcp_relay), so every byte the
client pushes is counted and paced. The client is killed (SIGKILL) half-way through a
2-of-4 upload; restarted, it uploads the same file again (convergent: the same storage
index, the same servers, the same upload secrets): the servers offer the partial shares
back and the client sends only what they still require, not the whole shares again.
"""

import os
import threading
import urllib.error

import pytest

from shoal.testing.grid import Grid, shares_args, wait_for_servers
from shoal.testing.processes import start_node, stop_all
from shoal.testing.tcp_relay import Limiter, add_relayed_storage
from shoal.testing.wait import wait_until
from tests.integration.test_helper_processes import get, put

MiB = 1024 * 1024
SIZE = 24 * MiB
TOTAL = SIZE * 2  # 2-of-4: four shares of half the file each


@pytest.fixture(scope="module")
def relayed_grid(tmp_path_factory):
    grid = Grid(str(tmp_path_factory.mktemp("resume-grid")))
    limiter = Limiter(None)
    relays = []
    try:
        grid.start_introducer()
        for i in range(4):
            relays.append(add_relayed_storage(grid, f"storage{i + 1}", limiter)[1])
        yield grid, limiter, relays
    finally:
        stop_all([*grid.clients, *grid.storage, grid.introducer])
        for relay in relays:
            relay.close()


def test_a_restarted_client_resumes_its_partial_shares(relayed_grid):
    grid, limiter, relays = relayed_grid
    client = grid.add_client("resumer", *shares_args(2, 4, 4), servers=4,
                             config={("client", "shares._max_immutable_segment_size_for_testing"): str(128 * 1024)})
    data = os.urandom(SIZE)

    def sent() -> int:
        return sum(r.up for r in relays)

    limiter.rate = 12 * MiB
    outcome: dict = {}

    def upload() -> None:
        try:
            outcome["cap"] = put(client.web_url, data)
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            outcome["error"] = e

    t = threading.Thread(target=upload)
    t.start()
    try:
        wait_until(lambda: sent() >= TOTAL // 2, 60, "half of the shares pushed")
        client.kill9()
        t.join(30)
    finally:
        limiter.rate = None
    assert "error" in outcome, outcome
    before_restart = sent()
    assert TOTAL // 2 <= before_restart < TOTAL

    grid.clients.remove(client)
    restarted = start_node(client.nodedir)
    grid.clients.append(restarted)
    wait_for_servers(restarted.web_url, 4)
    start = sent()
    cap = put(restarted.web_url, data)
    resumed = sent() - start
    # without resuming this sends all of TOTAL again (or fails: every share is still in progress
    # on its server); with it, the rest, plus per share: the write in flight when the client died
    # (counted at the relay, never stored), its first write again, and the writes in flight
    # before the server's first answer (~1 MiB each)
    assert resumed < TOTAL - before_restart + 12 * MiB, (resumed, before_restart)
    assert resumed < 0.8 * TOTAL
    assert get(restarted.web_url, cap) == data
