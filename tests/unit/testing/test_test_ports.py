"""shoal.testing.ports: each xdist worker's ports come from its own block, under the ephemeral range."""

import itertools
import socket

from shoal.testing import ports


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except OSError:
        return 32768


def test_workers_have_disjoint_blocks_below_the_ephemeral_range(monkeypatch):
    seen: dict[str, set[int]] = {}
    for worker in ("gw0", "gw1", ""):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        seen[worker] = {ports.free_port() for _ in range(20)}
    for worker, got in seen.items():
        assert len(got) == 20  # one process never gets a port twice in a row
        assert all(ports.FIRST_PORT <= p < _ephemeral_low() for p in got), worker
    assert all(20000 <= p < 21500 for p in seen["gw0"]) and all(21500 <= p < 23000 for p in seen["gw1"])
    assert not seen["gw0"] & seen["gw1"] and not seen["gw1"] & seen[""] and not seen["gw0"] & seen[""]


def test_a_port_in_use_is_skipped(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    base = ports.FIRST_PORT + 3 * ports.BLOCK
    held = []
    try:
        for port in (base, base + 1):  # someone holds the first two of the block
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen()
            held.append(s)
        monkeypatch.setattr(ports, "_counter", itertools.count(0))  # the walk starts at the block's start
        assert ports.free_port() == base + 2
        assert ports.free_port() == base + 3
    finally:
        for s in held:
            s.close()
