"""The CBOR bodies of Tahoe-LAFS 1.20's HTTP storage protocol, checked against its CDDL schemas.

Each body is a frozen value with ``encode`` (to CBOR bytes, as cbor2.dumps
writes them: Python sets as tag 258) and a ``decode_*`` function that first
refuses oversize input, then validates it against the CDDL schema Tahoe 1.20
uses on that side (pycddl, which also decodes), then checks what CDDL cannot
say (share numbers 0-255). Request schemas and size limits are those of
Tahoe's http_server.py, response schemas those of its http_client.py.

A request that fails is ``HttpRequestError`` (400, or 413 when too large);
a response that fails is ``HttpResponseError`` (the server's fault).
Decoding a large body is CPU work: shells run it off the reactor thread.

The version answer sends exactly three fields: Tahoe's client schema
refuses any other key, and adds the four feature flags itself.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs
import cbor2
import pycddl

from shoal.protocol.http_errors import (
    BAD_REQUEST,
    TOO_LARGE,
    HttpProtocolError,
    HttpRequestError,
    HttpResponseError,
)
from shoal.protocol.http_ranges import ByteRange
from shoal.protocol.version import (
    APPLICATION_VERSION_KEY,
    PROTOCOL_KEY,
    ServerVersion,
    VersionError,
)

T = TypeVar("T")

MAX_SHARE_NUMBER = 255
MAX_UINT64 = 2**64 - 1

# request body limits of Tahoe 1.20's server; shoal caps read-test-write bodies
# (Tahoe: 2**48) because the decoded vectors live in memory
MAX_ALLOCATE_BODY = 8192
MAX_CORRUPT_BODY = 32768
MAX_READ_TEST_WRITE_BODY = 2**30
MAX_REASON_SIZE = 32765
MAX_TEST_VECTORS = 30
MAX_READ_VECTORS = 30

# response body limits a client applies (Tahoe's client reads at most 30 MiB)
MAX_SMALL_RESPONSE = 64 * 1024
MAX_READ_TEST_WRITE_RESPONSE = 30 * 1024 * 1024

_REQUEST_SCHEMAS = {
    "allocate": pycddl.Schema(
        """
        request = {
          share-numbers: #6.258([0*256 uint])
          allocated-size: uint
        }
        """
    ),
    "corrupt": pycddl.Schema(
        """
        request = {
          reason: tstr .size (1..32765)
        }
        """
    ),
    "read-test-write": pycddl.Schema(
        """
        request = {
            "test-write-vectors": {
                0*256 share_number : {
                    "test": [0*30 {"offset": uint, "size": uint, "specimen": bstr}]
                    "write": [* {"offset": uint, "data": bstr}]
                    "new-length": uint / null
                }
            }
            "read-vector": [0*30 {"offset": uint, "size": uint}]
        }
        share_number = uint
        """
    ),
}

_RESPONSE_SCHEMAS = {
    "version": pycddl.Schema(
        """
        response = {'http://allmydata.org/tahoe/protocols/storage/v1' => {
                 'maximum-immutable-share-size' => uint
                 'maximum-mutable-share-size' => uint
                 'available-space' => uint
                 }
                 'application-version' => bstr
              }
        """
    ),
    "allocate": pycddl.Schema(
        """
        response = {
          already-have: #6.258([0*256 uint])
          allocated: #6.258([0*256 uint])
        }
        """
    ),
    "write": pycddl.Schema(
        """
        response = {
          required: [0* {begin: uint, end: uint}]
        }
        """
    ),
    "shares": pycddl.Schema(
        """
        response = #6.258([0*256 uint])
        """
    ),
    "read-test-write": pycddl.Schema(
        """
        response = {
          "success": bool,
          "data": {0*256 share_number: [0* bstr]}
        }
        share_number = uint
        """
    ),
}


def _validate(schema: pycddl.Schema, body: bytes, max_size: int, *, request: bool, what: str) -> Any:
    error: type[HttpProtocolError] = HttpRequestError if request else HttpResponseError
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} body must be bytes")
    if len(body) > max_size:
        raise error(TOO_LARGE, f"{what} body of {len(body)} bytes is over the {max_size}-byte limit")
    try:
        return schema.validate_cbor(body, True)
    except pycddl.ValidationError as failure:
        raise error(BAD_REQUEST, f"{what} body does not match its schema: {failure}") from None
    except (ValueError, TypeError, OverflowError) as failure:  # undecodable CBOR
        raise error(BAD_REQUEST, f"{what} body is not CBOR: {failure}") from None


def _built(build: Callable[[], T], *, request: bool, what: str) -> T:
    """``build()``, with a value's own checks failing as the sending side's fault."""
    try:
        return build()
    except (ValueError, TypeError, KeyError) as failure:
        error = HttpRequestError if request else HttpResponseError
        raise error(BAD_REQUEST, f"{what} body: {failure}") from None


def _share_numbers(values: Iterable[int], *, request: bool, what: str) -> frozenset[int]:
    numbers = frozenset(values)
    for n in numbers:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_SHARE_NUMBER:
            error = HttpRequestError if request else HttpResponseError
            raise error(BAD_REQUEST, f"{what}: share number {n!r:.20} is not in 0..{MAX_SHARE_NUMBER}")
    return numbers


def _check_shares(instance: object, attribute: attrs.Attribute, value: frozenset[int]) -> None:  # type: ignore[type-arg]
    for n in value:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_SHARE_NUMBER:
            raise ValueError(f"{attribute.name}: {n!r} is not a share number")


def _check_uint(instance: object, attribute: attrs.Attribute, value: int) -> None:  # type: ignore[type-arg]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UINT64:
        raise ValueError(f"{attribute.name}: {value!r} is not an unsigned 64-bit int")


def _check_bytes(instance: object, attribute: attrs.Attribute, value: bytes) -> None:  # type: ignore[type-arg]
    if not isinstance(value, bytes):
        raise ValueError(f"{attribute.name} must be bytes")


def _frozen_shares(values: Iterable[int]) -> frozenset[int]:
    return frozenset(values)


def _ranges(values: Iterable[ByteRange]) -> tuple[ByteRange, ...]:
    return tuple(values)


def _tests(values: Iterable["TestVector"]) -> tuple["TestVector", ...]:
    return tuple(values)


def _writes(values: Iterable["WriteVector"]) -> tuple["WriteVector", ...]:
    return tuple(values)


def _reads(values: Iterable["ReadVector"]) -> tuple["ReadVector", ...]:
    return tuple(values)


# -- GET /storage/v1/version ---------------------------------------------------


def encode_version(version: ServerVersion) -> bytes:
    """The version answer: the three sizes and the application version, nothing else."""
    available = version.available_space
    return cbor2.dumps({
        PROTOCOL_KEY: {
            b"maximum-immutable-share-size": version.maximum_immutable_share_size,
            b"maximum-mutable-share-size": version.maximum_mutable_share_size,
            b"available-space": version.maximum_immutable_share_size if available is None else available,
        },
        APPLICATION_VERSION_KEY: version.application_version,
    })


def decode_version(body: bytes) -> ServerVersion:
    """A server's version answer; the feature flags the HTTP protocol implies are set, as Tahoe's client sets them."""
    answer = _validate(_RESPONSE_SCHEMAS["version"], body, MAX_SMALL_RESPONSE, request=False, what="version")
    v1 = answer[PROTOCOL_KEY]
    try:
        parsed = ServerVersion.parse(answer)
    except VersionError as failure:
        raise HttpResponseError(BAD_REQUEST, f"version body: {failure}") from None
    return attrs.evolve(
        parsed,
        available_space=v1[b"available-space"],
        tolerates_immutable_read_overrun=True,
        delete_mutable_shares_with_zero_length_writev=True,
        fills_holes_with_zero_bytes=True,
        prevents_read_past_end_of_share_data=True,
    )


# -- POST /storage/v1/immutable/:storage_index ----------------------------------


@attrs.frozen
class AllocateRequest:
    share_numbers: frozenset[int] = attrs.field(converter=_frozen_shares, validator=_check_shares)
    allocated_size: int = attrs.field(validator=_check_uint)

    def encode(self) -> bytes:
        return cbor2.dumps({"share-numbers": set(self.share_numbers), "allocated-size": self.allocated_size})


def decode_allocate_request(body: bytes) -> AllocateRequest:
    msg = _validate(_REQUEST_SCHEMAS["allocate"], body, MAX_ALLOCATE_BODY, request=True, what="allocate")
    shares = _share_numbers(msg["share-numbers"], request=True, what="allocate")
    return _built(lambda: AllocateRequest(shares, msg["allocated-size"]), request=True, what="allocate")


@attrs.frozen
class AllocateResponse:
    already_have: frozenset[int] = attrs.field(converter=_frozen_shares, validator=_check_shares)
    allocated: frozenset[int] = attrs.field(converter=_frozen_shares, validator=_check_shares)

    def encode(self) -> bytes:
        return cbor2.dumps({"already-have": set(self.already_have), "allocated": set(self.allocated)})


def decode_allocate_response(body: bytes) -> AllocateResponse:
    msg = _validate(_RESPONSE_SCHEMAS["allocate"], body, MAX_SMALL_RESPONSE, request=False, what="allocate")
    return _built(lambda: AllocateResponse(
        _share_numbers(msg["already-have"], request=False, what="allocate already-have"),
        _share_numbers(msg["allocated"], request=False, what="allocate allocated"),
    ), request=False, what="allocate")


# -- PATCH /storage/v1/immutable/:storage_index/:share_number ----------------------


@attrs.frozen
class UploadProgress:
    """The answer to an upload chunk: which ranges of the share are still missing."""

    required: tuple[ByteRange, ...] = attrs.field(converter=_ranges)

    def encode(self) -> bytes:
        return cbor2.dumps({"required": [{"begin": r.start, "end": r.end} for r in self.required]})


def decode_upload_progress(body: bytes) -> UploadProgress:
    msg = _validate(_RESPONSE_SCHEMAS["write"], body, MAX_SMALL_RESPONSE, request=False, what="upload progress")
    return _built(lambda: UploadProgress(ByteRange(r["begin"], r["end"]) for r in msg["required"]),
                  request=False, what="upload progress")


# -- GET /storage/v1/{immutable,mutable}/:storage_index/shares ---------------------


def encode_share_numbers(share_numbers: Iterable[int]) -> bytes:
    numbers = frozenset(share_numbers)
    _check_shares(None, attrs.fields(AllocateResponse).allocated, numbers)
    return cbor2.dumps(set(numbers))


def decode_share_numbers(body: bytes) -> frozenset[int]:
    msg = _validate(_RESPONSE_SCHEMAS["shares"], body, MAX_SMALL_RESPONSE, request=False, what="share list")
    return _share_numbers(msg, request=False, what="share list")


# -- POST /storage/v1/{immutable,mutable}/:storage_index/:share_number/corrupt -----


def _check_reason(instance: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value.encode("utf-8")) <= MAX_REASON_SIZE:
        raise ValueError(f"reason must be text of 1..{MAX_REASON_SIZE} UTF-8 bytes")


@attrs.frozen
class CorruptionAdvice:
    reason: str = attrs.field(validator=_check_reason)

    def encode(self) -> bytes:
        return cbor2.dumps({"reason": self.reason})


def decode_corruption_advice(body: bytes) -> CorruptionAdvice:
    msg = _validate(_REQUEST_SCHEMAS["corrupt"], body, MAX_CORRUPT_BODY, request=True, what="corruption advice")
    return _built(lambda: CorruptionAdvice(msg["reason"]), request=True, what="corruption advice")


# -- POST /storage/v1/mutable/:storage_index/read-test-write ------------------------


@attrs.frozen
class TestVector:
    """The share's bytes [offset, offset+size) must equal ``specimen`` (Tahoe's only operator, eq)."""

    offset: int = attrs.field(validator=_check_uint)
    size: int = attrs.field(validator=_check_uint)
    specimen: bytes = attrs.field(validator=_check_bytes)


@attrs.frozen
class WriteVector:
    offset: int = attrs.field(validator=_check_uint)
    data: bytes = attrs.field(validator=_check_bytes)


@attrs.frozen
class ReadVector:
    offset: int = attrs.field(validator=_check_uint)
    size: int = attrs.field(validator=_check_uint)


def _check_new_length(instance: object, attribute: attrs.Attribute, value: int | None) -> None:  # type: ignore[type-arg]
    if value is not None:
        _check_uint(instance, attribute, value)


@attrs.frozen
class ShareTestWrite:
    """One share's tests, writes and new length (None: keep; 0: delete the share)."""

    tests: tuple[TestVector, ...] = attrs.field(converter=_tests, default=())
    writes: tuple[WriteVector, ...] = attrs.field(converter=_writes, default=())
    new_length: int | None = attrs.field(default=None, validator=_check_new_length)

    def __attrs_post_init__(self) -> None:
        if len(self.tests) > MAX_TEST_VECTORS:
            raise ValueError(f"more than {MAX_TEST_VECTORS} test vectors")


def _sorted_pairs(value: Mapping[int, ShareTestWrite] | Iterable[tuple[int, ShareTestWrite]]
                  ) -> tuple[tuple[int, ShareTestWrite], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


def _check_vectors(instance: object, attribute: object,
                   value: tuple[tuple[int, ShareTestWrite], ...]) -> None:
    numbers = [shnum for shnum, _ in value]
    if len(set(numbers)) != len(numbers):
        raise ValueError("a share number appears twice")
    _check_shares(instance, attrs.fields(AllocateResponse).allocated, frozenset(numbers))


def _check_reads(instance: object, attribute: object, value: tuple[ReadVector, ...]) -> None:
    if len(value) > MAX_READ_VECTORS:
        raise ValueError(f"more than {MAX_READ_VECTORS} read vectors")


@attrs.frozen
class ReadTestWriteRequest:
    """Test every share's vectors; if all pass, write; read ``read_vector`` from every share first."""

    test_write_vectors: tuple[tuple[int, ShareTestWrite], ...] = attrs.field(
        converter=_sorted_pairs, validator=_check_vectors
    )
    read_vector: tuple[ReadVector, ...] = attrs.field(converter=_reads, validator=_check_reads)

    def encode(self) -> bytes:
        return cbor2.dumps({
            "test-write-vectors": {
                shnum: {
                    "test": [{"offset": t.offset, "size": t.size, "specimen": t.specimen} for t in v.tests],
                    "write": [{"offset": w.offset, "data": w.data} for w in v.writes],
                    "new-length": v.new_length,
                }
                for shnum, v in self.test_write_vectors
            },
            "read-vector": [{"offset": r.offset, "size": r.size} for r in self.read_vector],
        })


def decode_read_test_write_request(body: bytes, max_size: int = MAX_READ_TEST_WRITE_BODY) -> ReadTestWriteRequest:
    msg = _validate(_REQUEST_SCHEMAS["read-test-write"], body, max_size, request=True, what="read-test-write")
    vectors = msg["test-write-vectors"]
    _share_numbers(vectors, request=True, what="read-test-write")
    return _built(lambda: ReadTestWriteRequest(
        {
            shnum: ShareTestWrite(
                [TestVector(t["offset"], t["size"], t["specimen"]) for t in v["test"]],
                [WriteVector(w["offset"], w["data"]) for w in v["write"]],
                v["new-length"],
            )
            for shnum, v in vectors.items()
        },
        [ReadVector(r["offset"], r["size"]) for r in msg["read-vector"]],
    ), request=True, what="read-test-write")


def _check_data(instance: object, attribute: object, value: tuple[tuple[int, tuple[bytes, ...]], ...]) -> None:
    _check_shares(instance, attrs.fields(AllocateResponse).allocated, frozenset(n for n, _ in value))
    for _, items in value:
        if not all(isinstance(item, bytes) for item in items):
            raise ValueError("read data must be bytes")


def _data_pairs(value: Mapping[int, Iterable[bytes]] | Iterable[tuple[int, Iterable[bytes]]]
                ) -> tuple[tuple[int, tuple[bytes, ...]], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted(((shnum, tuple(items)) for shnum, items in pairs), key=lambda pair: pair[0]))


@attrs.frozen
class ReadTestWriteResponse:
    """Whether the tests passed (and the writes happened), and the data read before writing."""

    success: bool
    data: tuple[tuple[int, tuple[bytes, ...]], ...] = attrs.field(converter=_data_pairs, validator=_check_data)

    def as_dict(self) -> dict[int, list[bytes]]:
        return {shnum: list(items) for shnum, items in self.data}

    def encode(self) -> bytes:
        return cbor2.dumps({"success": bool(self.success), "data": self.as_dict()})


def decode_read_test_write_response(body: bytes) -> ReadTestWriteResponse:
    msg = _validate(_RESPONSE_SCHEMAS["read-test-write"], body, MAX_READ_TEST_WRITE_RESPONSE,
                    request=False, what="read-test-write")
    _share_numbers(msg["data"], request=False, what="read-test-write")
    return _built(lambda: ReadTestWriteResponse(msg["success"], msg["data"]), request=False, what="read-test-write")
