"""The Blockstack driver's pure parts: mutable records, names, URLs, hash keys."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import shoal.apps.blockstack as driver
from shoal.apps.blockstack.records import (
    KIND_DATA,
    KIND_TOMBSTONE,
    Record,
    RecordError,
    make_url,
    mutable_name,
    normalize_hash,
    pack_record,
    parse_url,
    unpack_record,
)

DIRCAP = "URI:DIR2-RO:aaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


@given(st.sampled_from([KIND_DATA, KIND_TOMBSTONE]), st.integers(0, 2**64 - 1), st.binary())
def test_record_roundtrip(kind, version, payload):
    record = Record(kind, version, payload)
    assert unpack_record(pack_record(record)) == record


def test_record_rejects_foreign_bytes():
    for bad in (b"", b"SBM1", b"XXXX" + bytes(9), b"SBM1\x07" + bytes(8)):
        with pytest.raises(RecordError):
            unpack_record(bad)


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_url_roundtrip(data_id):
    url = make_url(DIRCAP, data_id)
    assert driver.handles_url(url)
    assert parse_url(url) == (DIRCAP, mutable_name(data_id))
    assert bytes.fromhex(parse_url(url)[1][2:]).decode("utf-8") == data_id


def test_foreign_urls_and_hashes():
    for url in ("http://example.com/x", "shoal:", "shoal:cap/i-00", "shoal:cap/m-zz", None, 5, "file:///x"):
        assert not driver.handles_url(url)
    h = hashlib.sha256(b"x").hexdigest()
    assert normalize_hash(h.upper()) == h and normalize_hash(h.encode()) == h
    assert normalize_hash(h[:-1]) is None and normalize_hash("g" * 64) is None


def test_handlers_before_init_return_failure_values():
    saved = driver._driver
    driver._driver = None
    try:
        assert driver.get_immutable_handler("00" * 32) is None
        assert driver.get_mutable_handler(make_url(DIRCAP, "x")) is None
        assert driver.put_mutable_handler("x", "y") is False
        assert driver.put_immutable_handler("00" * 32, "y", "tx") is False
        assert driver.delete_mutable_handler("x", "sig") is False
        assert driver.make_mutable_url("x") is None
    finally:
        driver._driver = saved


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_immutable_data_keeps_its_type(data):
    from shoal.apps.blockstack.records import as_bytes, pack_immutable, unpack_immutable
    key = hashlib.sha256(as_bytes(data)).hexdigest()
    got = unpack_immutable(pack_immutable(data), key)
    assert type(got) is type(data) and got == data
    assert unpack_immutable(pack_immutable(data), hashlib.sha256(b"other" + as_bytes(data)).hexdigest()) is None


def test_immutable_bytes_that_look_like_text_stay_bytes():
    from shoal.apps.blockstack.records import TEXT_MAGIC, unpack_immutable
    raw = TEXT_MAGIC + b"abc"
    assert unpack_immutable(raw, hashlib.sha256(raw).hexdigest()) == raw


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)), st.integers(0, 2**64 - 1))
def test_mutable_record_keeps_the_type(data, version):
    from shoal.apps.blockstack.records import as_bytes, data_kind
    record = unpack_record(pack_record(Record(data_kind(data), version, as_bytes(data))))
    assert type(record.data()) is type(data) and record.data() == data and not record.is_tombstone
