"""Range and Content-Range as Tahoe 1.20 (werkzeug) writes them, and refusal of everything else."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.protocol.http_errors import HttpRequestError
from shoal.protocol.http_ranges import (
    MAX_OFFSET,
    ByteRange,
    ContentRange,
    format_content_range,
    format_range,
    parse_content_range,
    parse_range,
)


def test_tahoe_forms():
    # werkzeug: Range("bytes", [(10, 20)]).to_header(), ContentRange("bytes", 10, 20).to_header()
    assert format_range(ByteRange(10, 20)) == b"bytes=10-19"
    assert format_content_range(ByteRange(10, 20)) == b"bytes 10-19/*"
    assert format_content_range(ByteRange(10, 20), 100) == b"bytes 10-19/100"
    assert parse_range(b"bytes=10-19") == ByteRange(10, 20)
    assert parse_range(b"BYTES = 0-0") == ByteRange(0, 1)
    assert parse_range(None) is None
    assert parse_content_range(b"bytes 10-19/*") == ContentRange(ByteRange(10, 20), None)
    assert parse_content_range(b"bytes 0-9/10") == ContentRange(ByteRange(0, 10), 10)


def test_clipped():
    assert ByteRange(10, 20).clipped(15) == ByteRange(10, 15)
    assert ByteRange(10, 20).clipped(30) == ByteRange(10, 20)
    assert ByteRange(10, 20).clipped(10) is None


@pytest.mark.parametrize("value", [
    b"", b"bytes=", b"bytes=5", b"bytes=5-", b"bytes=-5", b"bytes=5-4", b"bytes=0-1,3-4",
    b"items=0-1", b"bytes 0-1", "bytes=٣-٤".encode(), b"bytes=" + b"9" * 25 + b"-" + b"9" * 25,
    b"bytes=18446744073709551615-18446744073709551616",
])
def test_bad_ranges_are_416(value):
    with pytest.raises(HttpRequestError) as caught:
        parse_range(value)
    assert caught.value.status == 416


@pytest.mark.parametrize("value", [
    None, b"", b"bytes */10", b"bytes 0-9", b"bytes 5-4/*", b"bytes 0-10/10", b"bytes=0-9/*",
    b"Bytes 0-9/*", b"bytes 0-9/x", b"bytes -1-9/*",
])
def test_bad_content_ranges_are_416(value):
    with pytest.raises(HttpRequestError) as caught:
        parse_content_range(value)
    assert caught.value.status == 416


offsets = st.integers(0, MAX_OFFSET)


@given(offsets, st.integers(1, 2**40))
def test_round_trips(start, length):
    end = min(start + length, MAX_OFFSET + 1)
    if end <= start:
        return
    r = ByteRange(start, end)
    assert parse_range(format_range(r)) == r
    assert parse_content_range(format_content_range(r)).range == r


@given(st.binary(max_size=60))
def test_any_header_parses_or_is_416(value):
    for parse in (parse_range, parse_content_range):
        try:
            parse(value)
        except HttpRequestError as error:
            assert error.status == 416


def test_empty_ranges_do_not_exist():
    with pytest.raises(ValueError):
        ByteRange(5, 5)
    with pytest.raises(ValueError):
        ByteRange(-1, 5)
