"""The immutable share container: 12-byte header, data at 0x0c, leases at the end."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.formats.errors import CorruptContainerError, UnknownContainerVersionError
from shoal.formats.immutable_container import (
    DATA_OFFSET,
    HEADER_SIZE,
    LEASE_COUNT_OFFSET,
    LEASE_SIZE,
    ImmutableHeader,
    pack_leases,
    schema_for_version,
    unpack_leases,
)
from shoal.formats.lease import LeaseInfo, LeaseSchema
from tests.strategies import lease_infos, uint32s

RENEW, CANCEL = b"\x11" * 32, b"\x22" * 32


def test_constants():
    assert HEADER_SIZE == DATA_OFFSET == 0x0C
    assert LEASE_COUNT_OFFSET == 8
    assert LEASE_SIZE == 72


def test_new_share_header_bytes():
    assert ImmutableHeader.for_new_share(1000).to_bytes() == (
        b"\x00\x00\x00\x02" + b"\x00\x00\x03\xe8" + b"\x00\x00\x00\x00"
    )
    assert ImmutableHeader.for_new_share(1000, version=1).to_bytes()[:4] == b"\x00\x00\x00\x01"


def test_legacy_length_saturates():
    assert ImmutableHeader.for_new_share(2**32 - 1).legacy_data_length == 2**32 - 1
    assert ImmutableHeader.for_new_share(2**40).legacy_data_length == 2**32 - 1
    assert ImmutableHeader.for_new_share(2**40).to_bytes()[4:8] == b"\xff\xff\xff\xff"


def test_parse_header():
    header = ImmutableHeader.from_bytes(b"\x00\x00\x00\x01\x00\x00\x00\x10\x00\x00\x00\x02rest")
    assert header == ImmutableHeader(version=1, legacy_data_length=16, lease_count=2)
    assert header.lease_schema is LeaseSchema.PLAINTEXT
    assert ImmutableHeader.for_new_share(5).lease_schema is LeaseSchema.HASHED


@pytest.mark.parametrize("version", [0, 3, 2**32 - 1])
def test_unknown_version(version):
    data = version.to_bytes(4, "big") + bytes(8)
    with pytest.raises(UnknownContainerVersionError, match=str(version)):
        ImmutableHeader.from_bytes(data)


def test_short_header():
    with pytest.raises(CorruptContainerError, match="12"):
        ImmutableHeader.from_bytes(b"\x00\x00\x00\x02")


def test_schema_for_version():
    assert schema_for_version(1) is LeaseSchema.PLAINTEXT
    assert schema_for_version(2) is LeaseSchema.HASHED
    with pytest.raises(UnknownContainerVersionError):
        schema_for_version(7)


def test_lease_offsets():
    header = ImmutableHeader(2, 100, 2)
    file_size = DATA_OFFSET + 100 + 2 * LEASE_SIZE
    assert header.lease_offset(file_size) == DATA_OFFSET + 100
    assert header.data_length(file_size) == 100
    assert header.lease_record_offset(file_size, 1) == DATA_OFFSET + 100 + LEASE_SIZE
    with pytest.raises(IndexError):
        header.lease_record_offset(file_size, 2)
    with pytest.raises(CorruptContainerError, match="2 leases"):
        header.lease_offset(DATA_OFFSET + LEASE_SIZE)
    assert ImmutableHeader(2, 0, 0).data_length(DATA_OFFSET) == 0


def test_whole_container_known_bytes():
    # a v1 container with 3 bytes of data and one lease, written out by hand
    lease = LeaseInfo(owner_num=1, renew_secret=RENEW, cancel_secret=CANCEL, expiration_time=7)
    header = ImmutableHeader.for_new_share(3, version=1).with_lease_count(1)
    container = header.to_bytes() + b"abc" + pack_leases([lease], header.lease_schema)
    assert container == (
        b"\x00\x00\x00\x01\x00\x00\x00\x03\x00\x00\x00\x01"
        + b"abc"
        + b"\x00\x00\x00\x01" + RENEW + CANCEL + b"\x00\x00\x00\x07"
    )
    parsed = ImmutableHeader.from_bytes(container)
    start = parsed.lease_offset(len(container))
    assert container[DATA_OFFSET:start] == b"abc"
    assert unpack_leases(container[start:], parsed.lease_schema) == [lease]


def test_header_validation():
    with pytest.raises(ValueError):
        ImmutableHeader(3, 0, 0)
    with pytest.raises(ValueError):
        ImmutableHeader(2, 2**32, 0)
    with pytest.raises(ValueError):
        ImmutableHeader(2, 0, -1)
    with pytest.raises(ValueError):
        ImmutableHeader.for_new_share(-1)


def test_unpack_leases_needs_whole_records():
    with pytest.raises(CorruptContainerError, match="72"):
        unpack_leases(bytes(73), LeaseSchema.HASHED)
    assert unpack_leases(b"", LeaseSchema.HASHED) == []


@given(st.sampled_from([1, 2]), uint32s, uint32s)
def test_header_round_trip(version, length, count):
    header = ImmutableHeader(version, length, count)
    assert ImmutableHeader.from_bytes(header.to_bytes()) == header


@given(st.lists(lease_infos(with_nodeid=False), max_size=5), st.sampled_from(LeaseSchema))
def test_leases_round_trip(leases, schema):
    area = pack_leases(leases, schema)
    assert len(area) == len(leases) * LEASE_SIZE
    assert unpack_leases(area, schema) == [lease.for_schema(schema) for lease in leases]


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=2**40))
def test_random_bytes_only_raise_corrupt_container(data, file_size):
    try:
        header = ImmutableHeader.from_bytes(data)
        header.data_length(file_size)
        unpack_leases(data[HEADER_SIZE:], header.lease_schema)
    except CorruptContainerError:
        pass
