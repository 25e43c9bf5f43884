"""Suite-wide fixtures: vector files and the plaintext rule of the Tahoe 1.20 vectors."""

import hashlib
import json
import pathlib

import pytest
from hypothesis import HealthCheck, settings

from shoal.testing.grid import Grid, shares_args, start_grid

VECTORS = pathlib.Path(__file__).parent / "vectors"

settings.register_profile("shoal", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shoal")


# --- parallel runs (pytest-xdist, `make test` runs -n 2 --dist loadgroup) ----------
# Every test without its own xdist_group runs on the worker of its module, so a
# module-scoped grid starts once; the netgrid package shares one package-scoped grid
# (`wan`), so all of it is one group. Session-scoped grids start once per worker
# that needs them.

PACKAGE_GROUPS = ("tests/netgrid/",)


def xdist_group_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    for package in PACKAGE_GROUPS:
        if module.startswith(package):
            return package.rstrip("/")
    return module


def pytest_configure(config) -> None:
    # xdist registers it when loaded; with -p no:xdist (serial) the marks stay, unknown otherwise
    config.addinivalue_line("markers", "xdist_group(name): run with the other tests of the group on one worker")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (it runs in the workers too)
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(xdist_group_of(item.nodeid)))


def vector_plaintext(seed: str, size: int) -> bytes:
    """concat(sha256(b"shoal-vector:" + seed + b":" + str(i))) cut to size bytes."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(b"shoal-vector:" + seed.encode() + b":" + str(i).encode()).digest()
        i += 1
    return bytes(out[:size])


@pytest.fixture(scope="session")
def tahoe_vectors() -> dict:
    return json.loads((VECTORS / "tahoe-1.20.json").read_text())


# --- the shared grid --------------------------------------------------------------
# One real grid of node processes for the whole run (started on first use): an
# introducer, SHARED_STORAGE_NODES storage nodes and a client encoding
# SHARED_SHARES. Modules that only upload, download and list use it, each with its
# own files, directories and aliases; a module that needs other encoding, other
# [client] settings or a fresh status history adds its own client to it
# (Grid.add_client). Modules that stop, damage or reconfigure nodes start their own.

SHARED_STORAGE_NODES = 7
SHARED_SHARES = (2, 3, 3)  # k, happy, n of the shared client


@pytest.fixture(scope="session")
def shared_grid(tmp_path_factory) -> Grid:
    g = start_grid(str(tmp_path_factory.mktemp("shared-grid")), storage_nodes=SHARED_STORAGE_NODES,
                   client_args=shares_args(*SHARED_SHARES))
    yield g
    g.stop()
