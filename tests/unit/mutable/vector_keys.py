"""RSA keys for mutable-file tests: the 240 distinct keys of Tahoe's integration
vectors (so tests need no slow key generation), with the write cap Tahoe made
from each. Keys are loaded one at a time, when asked for."""

import functools
import itertools
import pathlib

import yaml

from shoal.crypto import rsa

VECTORS = pathlib.Path(__file__).parents[2] / "vectors" / "tahoe-integration-vectors.yaml"
RESERVED = 20  # keys [0, 20) are for tests that want a particular vector


@functools.cache
def _vectors() -> list[tuple[str, bytes, str]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(VECTORS, encoding="utf-8") as f:
        vectors = yaml.load(f, Loader=loader)["vector"]
    return [
        (v["format"]["params"]["format"].upper(), v["format"]["params"]["key"].encode("ascii"), v["expected"])
        for v in vectors
        if v["format"]["kind"] == "ssk"
    ]


@functools.cache
def vector_key(i: int) -> tuple[str, rsa.PrivateKey, str]:
    """(format "SDMF"|"MDMF", key, Tahoe's write cap) of ssk vector i."""
    fmt, pem, cap = _vectors()[i]
    return fmt, rsa.private_key_from_der(pem), cap


_counter = itertools.count(RESERVED)


def fresh_key() -> rsa.PrivateKey:
    """A key no other test in this process has used (so a new storage index)."""
    i = next(_counter)
    if i >= len(_vectors()):
        return rsa.generate_private_key()
    return vector_key(i)[1]
