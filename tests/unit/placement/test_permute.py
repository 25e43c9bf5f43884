"""The permuted ring: Tahoe 1.20's order for the same servers, and its seed fallbacks."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import a2b, b2a
from shoal.placement.permute import BadSeedError, permute_hash, permuted_servers, seed_for

FURL = "pb://u33m4y7klhz3bypswqkozwetvabelhxt@tcp:127.0.0.1:1234/swiss"


def _servers() -> list[tuple[bytes, dict]]:
    """Keys from seeds 1..5; odd ones announce Tahoe's seed, even ones fall back to the id."""
    servers = []
    for i in range(1, 6):
        key_s = SigningKey.from_seed(bytes([i]) * 32).verifying_key().server_id()
        ann: dict = {"anonymous-storage-FURL": FURL}
        if i % 2:
            ann["permutation-seed-base32"] = b2a(key_s[3:])
        servers.append((key_s, ann))
    servers.append((b"my-serverid-1", {"anonymous-storage-FURL": FURL}))
    return servers


# Tahoe-LAFS 1.20: sorted(servers, key=permute_server_hash(si, _parse_announcement(...)[1]))
TAHOE_ORDERS = {
    bytes(range(16)): [
        b"v0-rkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5oa",
        b"v0-zkj2yfyfdbyhdvt3qpd76dx6qeeor3cfgblv25zgq6jthw62xz6a",
        b"v0-5vesrrri2hbmn2xjam4jawmvmeuvsjz2lrr7snrwyfdbjlehg7iq",
        b"v0-nz5bzxjjwc3y7uj26tcvtd7p6txsvfywny6kn4xe7p6m3acqlpyq",
        b"my-serverid-1",
        b"v0-qe4xodvipulv6vvdkrtmgtd6ztfy3curwtxdpis56yhvxd6jwoka",
    ],
    b"\xff" * 16: [
        b"v0-nz5bzxjjwc3y7uj26tcvtd7p6txsvfywny6kn4xe7p6m3acqlpyq",
        b"v0-qe4xodvipulv6vvdkrtmgtd6ztfy3curwtxdpis56yhvxd6jwoka",
        b"v0-zkj2yfyfdbyhdvt3qpd76dx6qeeor3cfgblv25zgq6jthw62xz6a",
        b"my-serverid-1",
        b"v0-5vesrrri2hbmn2xjam4jawmvmeuvsjz2lrr7snrwyfdbjlehg7iq",
        b"v0-rkeohxlubhyzl7ks3mwtzos5olfgocn7dwkbeg7toseadnapn5oa",
    ],
}


@pytest.mark.parametrize("si", sorted(TAHOE_ORDERS))
def test_tahoe_order(si: bytes) -> None:
    pairs = [(sid, seed_for(ann, sid)) for sid, ann in _servers()]
    assert permuted_servers(si, pairs) == TAHOE_ORDERS[si]
    assert permuted_servers(si, reversed(pairs)) == TAHOE_ORDERS[si]


def test_seed_fallbacks() -> None:
    key_s = SigningKey.from_seed(b"\x07" * 32).verifying_key().server_id()
    text = key_s[3:]
    # announced: base32 of the key's base32 text, so the seed is that ASCII text
    assert seed_for({"permutation-seed-base32": b2a(text)}, key_s) == text
    assert seed_for({"permutation-seed-base32": b2a(text).encode()}, key_s) == text
    # a v0- server id: the raw key
    assert seed_for({}, key_s) == a2b(text)
    # anything else: SHA-256 of the id
    assert seed_for({}, b"tubid-ish") == hashlib.sha256(b"tubid-ish").digest()


@pytest.mark.parametrize("bad", ["NOT BASE32", "a", 17])
def test_bad_announced_seed(bad: object) -> None:
    with pytest.raises(BadSeedError):
        seed_for({"permutation-seed-base32": bad}, b"v0-x")


def test_permute_hash_is_sha1() -> None:
    assert permute_hash(b"si", b"seed") == hashlib.sha1(b"siseed").digest()


def test_preferred_first_then_permuted() -> None:
    pairs = [(sid, seed_for(ann, sid)) for sid, ann in _servers()]
    si = bytes(range(16))
    preferred = {b"my-serverid-1", b"v0-qe4xodvipulv6vvdkrtmgtd6ztfy3curwtxdpis56yhvxd6jwoka"}
    order = permuted_servers(si, pairs, preferred)
    assert order[:2] == [b"my-serverid-1", b"v0-qe4xodvipulv6vvdkrtmgtd6ztfy3curwtxdpis56yhvxd6jwoka"]
    assert order[2:] == [s for s in TAHOE_ORDERS[si] if s not in preferred]


def test_ties_broken_by_server_id() -> None:
    assert permuted_servers(b"si", [(b"b", b"same"), (b"a", b"same")]) == [b"a", b"b"]


@given(
    st.binary(min_size=16, max_size=16),
    st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=8), max_size=12),
    st.randoms(use_true_random=False),
)
def test_order_is_a_permutation_independent_of_input_order(si: bytes, servers: dict, rnd) -> None:
    pairs = list(servers.items())
    order = permuted_servers(si, pairs)
    assert sorted(order) == sorted(servers)
    rnd.shuffle(pairs)
    assert permuted_servers(si, pairs) == order
    hashes = [permute_hash(si, servers[s]) for s in order]
    assert hashes == sorted(hashes)
