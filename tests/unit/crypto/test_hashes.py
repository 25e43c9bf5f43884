"""Tagged hashes against the Tahoe 1.20 vectors and against their definition."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.crypto import hashes as H
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import a2b, b2a
from tests.conftest import vector_plaintext

KEY = bytes(range(16))


def test_tahoe_vectors(tahoe_vectors):
    v = tahoe_vectors["hashes"]
    conv = tahoe_vectors["convergence_secret_utf8"].encode()
    lease = tahoe_vectors["lease_secret_utf8"].encode()
    got = {
        "storage_index_hash(key=00..0f)": H.storage_index_hash(KEY),
        "convergence_hasher(k=3,n=10,segsize=131072,secret=CONVERGENCE) over plaintext('conv',1000)":
            convergent_key([vector_plaintext("conv", 1000)], conv, 3, 10, 131072),
        "block_hash(b'abc')": H.block_hash(b"abc"),
        "uri_extension_hash(b'abc')": H.uri_extension_hash(b"abc"),
        "plaintext_hash(b'abc')": H.plaintext_hash(b"abc"),
        "crypttext_hash(b'abc')": H.crypttext_hash(b"abc"),
        "crypttext_segment_hash(b'abc')": H.crypttext_segment_hash(b"abc"),
        "plaintext_segment_hash(b'abc')": H.plaintext_segment_hash(b"abc"),
        "file_renewal_secret_hash(my_renewal_secret_hash(LEASE_SECRET), storage_index_hash(00..0f))":
            H.file_renewal_secret(H.client_renewal_secret(lease), H.storage_index_hash(KEY)),
        "ssk_writekey_hash(b'privkey')": H.ssk_writekey_hash(b"privkey"),
        "ssk_pubkey_fingerprint_hash(b'pubkey')": H.ssk_pubkey_fingerprint_hash(b"pubkey"),
        "ssk_readkey_hash(writekey=00..0f)": H.ssk_readkey_hash(KEY),
        "ssk_storage_index_hash(readkey=00..0f)": H.ssk_storage_index_hash(KEY),
    }
    assert set(got) == set(v)
    for name, value in got.items():
        assert b2a(value) == v[name], name


def _sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


@given(st.binary(max_size=40), st.binary(max_size=200))
def test_tagged_hash_definition(tag, value):
    expect = _sha256d(b"%d:%s," % (len(tag), tag) + value)
    assert H.tagged_hash(tag, value) == expect
    assert H.tagged_hash(tag, value, 16) == expect[:16]
    h = H.TaggedHasher(tag)
    h.update(value[:7])
    h.update(value[7:])
    assert h.digest() == expect


@given(st.binary(max_size=40), st.binary(max_size=50), st.binary(max_size=50))
def test_pair_hash_definition(tag, a, b):
    ns = lambda x: b"%d:%s," % (len(x), x)  # noqa: E731
    assert H.tagged_pair_hash(tag, a, b) == _sha256d(ns(tag) + ns(a) + ns(b))


# From Tahoe-LAFS docs/specifications/derive_renewal_secret.py (lease secret,
# storage index, 20-byte tubid, expected bucket renewal secret; all base32).
LEASE_VECTORS = [
    ("boity2cdh7jvl3ltaeebuiobbspjmbuopnwbde2yeh4k6x7jioga", "vrttmwlicrzbt7gh5qsooogr7u",
     "v67jiisoty6ooyxlql5fuucitqiok2ic", "osd6wmc5vz4g3ukg64sitmzlfiaaordutrez7oxdp5kkze7zp5zq"),
    ("boity2cdh7jvl3ltaeebuiobbspjmbuopnwbde2yeh4k6x7jioga", "75gmmfts772ww4beiewc234o5e",
     "v67jiisoty6ooyxlql5fuucitqiok2ic", "35itmusj7qm2pfimh62snbyxp3imreofhx4djr7i2fweta75szda"),
    ("boity2cdh7jvl3ltaeebuiobbspjmbuopnwbde2yeh4k6x7jioga", "75gmmfts772ww4beiewc234o5e",
     "lh5fhobkjrmkqjmkxhy3yaonoociggpz", "srrlruge47ws3lm53vgdxprgqb6bz7cdblnuovdgtfkqrygrjm4q"),
    ("vacviff4xfqxsbp64tdr3frg3xnkcsuwt5jpyat2qxcm44bwu75a", "75gmmfts772ww4beiewc234o5e",
     "lh5fhobkjrmkqjmkxhy3yaonoociggpz", "b4jledjiqjqekbm2erekzqumqzblegxi23i5ojva7g7xmqqnl5pq"),
]


@pytest.mark.parametrize("secret,si,tubid,expected", LEASE_VECTORS)
def test_lease_renewal_secret_reference_vectors(secret, si, tubid, expected):
    client = H.client_renewal_secret(a2b(secret))
    bucket = H.bucket_renewal_secret(H.file_renewal_secret(client, a2b(si)), a2b(tubid))
    assert b2a(bucket) == expected


def test_write_enabler_requires_20_byte_seed():
    with pytest.raises(ValueError):
        H.ssk_write_enabler_hash(KEY, b"short")
    assert len(H.ssk_write_enabler_hash(KEY, b"\x00" * 20)) == 32


def test_dirnode_mac_is_tahoes_unpadded_hmac():
    key, data = b"k" * 16, b"payload"
    inner = hashlib.sha256(bytes(c ^ 0x36 for c in key) + data).digest()
    assert H.dirnode_child_mac(key, data) == hashlib.sha256(bytes(c ^ 0x5C for c in key) + inner).digest()


def test_mutable_container_magic_v2_suffix_is_5_bytes():
    assert len(H.mutable_container_magic_suffix(b"Tahoe mutable container v2\n")) == 5
