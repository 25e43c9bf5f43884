"""Grids of real hosts: every host a network namespace (shoal.testing.netgrid).

These tests need root for namespaces; elsewhere they skip, saying why. The
modules share one grid (`wan`, started on first use): an introducer, six
storage hosts and two clients, each host its own namespace; `net` hands it to
a test and puts every link back (no delay, no limits, no cuts, no partition)
after it, pass or fail.
"""

import functools
import glob
import os
import urllib.request

import pytest

from shoal.caps import parse_cap
from shoal.encoding.base32 import b2a
from shoal.testing.grid import shares_args, wait_for_servers
from shoal.testing.netgrid import NetGrid, unavailable
from shoal.testing.netlinks import Link
from shoal.testing.processes import start_all

STORAGE = tuple(f"s{i}" for i in range(1, 7))
TIMEOUT = 5  # [client] storage.timeout of the clients: a silent server is dropped after this
CLIENTS = {"c1": (2, 3, 4), "c2": (2, 3, 6)}  # k, happy, n

_reason: list[str | None] = []


def netgrid_unavailable() -> str | None:
    if not _reason:
        _reason.append(unavailable())
    return _reason[0]


def _skip_unless_available() -> None:
    if (why := netgrid_unavailable()) is not None:
        pytest.skip(f"namespace grid unavailable: {why}")


@pytest.fixture
def make_netgrid(tmp_path_factory):
    """Make NetGrids (each removed at the end of the test, pass or fail)."""
    _skip_unless_available()
    grids: list[NetGrid] = []

    def make(**kwargs) -> NetGrid:
        g = NetGrid(str(tmp_path_factory.mktemp("netgrid")), **kwargs)
        grids.append(g)
        return g

    yield make
    for g in grids:
        g.close()


@pytest.fixture(scope="package")
def wan(tmp_path_factory):
    _skip_unless_available()
    grid = NetGrid(str(tmp_path_factory.mktemp("wan")))
    try:
        grid.start_introducer()
        for name in (*STORAGE, *CLIENTS):
            grid.add_host(name)
        config = {("client", "storage.timeout"): str(TIMEOUT)}
        start_all([*(functools.partial(grid.add_storage, name) for name in STORAGE),
                   *(functools.partial(grid.add_client, name, *shares_args(*enc), servers=len(STORAGE),
                                       config=config) for name, enc in CLIENTS.items())])
        yield grid
    finally:
        grid.close()


@pytest.fixture
def net(wan):
    yield wan
    wan.heal()
    for name, host in wan.hosts.items():
        if host.cut:
            wan.restore(name)
        if host.link != Link():
            wan.set_link(name, delay=0.0, loss=0.0, up_mbit=None, down_mbit=None)
    for name in CLIENTS:  # the next test starts with every client seeing every server
        wait_for_servers(wan.web_url(name), len(STORAGE), timeout=60)


def put(url: str, data: bytes, path: str = "uri", timeout: float = 120) -> str:
    req = urllib.request.Request(url + path, data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode().strip()


def get(url: str, cap: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(url + "uri/" + cap, timeout=timeout) as r:
        return r.read()


def share_files(grid: NetGrid, hosts=STORAGE, cap: str | None = None, incoming: bool = False) -> dict[str, list[str]]:
    """host -> its finished (or, with incoming, half-written) share files, of one cap if given."""
    si = b2a(parse_cap(cap).storage_index) if cap else "*"
    out = {}
    for name in hosts:
        shares = os.path.join(grid.base, name, "storage", "shares")
        pattern = os.path.join(shares, "incoming", "*", si, "*") if incoming else os.path.join(shares, "*", si, "*")
        found = [p for p in glob.glob(pattern) if "/incoming/" not in p or incoming]
        if found:
            out[name] = found
    return out
