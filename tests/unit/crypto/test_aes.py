from Crypto.Cipher import AES
from hypothesis import given
from hypothesis import strategies as st

from shoal.crypto.aes import AESCTR, aes_ctr


def test_counter_starts_at_zero_block():
    key = bytes(range(16))
    expect = AES.new(key, AES.MODE_ECB).encrypt(b"\x00" * 16)
    assert aes_ctr(key, b"\x00" * 16) == expect


@given(st.binary(min_size=16, max_size=16), st.binary(max_size=300), st.data())
def test_any_offset_matches_the_stream(key, data, d):
    offset = d.draw(st.integers(0, len(data)))
    whole = aes_ctr(key, data)
    assert AESCTR(key, offset).process(data[offset:]) == whole[offset:]
    assert aes_ctr(key, whole) == data
