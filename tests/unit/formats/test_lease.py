"""Lease records: the 72- and 92-byte forms, hashed secrets, secret checks."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.formats.errors import BadLeaseError
from shoal.formats.lease import (
    IMMUTABLE_LEASE_SIZE,
    MUTABLE_LEASE_SIZE,
    LeaseInfo,
    LeaseSchema,
    hash_lease_secret,
    pack_immutable_lease,
    pack_mutable_lease,
    unpack_immutable_lease,
    unpack_mutable_lease,
)
from tests.strategies import lease_infos, secrets32

RENEW, CANCEL, NODEID = b"\x11" * 32, b"\x22" * 32, b"\x33" * 20
# BLAKE2b-256 (unkeyed) as computed by libsodium's crypto_generichash, which
# PyNaCl's nacl.hash.blake2b(secret, digest_size=32) calls for Tahoe.
BLAKE_EMPTY = bytes.fromhex("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
BLAKE_11 = bytes.fromhex("d4ffaeeac45aa41825e0bc3f875570af061acbf0b950ad752ff0f9463fe13ad5")
BLAKE_22 = bytes.fromhex("e2a94e18647fe0c6283a31e40c46ae1cc5f0867650f6834e4f01e34284adc9c7")

LEASE = LeaseInfo(
    owner_num=1, renew_secret=RENEW, cancel_secret=CANCEL, expiration_time=0x01020304, nodeid=NODEID
)


def test_blake2b_matches_libsodium():
    assert hash_lease_secret(b"") == BLAKE_EMPTY
    assert hash_lease_secret(RENEW) == BLAKE_11
    assert hash_lease_secret(CANCEL) == BLAKE_22


def test_immutable_record_known_bytes():
    record = pack_immutable_lease(LEASE, LeaseSchema.PLAINTEXT)
    assert record == b"\x00\x00\x00\x01" + RENEW + CANCEL + b"\x01\x02\x03\x04"
    assert len(record) == IMMUTABLE_LEASE_SIZE == 72
    back = unpack_immutable_lease(record, LeaseSchema.PLAINTEXT)
    assert back == LeaseInfo(1, RENEW, CANCEL, 0x01020304)  # nodeid is not stored


def test_immutable_hashed_record_known_bytes():
    record = pack_immutable_lease(LEASE, LeaseSchema.HASHED)
    assert record == b"\x00\x00\x00\x01" + BLAKE_11 + BLAKE_22 + b"\x01\x02\x03\x04"
    stored = unpack_immutable_lease(record, LeaseSchema.HASHED)
    assert stored.hashed
    assert stored.renew_secret == BLAKE_11
    assert stored.matches_renew_secret(RENEW)
    assert stored.matches_cancel_secret(CANCEL)
    assert not stored.matches_renew_secret(BLAKE_11)  # the stored digest is not a key
    # re-serializing a stored hashed lease does not hash again
    assert pack_immutable_lease(stored, LeaseSchema.HASHED) == record


def test_mutable_record_known_bytes():
    record = pack_mutable_lease(LEASE, LeaseSchema.PLAINTEXT)
    # owner, then expiration, then the secrets, then the nodeid
    assert record == b"\x00\x00\x00\x01" + b"\x01\x02\x03\x04" + RENEW + CANCEL + NODEID
    assert len(record) == MUTABLE_LEASE_SIZE == 92
    assert unpack_mutable_lease(record, LeaseSchema.PLAINTEXT) == LEASE
    hashed = pack_mutable_lease(LEASE, LeaseSchema.HASHED)
    assert hashed == b"\x00\x00\x00\x01\x01\x02\x03\x04" + BLAKE_11 + BLAKE_22 + NODEID


def test_mutable_record_needs_nodeid():
    with pytest.raises(ValueError, match="nodeid"):
        pack_mutable_lease(LeaseInfo(1, RENEW, CANCEL, 5), LeaseSchema.PLAINTEXT)


def test_hashed_lease_cannot_go_plaintext():
    with pytest.raises(ValueError):
        pack_immutable_lease(LEASE.with_hashed_secrets(), LeaseSchema.PLAINTEXT)
    with pytest.raises(ValueError):
        LEASE.with_hashed_secrets().with_hashed_secrets()


def test_renewed_keeps_secrets():
    stored = LEASE.with_hashed_secrets()
    later = stored.renewed(0x7FFFFFFF)
    assert later.expiration_time == 0x7FFFFFFF
    assert later.matches_renew_secret(RENEW)
    assert later.renew_secret == stored.renew_secret


def test_plaintext_checks():
    assert LEASE.matches_renew_secret(RENEW)
    assert not LEASE.matches_renew_secret(CANCEL)
    assert not LEASE.matches_renew_secret(RENEW[:31])
    assert LEASE.matches_cancel_secret(CANCEL)
    with pytest.raises(TypeError):
        LEASE.matches_renew_secret("text")  # type: ignore[arg-type]


def test_secrets_stay_out_of_repr():
    assert RENEW.hex() not in repr(LEASE) and repr(RENEW) not in repr(LEASE)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"owner_num": -1},
        {"owner_num": 2**32},
        {"expiration_time": 2**32},
        {"renew_secret": b"x" * 31},
        {"cancel_secret": b"x" * 33},
        {"nodeid": b"x" * 19},
    ],
)
def test_lease_validation(kwargs):
    fields = {"owner_num": 1, "renew_secret": RENEW, "cancel_secret": CANCEL, "expiration_time": 0}
    with pytest.raises(ValueError):
        LeaseInfo(**{**fields, **kwargs})


@pytest.mark.parametrize("kwargs", [{"owner_num": 1.0}, {"renew_secret": "x" * 32}, {"hashed": 1}])
def test_lease_types(kwargs):
    fields = {"owner_num": 1, "renew_secret": RENEW, "cancel_secret": CANCEL, "expiration_time": 0}
    with pytest.raises(TypeError):
        LeaseInfo(**{**fields, **kwargs})


@given(lease_infos(with_nodeid=False), st.sampled_from(LeaseSchema))
def test_immutable_round_trip(lease, schema):
    back = unpack_immutable_lease(pack_immutable_lease(lease, schema), schema)
    assert back == lease.for_schema(schema)


@given(lease_infos(), st.sampled_from(LeaseSchema))
def test_mutable_round_trip(lease, schema):
    back = unpack_mutable_lease(pack_mutable_lease(lease, schema), schema)
    assert back == lease.for_schema(schema)


@given(lease_infos(), secrets32)
def test_hashed_check_agrees_with_plaintext(lease, candidate):
    hashed = lease.with_hashed_secrets()
    assert hashed.matches_renew_secret(candidate) == lease.matches_renew_secret(candidate)
    assert hashed.matches_renew_secret(lease.renew_secret)
    assert hashed.matches_cancel_secret(lease.cancel_secret)


@given(st.binary(max_size=100), st.sampled_from(LeaseSchema))
def test_random_bytes_only_raise_bad_lease(data, schema):
    for parse in (unpack_immutable_lease, unpack_mutable_lease):
        try:
            parse(data, schema)
        except BadLeaseError:
            pass
