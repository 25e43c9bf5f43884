"""Runs every test in this directory once per storage implementation in HARNESSES.

To run the suite against another implementation, add a factory
``(tmp_path) -> Harness`` to HARNESSES (see harness.py for the contract).
"""

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.storage_suite.harness import Harness, LocalHarness
from tests.storage_suite.harness_foolscap import FoolscapHarness

HARNESSES: dict[str, Callable[[Any], Harness]] = {
    "local": lambda tmp_path: LocalHarness(os.path.join(str(tmp_path), "storage")),
    "foolscap": lambda tmp_path: FoolscapHarness(os.path.join(str(tmp_path), "storage")),
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Harness]:
    made = HARNESSES[request.param](tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def server(harness: Harness) -> Any:
    return harness.server()
