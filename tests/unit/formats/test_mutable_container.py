"""The mutable slot container: magic, write enabler, lease slots, extra leases."""

import hashlib

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.formats.errors import CorruptContainerError, UnknownContainerVersionError
from shoal.formats.lease import LeaseInfo, LeaseSchema
from shoal.formats.mutable_container import (
    DATA_LENGTH_OFFSET,
    DATA_OFFSET,
    EMPTY_LEASE_SLOT,
    EXTRA_LEASE_POINTER_OFFSET,
    HEADER_SIZE,
    LEASE_SIZE,
    LEASE_SLOTS_OFFSET,
    MAGIC_V1,
    MAGIC_V2,
    MAX_DATA_LENGTH,
    NEW_CONTAINER_SIZE,
    MutableHeader,
    extra_lease_area_end,
    is_mutable_container,
    lease_slot_offset,
    new_container,
    pack_extra_leases,
    pack_lease_slot,
    pack_lease_slots,
    parse_extra_lease_count,
    schema_for_version,
    unpack_extra_leases,
    unpack_lease_slot,
    unpack_lease_slots,
    version_from_magic,
)
from tests.strategies import lease_infos, nodeids, secrets32

NODEID, WE = b"\x33" * 20, b"\x44" * 32
RENEW, CANCEL = b"\x11" * 32, b"\x22" * 32
LEASE = LeaseInfo(1, RENEW, CANCEL, 9, NODEID)


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def test_magic_v1_literal():
    assert MAGIC_V1 == b"Tahoe mutable container v1\n\x75\x09\x44\x03\x8e"
    assert len(MAGIC_V1) == 32


def test_magic_v2_from_tagged_hash():
    text = b"Tahoe mutable container v2\n"
    tag = b"allmydata_mutable_container_header"
    suffix = sha256d(b"%d:%s," % (len(tag), tag) + text)[:5]
    assert suffix == bytes.fromhex("c355219925")
    assert MAGIC_V2 == text + suffix
    assert len(MAGIC_V2) == 32


def test_layout_constants():
    assert DATA_LENGTH_OFFSET == 32 + 20 + 32 == 84
    assert EXTRA_LEASE_POINTER_OFFSET == 92
    assert HEADER_SIZE == LEASE_SLOTS_OFFSET == 100
    assert DATA_OFFSET == 100 + 4 * 92 == 468
    assert NEW_CONTAINER_SIZE == 472
    assert MAX_DATA_LENGTH == 69_105_000_000_000_000


def test_new_container_bytes():
    container = new_container(NODEID, WE)
    assert container == (
        MAGIC_V2 + NODEID + WE + bytes(8) + (468).to_bytes(8, "big") + bytes(368) + bytes(4)
    )
    assert new_container(NODEID, WE, version=1)[:32] == MAGIC_V1
    header = MutableHeader.from_bytes(container)
    assert header == MutableHeader(2, NODEID, WE, 0, 468)
    assert header.lease_schema is LeaseSchema.HASHED
    assert unpack_lease_slots(container[100:468], header.lease_schema) == [None] * 4
    assert unpack_extra_leases(container[468:], header.lease_schema) == []


def test_version_sniffing():
    assert version_from_magic(MAGIC_V1 + b"more") == 1
    assert version_from_magic(MAGIC_V2) == 2
    assert is_mutable_container(MAGIC_V1)
    assert not is_mutable_container(b"\x00\x00\x00\x02" + bytes(28))
    assert not is_mutable_container(MAGIC_V1[:31])
    with pytest.raises(UnknownContainerVersionError):
        version_from_magic(b"Tahoe mutable container v3\n" + bytes(5))
    assert schema_for_version(1) is LeaseSchema.PLAINTEXT
    with pytest.raises(UnknownContainerVersionError):
        schema_for_version(3)


def test_header_write_enabler_not_in_repr():
    assert repr(WE) not in repr(MutableHeader(2, NODEID, WE))


@pytest.mark.parametrize(
    "data_length, extra_lease_offset",
    [(10, 477), (MAX_DATA_LENGTH + 1, 2**63), (0, 467), (0, DATA_OFFSET + MAX_DATA_LENGTH + 1)],
)
def test_impossible_lengths_are_corrupt(data_length, extra_lease_offset):
    data = MAGIC_V2 + NODEID + WE + data_length.to_bytes(8, "big") + extra_lease_offset.to_bytes(8, "big")
    with pytest.raises(CorruptContainerError, match="offset"):
        MutableHeader.from_bytes(data)
    with pytest.raises(ValueError):
        MutableHeader(2, NODEID, WE, data_length, extra_lease_offset)


def test_short_header():
    with pytest.raises(CorruptContainerError, match="100"):
        MutableHeader.from_bytes(MAGIC_V2 + bytes(60))


def test_header_updates():
    header = MutableHeader(1, NODEID, WE).with_extra_lease_offset(600).with_data_length(100)
    assert header.to_bytes()[84:100] == (100).to_bytes(8, "big") + (600).to_bytes(8, "big")
    with pytest.raises(ValueError):
        header.with_data_length(200)  # past the extra leases


def test_lease_slot_known_bytes():
    slot = pack_lease_slot(LEASE, LeaseSchema.PLAINTEXT)
    assert slot == b"\x00\x00\x00\x01" + b"\x00\x00\x00\x09" + RENEW + CANCEL + NODEID
    assert unpack_lease_slot(slot, LeaseSchema.PLAINTEXT) == LEASE
    assert pack_lease_slot(None, LeaseSchema.HASHED) == EMPTY_LEASE_SLOT == bytes(92)
    assert unpack_lease_slot(EMPTY_LEASE_SLOT, LeaseSchema.HASHED) is None
    with pytest.raises(ValueError, match="owner number 0"):
        pack_lease_slot(attrs.evolve(LEASE, owner_num=0), LeaseSchema.PLAINTEXT)


def test_cancelled_slot_with_hashed_zero_secrets_is_empty():
    # Tahoe blanks a cancelled v2 lease through the hashing serializer: owner 0 still means empty.
    record = bytes(8) + hashlib.blake2b(bytes(32), digest_size=32).digest() * 2 + bytes(20)
    assert unpack_lease_slot(record, LeaseSchema.HASHED) is None


def test_lease_slot_offsets():
    assert [lease_slot_offset(i, 1000) for i in range(6)] == [100, 192, 284, 376, 1004, 1096]
    with pytest.raises(IndexError):
        lease_slot_offset(-1, 1000)
    assert extra_lease_area_end(468, 0) == 472
    assert extra_lease_area_end(1000, 2) == 1000 + 4 + 184


def test_slots_and_extra_leases_known_bytes():
    slots = pack_lease_slots([None, LEASE, None, None], LeaseSchema.PLAINTEXT)
    assert slots[:92] == bytes(92) and slots[92:184] == pack_lease_slot(LEASE, LeaseSchema.PLAINTEXT)
    with pytest.raises(ValueError):
        pack_lease_slots([LEASE], LeaseSchema.PLAINTEXT)
    area = pack_extra_leases([LEASE, None], LeaseSchema.PLAINTEXT)
    assert area[:4] == b"\x00\x00\x00\x02" and len(area) == 4 + 2 * LEASE_SIZE
    assert parse_extra_lease_count(area) == 2
    assert unpack_extra_leases(area, LeaseSchema.PLAINTEXT) == [LEASE, None]


def test_extra_lease_area_must_match_count():
    area = pack_extra_leases([LEASE], LeaseSchema.PLAINTEXT)
    with pytest.raises(CorruptContainerError, match="1 leases"):
        unpack_extra_leases(area[:-1], LeaseSchema.PLAINTEXT)
    with pytest.raises(CorruptContainerError):
        unpack_extra_leases(b"\x00\x00", LeaseSchema.PLAINTEXT)
    with pytest.raises(CorruptContainerError, match="368"):
        unpack_lease_slots(bytes(367), LeaseSchema.PLAINTEXT)


@given(
    st.sampled_from([1, 2]),
    nodeids,
    secrets32,
    st.integers(min_value=0, max_value=MAX_DATA_LENGTH),
    st.integers(min_value=0, max_value=2**40),
)
def test_header_round_trip(version, nodeid, write_enabler, data_length, slack):
    extra_lease_offset = min(DATA_OFFSET + data_length + slack, DATA_OFFSET + MAX_DATA_LENGTH)
    header = MutableHeader(version, nodeid, write_enabler, data_length, extra_lease_offset)
    data = header.to_bytes()
    assert len(data) == HEADER_SIZE
    assert MutableHeader.from_bytes(data) == header


slot_values = st.one_of(st.none(), lease_infos(min_owner=1))


@given(st.lists(slot_values, min_size=4, max_size=4), st.lists(slot_values, max_size=4),
       st.sampled_from(LeaseSchema))
def test_lease_areas_round_trip(slots, extras, schema):
    def stored(items):
        return [None if item is None else item.for_schema(schema) for item in items]

    assert unpack_lease_slots(pack_lease_slots(slots, schema), schema) == stored(slots)
    assert unpack_extra_leases(pack_extra_leases(extras, schema), schema) == stored(extras)


@given(st.binary(max_size=300), st.sampled_from(LeaseSchema))
def test_random_bytes_only_raise_corrupt_container(data, schema):
    for parse in (
        MutableHeader.from_bytes,
        lambda d: unpack_lease_slots(d, schema),
        lambda d: unpack_extra_leases(d, schema),
    ):
        try:
            parse(data)
        except CorruptContainerError:
            pass


@given(st.binary(min_size=68, max_size=68))
def test_random_fields_after_good_magic_only_raise_corrupt_container(rest):
    try:
        MutableHeader.from_bytes(MAGIC_V1 + rest)
    except CorruptContainerError:
        pass
