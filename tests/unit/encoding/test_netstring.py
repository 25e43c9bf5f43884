import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.encoding.netstring import netstring, split_netstring
from shoal.errors import EncodingError


def test_known():
    assert netstring(b"") == b"0:,"
    assert netstring(b"abc") == b"3:abc,"


@given(st.lists(st.binary(max_size=50), max_size=6))
def test_round_trip(items):
    data = b"".join(netstring(i) for i in items)
    assert split_netstring(data) == (items, len(data))


@given(st.lists(st.binary(max_size=20), min_size=1, max_size=4), st.binary(max_size=10))
def test_count_leaves_trailing_data(items, trailer):
    data = b"".join(netstring(i) for i in items) + trailer
    got, end = split_netstring(data, count=len(items))
    assert got == items and data[end:] == trailer


@pytest.mark.parametrize("bad", [b"3:ab,", b"3:abc", b"x:abc,", b"03:abc,", b":,", b"3:abcd"])
def test_rejects(bad):
    with pytest.raises(EncodingError):
        split_netstring(bad)


@given(st.binary(max_size=30))
def test_random_bytes_parse_or_raise(data):
    try:
        split_netstring(data)
    except EncodingError:
        pass


def test_requires_bytes():
    with pytest.raises(TypeError):
        netstring("text")  # type: ignore[arg-type]
