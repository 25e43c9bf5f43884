"""Caps Tahoe-LAFS 1.20 made: mutable caps from RSA keys, and every cap parses back.

* tahoe-1.20.json "mutable": PKCS#8 DER keys and the write, read and verify caps;
* tahoe-integration-vectors.yaml: 240 SDMF/MDMF cases (PEM PKCS#1 keys and the
  expected write cap) and 120 CHK cases; every expected cap must round-trip;
* tahoe-1.20.json "immutable": every CHK/LIT cap must round-trip.
"""

import base64
import functools
import json
import pathlib

import pytest
import yaml

from shoal.caps import UnknownCap, mutable_caps_from_private_key, parse_cap

VECTORS = pathlib.Path(__file__).parents[1] / "vectors"
PREFIXES = {"chk": ("URI:CHK:", "URI:LIT:"), "ssk": ("URI:SSK:", "URI:MDMF:")}


@functools.cache
def _integration_vectors() -> list[dict]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(VECTORS / "tahoe-integration-vectors.yaml", encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)["vector"]


def _ssk_vectors() -> list[tuple[str, str, str]]:
    return [
        (v["format"]["params"]["format"], v["format"]["params"]["key"], v["expected"])
        for v in _integration_vectors()
        if v["format"]["kind"] == "ssk"
    ]


def _json_vectors() -> dict:
    return json.loads((VECTORS / "tahoe-1.20.json").read_text(encoding="utf-8"))


def test_vector_counts():
    kinds = [v["format"]["kind"] for v in _integration_vectors()]
    assert kinds.count("ssk") == 240
    assert kinds.count("chk") == 120
    formats = sorted({fmt for fmt, _, _ in _ssk_vectors()})
    assert formats == ["mdmf", "sdmf"]
    assert len(_json_vectors()["mutable"]) == 4


@pytest.mark.parametrize("vector", _json_vectors()["mutable"], ids=lambda v: v["write_cap"][:14])
def test_json_mutable_caps(vector):
    der = base64.urlsafe_b64decode(vector["private_key_der_b64url"])
    assert vector["format"] in ("SDMF", "MDMF")
    caps = mutable_caps_from_private_key(der, mdmf=vector["format"] == "MDMF")
    assert [c.to_string() for c in caps] == [
        vector["write_cap"], vector["read_cap"], vector["verify_cap"]
    ]
    write = parse_cap(vector["write_cap"])
    assert write == caps[0]
    assert write.readonly().to_string() == vector["read_cap"]
    assert write.verifier().to_string() == vector["verify_cap"]


@pytest.mark.parametrize(
    ("fmt", "pem", "expected"), _ssk_vectors(), ids=[f"{i}-{v[0]}" for i, v in enumerate(_ssk_vectors())]
)
def test_integration_mutable_caps(fmt, pem, expected):
    write, read, verify = mutable_caps_from_private_key(pem.encode("ascii"), mdmf=fmt == "mdmf")
    assert write.to_string() == expected
    assert parse_cap(expected) == write


def test_every_expected_cap_round_trips():
    for vector in _integration_vectors():
        expected = vector["expected"]
        cap = parse_cap(expected)
        assert not isinstance(cap, UnknownCap), expected
        assert cap.to_string() == expected
        assert expected.startswith(PREFIXES[vector["format"]["kind"]])


def test_json_immutable_caps_round_trip():
    immutable = _json_vectors()["immutable"]
    assert immutable
    for vector in immutable:
        cap = parse_cap(vector["cap"])
        assert not isinstance(cap, UnknownCap)
        assert cap.to_string() == vector["cap"]
        assert parse_cap(vector["cap"].encode("ascii")) == cap
        if vector["cap"].startswith("URI:CHK:"):
            assert (cap.needed, cap.total) == (vector["k"], vector["n"])
            assert cap.size == vector["plaintext"]["size"]
        else:
            assert cap.size == vector["plaintext"]["size"]
