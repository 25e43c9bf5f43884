import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.encoding.base32 import a2b, b2a, encoded_length, is_base32
from shoal.errors import EncodingError


@given(st.binary(max_size=100))
def test_round_trip(data):
    text = b2a(data)
    assert text == text.lower() and "=" not in text
    assert len(text) == encoded_length(len(data))
    assert a2b(text) == data
    assert a2b(text.encode()) == data
    assert is_base32(text, len(data))


def test_known_values():
    assert b2a(b"") == ""
    assert b2a(b"\x00" * 16) == "a" * 26
    assert b2a(b"hello") == base64.b32encode(b"hello").decode().lower()


@pytest.mark.parametrize("bad", ["A", "ab=", "ab1", "abc", "a", "ab cd", "é"])
def test_rejects(bad):
    with pytest.raises(EncodingError):
        a2b(bad)


def test_rejects_stray_trailing_bits():
    # "ab" encodes one byte; "ac" sets bits past the 8 that are used.
    assert a2b("ae") == b"\x01"
    with pytest.raises(EncodingError):
        a2b("af")


@given(st.text(max_size=40))
def test_random_text_decodes_or_raises_encoding_error(text):
    try:
        data = a2b(text)
    except EncodingError:
        return
    assert b2a(data) == text
