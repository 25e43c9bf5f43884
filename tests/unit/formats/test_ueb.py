"""The URI extension block: serialization, parsing, validation."""

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.encoding.netstring import netstring
from shoal.formats.errors import BadUEBError, FormatError
from shoal.formats.ueb import (
    MAX_UEB_SIZE,
    UEB,
    codec_params,
    pack_ueb,
    unpack_ueb,
)
from tests.strategies import ueb_field_maps, uebs

H1, H2, H3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32

# A 1000-byte file, k=3, N=10: the segment is min(1 MiB, 1000) rounded up to a
# multiple of 3 = 1002, one segment, tail 1000 padded to 1002. Written out by
# hand in Tahoe's sorted key order.
KNOWN_UEB = (
    b"codec_name:3:crs,"
    b"codec_params:9:1002-3-10,"
    b"crypttext_hash:32:" + H1 + b","
    b"crypttext_root_hash:32:" + H2 + b","
    b"needed_shares:1:3,"
    b"num_segments:1:1,"
    b"segment_size:4:1002,"
    b"share_root_hash:32:" + H3 + b","
    b"size:4:1000,"
    b"tail_codec_params:9:1002-3-10,"
    b"total_shares:2:10,"
)


def known_ueb() -> UEB:
    return UEB.build(
        size=1000,
        segment_size=1002,
        needed_shares=3,
        total_shares=10,
        crypttext_hash=H1,
        crypttext_root_hash=H2,
        share_root_hash=H3,
    )


def test_pack_known_bytes():
    assert pack_ueb({"size": 5, "a": b"xyz", "B-_": b""}) == b"B-_:0:,a:3:xyz,size:1:5,"


def test_unpack_known_bytes():
    assert unpack_ueb(b"size:1:5,a:3:xyz,") == {"size": 5, "a": b"xyz"}
    assert unpack_ueb(b"") == {}


def test_unknown_keys_stay_bytes_even_if_numeric():
    assert unpack_ueb(b"plaintext_hash:2:12,") == {"plaintext_hash": b"12"}


def test_known_ueb_bytes():
    ueb = known_ueb()
    assert ueb.to_bytes() == KNOWN_UEB
    assert UEB.from_bytes(KNOWN_UEB) == ueb
    assert ueb.block_size == 334
    assert ueb.tail_data_size == 1000
    assert ueb.tail_segment_size == 1002
    assert ueb.tail_block_size == 334


def test_multi_segment_tail():
    # 2,500,000 bytes in 1,048,578-byte segments: 3 segments, the tail holds
    # 2,500,000 - 2 * 1,048,578 = 402,844 bytes, padded to 402,846 for k=3.
    ueb = UEB.build(
        size=2_500_000,
        segment_size=1_048_578,
        needed_shares=3,
        total_shares=10,
        crypttext_hash=H1,
        crypttext_root_hash=H2,
        share_root_hash=H3,
    )
    assert ueb.num_segments == 3
    assert ueb.codec_params == b"1048578-3-10"
    assert ueb.tail_codec_params == b"402846-3-10"
    assert ueb.tail_data_size == 402_844


def test_exact_multiple_has_full_tail():
    ueb = UEB.build(size=2004, segment_size=1002, needed_shares=3, total_shares=10,
                    crypttext_hash=H1, crypttext_root_hash=H2, share_root_hash=H3)
    assert ueb.num_segments == 2
    assert ueb.tail_codec_params == b"1002-3-10"


def test_extra_keys_are_kept():
    extra = b"plaintext_hash:32:" + H1 + b","
    data = KNOWN_UEB.replace(b"segment_size:", extra + b"segment_size:")
    ueb = UEB.from_bytes(data)
    assert ueb.extra == (("plaintext_hash", H1),)
    assert ueb.to_bytes() == data


def test_from_bytes_rejects_unsorted_keys():
    first, rest = KNOWN_UEB.split(b"codec_params:", 1)
    shuffled = b"codec_params:" + rest + first
    assert unpack_ueb(shuffled) == unpack_ueb(KNOWN_UEB)  # Tahoe's reader does not mind
    with pytest.raises(BadUEBError, match="sorted"):
        UEB.from_bytes(shuffled)


@pytest.mark.parametrize(
    "old, new, field",
    [
        (b"codec_name:3:crs", b"codec_name:3:xyz", "codec_name"),
        (b"num_segments:1:1", b"num_segments:1:2", "num_segments"),
        (b"codec_params:9:1002-3-10", b"codec_params:9:1002-3-11", "codec_params"),
        (b"tail_codec_params:9:1002-3-10", b"tail_codec_params:9:1000-3-10", "tail_codec_params"),
        (b"needed_shares:1:3", b"needed_shares:2:11", "needed_shares"),
        (b"crypttext_hash:32:" + H1, b"crypttext_hash:31:" + H1[:31], "crypttext_hash"),
        (b"size:4:1000", b"size:1:0", "size"),
    ],
)
def test_inconsistent_fields_are_named(old, new, field):
    assert old in KNOWN_UEB
    with pytest.raises(BadUEBError, match=field):
        UEB.from_bytes(KNOWN_UEB.replace(old, new))


def test_missing_key_is_named():
    data = KNOWN_UEB.replace(b"share_root_hash:32:" + H3 + b",", b"")
    with pytest.raises(BadUEBError, match="share_root_hash"):
        UEB.from_bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        b"size",  # no colon
        b"size:",  # no netstring
        b"si ze:1:5,",  # bad key
        b":1:5,",  # empty key
        b"size:1:5",  # no comma
        b"size:2:5,",  # truncated
        b"size:1:5,size:1:5,",  # duplicate
        b"size:2:05,",  # non-canonical int
        b"size:2:-5,",
        b"size:1: ,",
        b"size:01:5,",  # non-canonical length
        b"a:1:x,junk",
        b"\xff:1:x,",
    ],
)
def test_unpack_rejects(data):
    with pytest.raises(BadUEBError):
        unpack_ueb(data)


def test_size_limit():
    value = b"x" * (MAX_UEB_SIZE - len(b"a:1996:,"))
    data = b"a:" + netstring(value)
    assert len(data) == MAX_UEB_SIZE
    assert unpack_ueb(data) == {"a": value}
    assert pack_ueb({"a": value}) == data
    with pytest.raises(BadUEBError, match="1999"):
        unpack_ueb(b"a:" + netstring(value + b"x"))
    with pytest.raises(ValueError):
        pack_ueb({"a": value + b"x"})
    with pytest.raises(BadUEBError, match="exceeds"):
        attrs.evolve(known_ueb(), extra=(("zz", value),))


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"bad key": b""}, ValueError),
        ({"size": b"5"}, TypeError),
        ({"size": True}, TypeError),
        ({"size": -1}, ValueError),
        ({"hash": 5}, TypeError),
        ({"hash": "text"}, TypeError),
    ],
)
def test_pack_rejects(fields, error):
    with pytest.raises(error):
        pack_ueb(fields)


def test_check_matches_cap():
    ueb = known_ueb()
    ueb.check_matches_cap(3, 10, 1000)
    for args, field in [((2, 10, 1000), "needed_shares"), ((3, 9, 1000), "total_shares"),
                        ((3, 10, 999), "size")]:
        with pytest.raises(BadUEBError, match=field):
            ueb.check_matches_cap(*args)


def test_extra_must_be_unknown_sorted_keys():
    base = known_ueb()
    with pytest.raises(BadUEBError):
        attrs.evolve(base, extra=(("size", b"1"),))
    with pytest.raises(BadUEBError):
        attrs.evolve(base, extra=(("b", b""), ("a", b"")))
    with pytest.raises(TypeError):
        attrs.evolve(base, extra=(("a", 1),))


def test_codec_params():
    assert codec_params(131073, 3, 10) == b"131073-3-10"


@given(ueb_field_maps())
def test_pack_unpack_round_trip(fields):
    assert unpack_ueb(pack_ueb(fields)) == fields


@given(uebs())
def test_ueb_round_trip(ueb):
    data = ueb.to_bytes()
    assert len(data) <= MAX_UEB_SIZE
    assert UEB.from_bytes(data) == ueb
    assert unpack_ueb(data) == ueb.to_fields()


@given(st.binary(max_size=2100))
def test_random_bytes_only_raise_bad_ueb(data):
    for parse in (unpack_ueb, UEB.from_bytes):
        try:
            parse(data)
        except BadUEBError:
            pass


@given(uebs(with_extra=False), st.data())
def test_mutated_uebs_only_raise_bad_ueb(ueb, data):
    blob = bytearray(ueb.to_bytes())
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
        blob[at] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        UEB.from_bytes(bytes(blob))
    except FormatError as e:
        assert isinstance(e, BadUEBError)
