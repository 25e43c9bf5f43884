"""Suite-wide fixtures: vector files and the plaintext rule of the Tahoe 1.20 vectors."""

import hashlib
import json
import pathlib

import pytest
from hypothesis import HealthCheck, settings

VECTORS = pathlib.Path(__file__).parent / "vectors"

settings.register_profile("shoal", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shoal")


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
