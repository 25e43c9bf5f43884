"""Fixtures of the node tests."""

import pytest

from shoal.testing.processes import create_storage_node


@pytest.fixture
def nodedir(tmp_path) -> str:
    """A fresh storage node's directory (its tahoe.cfg to edit with set_config)."""
    d = str(tmp_path / "node")
    create_storage_node(d)
    return d
