"""Every immutable case of the Tahoe-LAFS 1.20 vectors, reproduced byte for byte."""

import base64
import hashlib

import pytest
import yaml

from shoal.caps import LiteralCap
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import b2a
from shoal.immutable.encoder import ImmutableEncoder, encode_all
from shoal.immutable.params import LIT_THRESHOLD, EncodingParams, FileShape
from tests.conftest import VECTORS, vector_plaintext

JSON_CASES = __import__("json").loads((VECTORS / "tahoe-1.20.json").read_text())
SECRET = JSON_CASES["convergence_secret_utf8"].encode()


def _id(case):
    return f"{case['k']}of{case['n']}-seg{case['max_segment_size']}-{case['plaintext']['size']}"


def encode_for_cap(plaintext: bytes, secret: bytes, params: EncodingParams):
    if len(plaintext) <= LIT_THRESHOLD:
        return LiteralCap(plaintext).to_string(), None, None
    shape = FileShape(len(plaintext), params.k, params.n, params.segment_size_for(len(plaintext)))
    key = convergent_key([plaintext], secret, shape.k, shape.n, shape.segment_size)
    shares, result = encode_all(key, shape, [plaintext])
    return result.cap.to_string(), result, shares


@pytest.mark.parametrize("case", JSON_CASES["immutable"], ids=_id)
def test_tahoe_120_immutable(case):
    plaintext = vector_plaintext(case["plaintext"]["seed"], case["plaintext"]["size"])
    params = EncodingParams(case["k"], case["happy"], case["n"], case["max_segment_size"])
    cap, result, shares = encode_for_cap(plaintext, SECRET, params)
    assert cap == case["cap"]
    if result is None:
        return
    assert b2a(result.storage_index) == case["storage_index_b32"]
    assert sorted(case["shares"], key=int) == [str(i) for i in range(case["n"])]
    for shnum, expect in case["shares"].items():
        data = shares[int(shnum)]
        assert len(data) == expect["data_length"], shnum
        assert data[:64].hex() == expect["first_64_hex"], shnum
        assert hashlib.sha256(data).hexdigest() == expect["data_sha256"], shnum


def _integration_cases():
    doc = yaml.safe_load((VECTORS / "tahoe-integration-vectors.yaml").read_text())
    return [c for c in doc["vector"] if c["format"]["kind"] == "chk"]


def _sample(sample) -> bytes:
    seed = base64.b64decode(sample["seed"])
    length = sample["length"]
    return (seed * (length // len(seed) + 1))[:length]


@pytest.mark.parametrize(
    "case",
    _integration_cases(),
    ids=lambda c: f"{c['zfec']['required']}of{c['zfec']['total']}-{c['sample']['length']}-{c['convergence'][:4]}",
)
def test_tahoe_integration_chk(case):
    """Tahoe's own conformance vectors (128 KiB segments, up to 101-of-256)."""
    z = case["zfec"]
    params = EncodingParams(z["required"], 1, z["total"], z["segmentSize"])
    secret = base64.b64decode(case["convergence"])
    plaintext = _sample(case["sample"])
    size = len(plaintext)
    if size <= LIT_THRESHOLD:
        assert LiteralCap(plaintext).to_string() == case["expected"]
        return
    shape = FileShape(size, params.k, params.n, params.segment_size_for(size))
    key = convergent_key([plaintext], secret, shape.k, shape.n, shape.segment_size)
    enc = ImmutableEncoder(key, shape)
    step = 1 << 20
    for i in range(0, size, step):
        enc.feed(plaintext[i : i + step])  # blocks are dropped: only the cap is checked
    assert enc.finish().cap.to_string() == case["expected"]
