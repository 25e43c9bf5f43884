"""The pure facts of Soledad's blob protocol as shoal implements them: names,
flags, listing orders, the Tag, Range forms (Soledad's and RFC 7233's) and the
/stream framing in both directions."""

import base64
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.apps.blobs.errors import BadRequest, InvalidFlag, InvalidRequest, RangeNotSatisfiable
from shoal.apps.blobs.framing import (
    HEADER_BYTES,
    MAX_MANIFEST_LINE,
    MAX_STREAM_ENTRIES,
    DownloadStreamParser,
    Frame,
    frame_header,
    parse_download_request,
    parse_download_stream,
    parse_upload_manifest,
    read_manifest_line,
    upload_body,
)
from shoal.apps.blobs.ranges import parse_range
from shoal.apps.blobs.rules import (
    check_flags,
    check_name,
    is_true,
    namespace_or_default,
    newest_first,
    parse_flags_body,
    tag_of,
)

names = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=20)


@pytest.mark.parametrize("bad", ["", "a b", "a/b", "..", "é", "a.b", "x\n"])
def test_invalid_names_refused(bad):
    with pytest.raises(InvalidRequest):
        check_name("blob id", bad)


def test_names_and_default_namespace():
    assert check_name("user", "Alice_1-x") == "Alice_1-x"
    assert namespace_or_default(None) == "default"
    assert namespace_or_default("") == "default"
    assert namespace_or_default("MX") == "MX"


def test_flags_are_soledads_four_and_replace_the_set():
    assert check_flags(["PENDING", "FAILED", "PENDING"]) == ["PENDING", "FAILED"]
    assert check_flags([]) == []
    for bad in (["pending"], ["PENDING", "DONE"], "PENDING", [1], None):
        with pytest.raises(InvalidFlag):
            check_flags(bad)
    assert parse_flags_body(b'["PROCESSED"]') == ["PROCESSED"]
    with pytest.raises(InvalidRequest):
        parse_flags_body(b"not json")


def test_orders():
    assert newest_first(None) is None and newest_first("") is None
    assert newest_first("date") is False and newest_first("+date") is False
    assert newest_first("-date") is True
    with pytest.raises(BadRequest):
        newest_first("size")


def test_query_truth():
    assert is_true("true") and is_true("1") and is_true("yes")
    assert not is_true(None) and not is_true("") and not is_true("false") and not is_true("0")


@given(st.binary(max_size=64))
def test_tag_is_the_last_16_bytes_and_always_24_chars(data):
    tag = tag_of(data)
    assert len(tag) == 24
    assert base64.urlsafe_b64decode(tag) == data[-16:].rjust(16, b"\x00")


# --- Range ------------------------------------------------------------------------------


def test_soledad_closed_range_has_an_exclusive_end():
    r = parse_range("bytes=2-10", 100)
    assert (r.start, r.length, r.content_range) == (2, 8, "bytes 2-10/100")
    r = parse_range("bytes=90-200", 100)  # cut at the end
    assert (r.start, r.length) == (90, 10)


def test_rfc_open_and_suffix_ranges():
    r = parse_range("bytes=95-", 100)
    assert (r.start, r.length, r.content_range) == (95, 5, "bytes 95-99/100")
    r = parse_range("bytes=-3", 100)
    assert (r.start, r.length, r.content_range) == (97, 3, "bytes 97-99/100")
    r = parse_range("bytes=-300", 100)
    assert (r.start, r.length) == (0, 100)


def test_no_range_is_the_whole_blob():
    assert parse_range(None, 10) is None
    assert parse_range("  ", 10) is None


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-5", "bytes=6-5", "bytes=-0", "items=1-2", "bytes=1-2,3-4",
                                    "bytes=-", "bytes=a-b", "bytes=100-200"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(RangeNotSatisfiable) as e:
        parse_range(header, 100)
    assert e.value.size == 100 and e.value.status == 416


@given(st.integers(0, 5000), st.integers(0, 6000), st.integers(0, 6000), st.sampled_from(["closed", "open", "suffix"]))
def test_every_served_range_lies_inside_the_blob(size, a, b, form):
    header = {"closed": f"bytes={a}-{b}", "open": f"bytes={a}-", "suffix": f"bytes=-{b}"}[form]
    try:
        r = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    assert r is not None
    assert 0 <= r.start and r.length > 0 and r.start + r.length <= size


# --- /stream framing ---------------------------------------------------------------------


def test_frame_header_layout():
    tag = tag_of(b"T" * 16)
    header = frame_header(255, tag)
    assert header == b"000000ff" + tag.encode() + b" "
    assert len(header) == HEADER_BYTES == 33
    with pytest.raises(BadRequest):
        frame_header(16**8, tag)


blobs_strategy = st.lists(st.binary(max_size=300), max_size=8)


@given(blobs_strategy, st.integers(1, 50))
def test_download_stream_round_trip_in_any_chunking(blobs, chunk):
    body = b"".join(frame_header(len(b), tag_of(b)) + b for b in blobs)
    parser = DownloadStreamParser()
    frames: list[Frame] = []
    for i in range(0, len(body), chunk):
        frames.extend(parser.feed(body[i:i + chunk]))
    assert parser.done()
    assert [f.data for f in frames] == blobs
    assert [f.tag for f in frames] == [tag_of(b) for b in blobs]
    assert parse_download_stream(body) == frames


def test_download_stream_truncated_or_garbled():
    body = frame_header(10, tag_of(b"x")) + b"12345"
    with pytest.raises(BadRequest):
        parse_download_stream(body)
    with pytest.raises(BadRequest):
        parse_download_stream(b"zzzzzzzz" + b"A" * 24 + b" ")


@given(st.lists(st.tuples(names, st.binary(max_size=100)), max_size=6, unique_by=lambda t: t[0]))
def test_upload_body_round_trip(items):
    body = upload_body(items)
    first, _, rest = body.partition(b"\n")
    assert parse_upload_manifest(first) == [(i, len(d)) for i, d in items]
    assert rest == b"".join(d for _, d in items)


def test_upload_manifest_errors():
    with pytest.raises(InvalidRequest):
        parse_upload_manifest(b"{")
    with pytest.raises(InvalidRequest):
        parse_upload_manifest(b'{"a": 1}')
    with pytest.raises(InvalidRequest):
        parse_upload_manifest(b'[["a b", 1]]')
    for bad in (b'[["a", -1]]', b'[["a"]]', b'[["a", "1"]]', b'[["a", true]]', b'[["a", 1], ["a", 2]]'):
        with pytest.raises(BadRequest):
            parse_upload_manifest(bad)


def test_download_request():
    assert parse_download_request(json.dumps(["a", "b"]).encode()) == ["a", "b"]
    with pytest.raises(InvalidRequest):
        parse_download_request(b'"a"')
    with pytest.raises(InvalidRequest):
        parse_download_request(b'["../x"]')


HUGE = "9" * 5000  # past Python's 4,300-digit int limit (issue #15: a 500)


def test_range_numbers_of_any_length():
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={HUGE}-", 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={HUGE}-{HUGE}", 100)
    r = parse_range(f"bytes=5-{HUGE}", 100)
    assert (r.start, r.length) == (5, 95)
    r = parse_range(f"bytes=-{HUGE}", 100)
    assert (r.start, r.length) == (0, 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=\u0661-\u0662", 100)  # other scripts' digits are not numbers here


def test_deeply_nested_flags_body_is_a_bad_request():
    # past the loader's bounds: the caller's mistake, 400 (never a 500)
    for body in [b"[" * 100_000 + b"]" * 100_000, b"[" * 100_000, b"[" + b"1" * 5000 + b"]"]:
        with pytest.raises(BadRequest) as info:
            parse_flags_body(body)
        assert info.value.status == 400
    # not JSON at all: Soledad's own answer (a 500 with a message) is kept
    with pytest.raises(InvalidRequest):
        parse_flags_body(b"not json")


class CountingBody(io.BytesIO):
    """A body that records the most bytes one read returned."""

    most = 0

    def readline(self, size=-1):
        line = super().readline(size)
        self.most = max(self.most, len(line))
        return line


def test_the_manifest_line_is_read_with_a_bound():
    """issue #15: a 120 MiB /stream body with no newline was read whole into memory."""
    body = CountingBody(b"[" * (MAX_MANIFEST_LINE * 3))
    with pytest.raises(BadRequest, match="longer than"):
        read_manifest_line(body)
    assert body.most <= MAX_MANIFEST_LINE + 1
    first = upload_body([("a", b"xyz")])
    assert read_manifest_line(io.BytesIO(first)) == first.split(b"\n")[0] + b"\n"


def test_a_stream_request_names_at_most_max_stream_entries_blobs():
    """Checked on the manifest line, before the body's bytes are read (issue #4)."""
    ids = [f"b{i}" for i in range(MAX_STREAM_ENTRIES + 1)]
    assert len(parse_upload_manifest(json.dumps([[i, 0] for i in ids[:-1]]).encode())) == MAX_STREAM_ENTRIES
    assert len(parse_download_request(json.dumps(ids[:-1]).encode())) == MAX_STREAM_ENTRIES
    with pytest.raises(BadRequest, match="at most 1000"):
        parse_upload_manifest(json.dumps([[i, 0] for i in ids]).encode())
    with pytest.raises(BadRequest, match="at most 1000"):
        parse_download_request(json.dumps(ids).encode())
