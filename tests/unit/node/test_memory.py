"""The node's malloc arena limit (glibc's mallopt), in a fresh interpreter each time."""

import os
import subprocess
import sys

import pytest

from shoal.node.memory import limit_malloc_arenas

_PROBE = """
import sys
from shoal.node.memory import limit_malloc_arenas
print(limit_malloc_arenas())
"""


def _probe(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env.update(env_extra)
    src = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
    env["PYTHONPATH"] = os.path.abspath(src)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_limit_is_set_on_glibc():
    assert _probe({}) == "True"


def test_operator_environment_wins():
    assert _probe({"MALLOC_ARENA_MAX": "4"}) == "False"
    assert limit_malloc_arenas(environ={"MALLOC_ARENA_MAX": "1"}) is False


def test_zero_arenas_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        limit_malloc_arenas(0)
