"""The pure mutable-file core: encoding a version, checking and decoding shares,
MDMF in-place updates against a plain bytes model, and tampering detection."""

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.caps import mutable_caps_from_private_key
from shoal.crypto import rsa
from shoal.crypto.hashes import ssk_readkey_data_hash
from shoal.formats.mutable_share import MDMF_VERSION, SDMF_VERSION, apply_writes
from shoal.mutable.decoder import ShareCheckError, decrypt_private_key
from shoal.mutable.encoder import WriteKeys, encode_update, encode_version, tree_leaves
from tests.unit.mutable import share_reader
from tests.unit.mutable.vector_keys import vector_key

K, N = 3, 10
_fmt, KEY, _cap = vector_key(0)
KEYS = WriteKeys.from_private_key(KEY)
WRITE_CAP = mutable_caps_from_private_key(KEY, False)[0]
FINGERPRINT = WRITE_CAP.fingerprint
HYP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def counter_salts():
    c = itertools.count()
    return lambda: next(c).to_bytes(16, "big")


def shares_of(encoded, base: dict[int, bytes] | None = None) -> dict[int, bytes]:
    return {sh: apply_writes(encoded.share_writes(sh, KEYS), (base or {}).get(sh, b"")) for sh in range(N)}


def read_shares(shares: dict[int, bytes], readkey: bytes = KEYS.readkey) -> bytes:
    return share_reader.read_shares(shares, FINGERPRINT, readkey)


@pytest.mark.parametrize("version", [SDMF_VERSION, MDMF_VERSION])
@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 100, 131073, 131074, 300_000])
def test_round_trip(version, size):
    data = random.Random(size).randbytes(size)
    encoded = encode_version(data, version=version, seqnum=5, k=K, n=N, keys=KEYS)
    assert encoded.prefix.seqnum == 5
    shares = shares_of(encoded)
    assert read_shares(shares) == data
    assert read_shares(dict(list(shares.items())[-K:])) == data  # any k shares (here: check blocks)
    if version == SDMF_VERSION:
        assert encoded.prefix.num_segments == (1 if size else 0)
        assert encoded.prefix.salt is not None
    else:
        assert encoded.prefix.segment_size == 131073
        assert encoded.prefix.num_segments == -(-size // 131073)


def test_sdmf_encryption_is_tahoes():
    """Segment ciphertext = AES-CTR(tagged hash of (salt, readkey)), and the first
    k blocks are that ciphertext cut in k (zfec is systematic)."""
    data = b"0123456789" * 3
    encoded = encode_version(data, version=SDMF_VERSION, seqnum=1, k=K, n=N, keys=KEYS, salts=lambda: b"s" * 16)
    from shoal.crypto.aes import aes_ctr

    crypttext = aes_ctr(ssk_readkey_data_hash(b"s" * 16, KEYS.readkey), data)
    assert b"".join(encoded.blocks[sh][0][1] for sh in range(K)) == crypttext
    assert encoded.prefix.salt == b"s" * 16


def test_private_key_round_trip_and_mismatch():
    assert decrypt_private_key(KEYS.writekey, KEYS.enc_privkey) == KEY
    with pytest.raises(ShareCheckError):
        decrypt_private_key(b"\x00" * 16, KEYS.enc_privkey)
    assert KEYS.writekey == WRITE_CAP.writekey


def test_wrong_key_signature_is_refused():
    other = WriteKeys.from_private_key(vector_key(1)[1])
    encoded = encode_version(b"hello", version=SDMF_VERSION, seqnum=1, k=K, n=N, keys=other)
    # a share signed by another key, carrying that key: the fingerprint check refuses it
    with pytest.raises(ShareCheckError):
        read_shares(shares_of(encoded))


@HYP
@given(
    st.integers(0, 400), st.integers(0, 400), st.binary(min_size=1, max_size=200), st.sampled_from([3, 30, 33])
)
def test_update_matches_bytes_model(initial, offset, new, segsize):
    """An MDMF in-place update (only touched segments rewritten) reads back as the
    plain splice of bytes."""
    rnd = random.Random(initial * 1000 + offset)
    old = rnd.randbytes(initial)
    offset = min(offset, initial)
    encoded = encode_version(old, version=MDMF_VERSION, seqnum=1, k=K, n=N, keys=KEYS, max_segment_size=segsize)
    shares = shares_of(encoded)
    p = encoded.prefix
    leaves = {sh: tree_leaves(encoded.trees[sh], p.num_segments) for sh in range(N)}
    end = offset + len(new)
    new_len = max(initial, end)
    model = old[:offset] + new + old[end:]
    assert len(model) == new_len
    first, last = offset // p.segment_size, (end - 1) // p.segment_size
    segments = {s: model[s * p.segment_size:(s + 1) * p.segment_size] for s in range(first, last + 1)}
    upd = encode_update(p, leaves, segments, data_length=new_len, seqnum=2, keys=KEYS)
    assert all(set(upd.blocks[sh]) == set(segments) for sh in range(N))
    assert read_shares(shares_of(upd, shares)) == model


@HYP
@given(st.integers(0, 3000), st.sampled_from([SDMF_VERSION, MDMF_VERSION]), st.data())
def test_a_flipped_byte_is_caught_or_harmless(size, version, data):
    """Flipping any byte of one share never yields wrong plaintext: the share is
    refused, or the byte was not used (padding, an unused hash)."""
    plain = random.Random(size).randbytes(size)
    encoded = encode_version(plain, version=version, seqnum=1, k=K, n=N, keys=KEYS, max_segment_size=999)
    shares = shares_of(encoded)
    victims = data.draw(st.lists(st.integers(0, N - 1), min_size=1, max_size=N, unique=True))
    for sh in victims:
        blob = bytearray(shares[sh])
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] ^= 1 << data.draw(st.integers(0, 7))
        shares[sh] = bytes(blob)
    try:
        got = read_shares(shares)
    except ShareCheckError:
        assert len(victims) > N - K
        return
    assert got == plain


def test_keys_from_der_and_pem_agree():
    der = rsa.private_key_to_der(KEY)
    assert WriteKeys.from_private_key(rsa.private_key_from_der(der)).writekey == KEYS.writekey
