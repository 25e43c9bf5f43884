"""Grids of real hosts: every host a network namespace (shoal.testing.netgrid).

These tests need root for namespaces; elsewhere they skip, saying why.
"""

import pytest

from shoal.testing.netgrid import NetGrid, unavailable

_reason: list[str | None] = []


def netgrid_unavailable() -> str | None:
    if not _reason:
        _reason.append(unavailable())
    return _reason[0]


@pytest.fixture
def make_netgrid(tmp_path_factory):
    """Make NetGrids (each removed at the end of the test, pass or fail)."""
    if (why := netgrid_unavailable()) is not None:
        pytest.skip(f"namespace grid unavailable: {why}")
    grids: list[NetGrid] = []

    def make(**kwargs) -> NetGrid:
        g = NetGrid(str(tmp_path_factory.mktemp("netgrid")), **kwargs)
        grids.append(g)
        return g

    yield make
    for g in grids:
        g.close()
