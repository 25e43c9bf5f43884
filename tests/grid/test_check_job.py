"""The checker job (shoal.checker.job) on a real grid (LocalGrid): a round finds and
repairs a damaged file, the next round is healthy, progress survives a restart
mid-round (objects already done are not checked again), and status() reports it."""

import io
import os
import types

import pytest
from twisted.internet import defer

from shoal.caps import parse_cap
from shoal.checker import FileChecker
from shoal.checker.job import CheckerJob, CheckerSettings
from shoal.dirnode import NodeMaker
from shoal.immutable.params import EncodingParams
from shoal.mutable import MutableClient
from shoal.node.files import ClientFiles
from shoal.testing.local_grid import LocalGrid
from tests.grid.test_check import damage
from tests.unit.mutable.vector_keys import fresh_key

K, HAPPY, N = 3, 4, 5
LEASE = b"checker-job-tests-lease-secret!!"
FILES = 6


class Stop(BaseException):
    """Stands for the node stopping in the middle of a round."""


def call(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    grid = LocalGrid(N)
    identity = types.SimpleNamespace(convergence_secret=None, lease_secret=LEASE)
    files = ClientFiles(grid.broker, EncodingParams(K, HAPPY, N), identity)
    maker = NodeMaker(files, MutableClient(grid.broker, lease_secret=LEASE, k=K, n=N))
    root = call(grid, maker.create_directory, None, private_key=fresh_key())
    caps = {}

    async def build() -> None:
        for i in range(FILES):
            data = os.urandom(3000 + i)
            caps[f"f{i}"] = (await files.upload(io.BytesIO(data), len(data))).cap
        await root.set_children(caps)

    grid.call(lambda: defer.ensureDeferred(build()))
    checker = FileChecker(grid.broker, lease_secret=LEASE, happy=HAPPY, mutable=maker.mutable)
    yield types.SimpleNamespace(grid=grid, maker=maker, root=root, caps=caps, checker=checker,
                                state=str(tmp_path_factory.mktemp("job") / "checker.state.json"))
    grid.close()


def job(setup, checker=None, clock=lambda: 1000.0) -> CheckerJob:
    settings = CheckerSettings(enabled=True, roots=(setup.root.cap.to_string(),), interval=3600.0,
                               verify_fraction=1.0)
    return CheckerJob(setup.maker, checker or setup.checker, settings, setup.state, clock=clock)


def test_a_round_repairs_then_the_next_is_healthy_and_progress_survives_a_restart(setup):
    grid = setup.grid
    damage(grid, parse_cap(setup.caps["f2"]).storage_index, 0, "delete")
    first = job(setup)
    report = call(grid, first.run_round)
    assert (report["round"], report["objects-checked"], report["objects-verified"]) == (1, 1 + FILES, 1 + FILES)
    assert (report["objects-unhealthy"], report["repairs-attempted"], report["repairs-successful"]) == (1, 1, 1)
    assert first.seconds_until_due() == 3600.0

    class StopAfter(FileChecker):
        calls = 0

        async def check_and_repair(self, cap, **kw):
            StopAfter.calls += 1
            if StopAfter.calls == 4:
                raise Stop()
            return await super().check_and_repair(cap, **kw)

    stopping = StopAfter(grid.broker, lease_secret=LEASE, happy=HAPPY, mutable=setup.maker.mutable)
    second = job(setup, stopping, clock=lambda: 5000.0)
    with pytest.raises(Stop):
        call(grid, second.run_round)
    status = job(setup).status()
    assert status["round-in-progress"] and status["round"] == 2 and status["objects-done-in-root"] == 3
    resumed = job(setup, clock=lambda: 6000.0)
    report = call(grid, resumed.run_round)
    assert report["round"] == 2 and report["objects-checked"] == 1 + FILES  # 3 before the stop, 4 after
    assert report["objects-healthy"] == 1 + FILES and report["repairs-attempted"] == 0
    assert resumed.status()["last-report"] == report
