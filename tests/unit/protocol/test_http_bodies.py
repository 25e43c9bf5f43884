"""CBOR bodies: round trips, Tahoe's shapes, size limits, and refusal of anything off-schema."""

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.protocol import http_bodies as hb
from shoal.protocol.http_errors import HttpProtocolError, HttpRequestError, HttpResponseError
from shoal.protocol.http_ranges import ByteRange
from shoal.protocol.version import PROTOCOL_KEY, ServerVersion

share_sets = st.frozensets(st.integers(0, 255), max_size=20)
uints = st.integers(0, 2**64 - 1)
small = st.integers(0, 2**40)


def test_version_sends_exactly_tahoes_three_fields_and_decodes_with_the_implied_flags():
    version = ServerVersion(
        maximum_immutable_share_size=100, maximum_mutable_share_size=200, available_space=50,
        tolerates_immutable_read_overrun=True, application_version=b"shoal/0.1.0",
    )
    body = hb.encode_version(version)
    assert cbor2.loads(body) == {
        PROTOCOL_KEY: {b"maximum-immutable-share-size": 100, b"maximum-mutable-share-size": 200,
                       b"available-space": 50},
        b"application-version": b"shoal/0.1.0",
    }
    decoded = hb.decode_version(body)
    assert decoded.available_space == 50 and decoded.maximum_mutable_share_size == 200
    assert decoded.fills_holes_with_zero_bytes and decoded.prevents_read_past_end_of_share_data
    assert decoded.application_version == b"shoal/0.1.0"


def test_version_with_extra_keys_is_refused_as_tahoes_client_refuses_it():
    body = cbor2.dumps(ServerVersion(available_space=1).to_wire())  # the Foolscap form has 7 keys
    with pytest.raises(HttpResponseError):
        hb.decode_version(body)


def test_allocate_is_tahoes_shape_with_a_tagged_set():
    body = hb.AllocateRequest({1, 7}, 12345).encode()
    loaded = cbor2.loads(body)
    assert loaded == {"share-numbers": {1, 7}, "allocated-size": 12345}
    assert b"\xd9\x01\x02" in body  # tag 258
    # a plain list is not a set: Tahoe's schema refuses it
    with pytest.raises(HttpRequestError) as caught:
        hb.decode_allocate_request(cbor2.dumps({"share-numbers": [1, 7], "allocated-size": 1}))
    assert caught.value.status == 400
    assert len(caught.value.message) <= 300


@given(share_sets, uints)
def test_allocate_round_trip(shares, size):
    assert hb.decode_allocate_request(hb.AllocateRequest(shares, size).encode()) == hb.AllocateRequest(shares, size)


@given(share_sets, share_sets)
def test_allocate_response_round_trip(have, allocated):
    value = hb.AllocateResponse(have, allocated)
    assert hb.decode_allocate_response(value.encode()) == value


def test_share_numbers_above_255_are_refused():
    with pytest.raises(HttpRequestError):
        hb.decode_allocate_request(cbor2.dumps({"share-numbers": {256}, "allocated-size": 1}))
    with pytest.raises(HttpResponseError):
        hb.decode_share_numbers(cbor2.dumps({300}))
    with pytest.raises(ValueError):
        hb.AllocateRequest({256}, 1)


def test_oversize_bodies_are_413_before_parsing():
    body = b"\x00" * (hb.MAX_ALLOCATE_BODY + 1)
    with pytest.raises(HttpRequestError) as caught:
        hb.decode_allocate_request(body)
    assert caught.value.status == 413
    with pytest.raises(HttpRequestError) as caught:
        hb.decode_read_test_write_request(b"\x00" * 101, max_size=100)
    assert caught.value.status == 413


@given(st.lists(st.builds(lambda a, b: (min(a, b), max(a, b) + 1), small, small), max_size=5))
def test_upload_progress_round_trip(pairs):
    value = hb.UploadProgress(ByteRange(a, b) for a, b in pairs)
    assert hb.decode_upload_progress(value.encode()) == value
    assert cbor2.loads(value.encode()) == {"required": [{"begin": a, "end": b} for a, b in pairs]}


def test_upload_progress_with_an_empty_range_is_the_servers_fault():
    with pytest.raises(HttpResponseError):
        hb.decode_upload_progress(cbor2.dumps({"required": [{"begin": 5, "end": 5}]}))


@given(share_sets)
def test_share_numbers_round_trip(shares):
    assert hb.decode_share_numbers(hb.encode_share_numbers(shares)) == shares


def test_corruption_advice():
    assert hb.decode_corruption_advice(hb.CorruptionAdvice("bad hash").encode()).reason == "bad hash"
    for body in (cbor2.dumps({"reason": ""}), cbor2.dumps({"reason": b"bytes"}),
                 cbor2.dumps({"reason": "x" * 32766}), cbor2.dumps({"reason": "x", "more": 1})):
        with pytest.raises(HttpRequestError) as caught:
            hb.decode_corruption_advice(body)
        assert caught.value.status in (400, 413)
    with pytest.raises(ValueError):
        hb.CorruptionAdvice("")


test_vectors = st.builds(hb.TestVector, small, small, st.binary(max_size=20))
write_vectors = st.builds(hb.WriteVector, small, st.binary(max_size=20))
read_vectors = st.builds(hb.ReadVector, small, small)
share_tws = st.builds(
    hb.ShareTestWrite, st.lists(test_vectors, max_size=3), st.lists(write_vectors, max_size=3),
    st.one_of(st.none(), small),
)
rtw_requests = st.builds(
    hb.ReadTestWriteRequest,
    st.dictionaries(st.integers(0, 255), share_tws, max_size=4),
    st.lists(read_vectors, max_size=4),
)


@given(rtw_requests)
def test_read_test_write_request_round_trip(request):
    assert hb.decode_read_test_write_request(request.encode()) == request


def test_read_test_write_request_is_tahoes_shape():
    request = hb.ReadTestWriteRequest(
        {0: hb.ShareTestWrite([hb.TestVector(3, 5, b"hello")], [hb.WriteVector(9, b"world")], 5)},
        [hb.ReadVector(3, 12)],
    )
    assert cbor2.loads(request.encode()) == {
        "test-write-vectors": {0: {"test": [{"offset": 3, "size": 5, "specimen": b"hello"}],
                                   "write": [{"offset": 9, "data": b"world"}], "new-length": 5}},
        "read-vector": [{"offset": 3, "size": 12}],
    }


def test_read_test_write_limits():
    too_many_reads = cbor2.dumps({"test-write-vectors": {}, "read-vector": [{"offset": 0, "size": 1}] * 31})
    with pytest.raises(HttpRequestError):
        hb.decode_read_test_write_request(too_many_reads)
    too_many_tests = cbor2.dumps({
        "test-write-vectors": {0: {"test": [{"offset": 0, "size": 1, "specimen": b""}] * 31,
                                   "write": [], "new-length": None}},
        "read-vector": [],
    })
    with pytest.raises(HttpRequestError):
        hb.decode_read_test_write_request(too_many_tests)
    with pytest.raises(HttpRequestError):  # negative offsets are not uint
        hb.decode_read_test_write_request(cbor2.dumps({"test-write-vectors": {},
                                                       "read-vector": [{"offset": -1, "size": 1}]}))
    with pytest.raises(HttpRequestError):
        hb.decode_read_test_write_request(cbor2.dumps({"test-write-vectors": {300: {
            "test": [], "write": [], "new-length": None}}, "read-vector": []}))


@given(st.booleans(), st.dictionaries(st.integers(0, 255), st.lists(st.binary(max_size=10), max_size=3), max_size=4))
def test_read_test_write_response_round_trip(success, data):
    value = hb.ReadTestWriteResponse(success, data)
    assert hb.decode_read_test_write_response(value.encode()) == value
    assert value.as_dict() == data


DECODERS = [
    (hb.decode_allocate_request, HttpRequestError),
    (hb.decode_corruption_advice, HttpRequestError),
    (hb.decode_read_test_write_request, HttpRequestError),
    (hb.decode_version, HttpResponseError),
    (hb.decode_allocate_response, HttpResponseError),
    (hb.decode_upload_progress, HttpResponseError),
    (hb.decode_share_numbers, HttpResponseError),
    (hb.decode_read_test_write_response, HttpResponseError),
]

cbor_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.binary(max_size=8),
              st.text(max_size=8), st.floats(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=12),
                            st.integers(0, 300), st.binary(max_size=4)), inner, max_size=4),
                            st.frozensets(st.integers(0, 300), max_size=4)),
    max_leaves=12,
)


@given(st.one_of(st.binary(max_size=64), cbor_values.map(cbor2.dumps)))
def test_any_body_decodes_or_is_refused_as_the_right_sides_fault(body):
    for decode, error in DECODERS:
        try:
            decode(body)
        except HttpProtocolError as refused:
            assert isinstance(refused, error)
            assert refused.status in (400, 413)
