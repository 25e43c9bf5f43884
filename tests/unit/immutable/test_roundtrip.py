"""The pure encoder and decoder together: round trips, missing and damaged shares."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.crypto.convergence import convergent_key
from shoal.immutable.decoder import DownloadError, FileIdentity, NotEnoughSharesError
from shoal.immutable.encoder import ImmutableEncoder, encode_all
from shoal.immutable.local_decode import decode_segments
from shoal.immutable.params import EncodingParams, FileShape

SECRET = b"s" * 32


def encode(plaintext: bytes, k: int, n: int, max_seg: int):
    params = EncodingParams(k, 1, n, max_seg)
    shape = FileShape(len(plaintext), k, n, params.segment_size_for(len(plaintext)))
    key = convergent_key([plaintext], SECRET, k, n, shape.segment_size)
    shares, result = encode_all(key, shape, [plaintext])
    cap = result.cap
    return cap, shares


def identity(cap) -> FileIdentity:
    return FileIdentity(cap.ueb_hash, cap.needed, cap.total, cap.size, cap.key)


def sources(shares: dict[int, bytes]):
    def reader(data):
        return lambda off, length: data[off : off + length]

    return {sh: (f"mem{sh}", reader(d)) for sh, d in shares.items()}


def decode(cap, shares: dict[int, bytes]) -> bytes:
    return b"".join(decode_segments(identity(cap), sources(shares)))


@st.composite
def files(draw):
    n = draw(st.integers(1, 12))
    k = draw(st.integers(1, n))
    max_seg = draw(st.sampled_from([k, 7 * k, 64, 1000, 4096]))
    data = draw(st.binary(min_size=56, max_size=5000))
    return data, k, n, max_seg


@settings(max_examples=60)
@given(files(), st.data())
def test_round_trip_from_any_k(case, d):
    data, k, n, max_seg = case
    cap, shares = encode(data, k, n, max_seg)
    chosen = d.draw(st.permutations(range(n)))[:k]
    assert decode(cap, {s: shares[s] for s in chosen}) == data


@settings(max_examples=60)
@given(files(), st.data())
def test_flipping_any_byte_never_yields_wrong_plaintext(case, d):
    data, k, n, max_seg = case
    cap, shares = encode(data, k, n, max_seg)
    victim = d.draw(st.integers(0, n - 1))
    pos = d.draw(st.integers(0, len(shares[victim]) - 1))
    bit = d.draw(st.integers(0, 7))
    damaged = bytearray(shares[victim])
    damaged[pos] ^= 1 << bit
    shares = dict(enumerate(shares))
    shares[victim] = bytes(damaged)
    try:
        got = decode(cap, shares)
    except NotEnoughSharesError:
        # only when the damaged share was needed and no spare exists
        assert n == k
        return
    assert got == data


def test_unused_bytes_of_a_share_may_change_without_harm():
    # The plaintext-hash-tree region is unused; changing it must not matter.
    data = bytes(range(256)) * 40
    cap, shares = encode(data, 3, 5, 1024)
    assert decode(cap, dict(enumerate(shares))) == data


def test_missing_shares_then_too_few():
    data = b"x" * 10000
    cap, shares = encode(data, 3, 6, 4096)
    assert decode(cap, {1: shares[1], 4: shares[4], 5: shares[5]}) == data
    with pytest.raises(NotEnoughSharesError) as e:
        decode(cap, {1: shares[1], 4: shares[4]})
    assert "need 3" in str(e.value) and "found 2" in str(e.value)


def test_error_names_the_corrupt_share():
    data = b"y" * 5000
    cap, shares = encode(data, 2, 3, 1024)
    bad = bytearray(shares[0])
    bad[0x24 + 10] ^= 1  # inside the first block
    with pytest.raises(NotEnoughSharesError) as e:
        decode(cap, {0: bytes(bad), 1: shares[1]})
    assert "share 0 (mem0)" in str(e.value) and "BadHashError" in str(e.value)


def test_truncated_share_is_replaced():
    data = b"z" * 9000
    cap, shares = encode(data, 2, 4, 2048)
    got = decode(cap, {0: shares[0][:500], 1: shares[1], 3: shares[3]})
    assert got == data


def test_wrong_cap_key_is_caught():
    data = b"w" * 3000
    cap, shares = encode(data, 2, 3, 1024)
    other = FileIdentity(cap.ueb_hash, 2, 3, cap.size, b"\x00" * 16)
    # A wrong key cannot be detected by hashes (the ciphertext is fine) but a
    # wrong UEB hash is: every share is rejected.
    wrong = FileIdentity(b"\x00" * 32, 2, 3, cap.size, cap.key)
    with pytest.raises(NotEnoughSharesError):
        b"".join(decode_segments(wrong, sources(dict(enumerate(shares)))))
    assert b"".join(decode_segments(other, sources(dict(enumerate(shares))))) != data


def test_verify_only_pass_needs_no_key():
    data = b"v" * 4000
    cap, shares = encode(data, 2, 3, 1024)
    ident = FileIdentity(cap.ueb_hash, 2, 3, cap.size, None)
    crypttext = b"".join(decode_segments(ident, sources(dict(enumerate(shares))), decrypt=False))
    assert len(crypttext) == len(data) and crypttext != data
    with pytest.raises(DownloadError):
        b"".join(decode_segments(ident, sources(dict(enumerate(shares)))))


def test_streaming_feed_matches_one_shot():
    data = bytes(range(256)) * 300
    params = EncodingParams(3, 1, 7, 4096)
    shape = FileShape(len(data), 3, 7, params.segment_size_for(len(data)))
    key = b"k" * 16
    one, r1 = encode_all(key, shape, [data])
    many, r2 = encode_all(key, shape, [data[i : i + 777] for i in range(0, len(data), 777)])
    assert one == many and r1.cap == r2.cap


def test_encoder_rejects_too_much_plaintext():
    shape = FileShape(100, 1, 1, 100)
    enc = ImmutableEncoder(b"k" * 16, shape)
    with pytest.raises(ValueError):
        enc.feed(b"a" * 101)
