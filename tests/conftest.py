"""Suite-wide fixtures: vector files and the plaintext rule of the Tahoe 1.20 vectors."""

import hashlib
import json
import pathlib
import sys

import pytest
from hypothesis import HealthCheck, settings

from shoal.testing.grid import Grid, shares_args, start_grid
from tests import scheduling

VECTORS = pathlib.Path(__file__).parent / "vectors"

settings.register_profile("shoal", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shoal")


# --- parallel runs (pytest-xdist; `make test` runs -n auto) ------------------------
# tests/scheduling.py deals out whole modules (the netgrid package as one), so a
# module-scoped grid starts once and a module's tests run in order on one worker.
# Session-scoped grids start once per worker that needs them.


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when xdist is not loaded
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "each":
        return None
    return scheduling.make_scheduler(config, log)


@pytest.hookimpl(trylast=True)  # after xdist turned -n into config.option.tx
def pytest_configure(config) -> None:
    if getattr(config.option, "tx", None):  # workers get the controller's -b (scheduling.worker_spec)
        config.option.tx = [scheduling.worker_spec(spec, sys.executable, sys.flags.bytes_warning)
                            for spec in config.option.tx]


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
