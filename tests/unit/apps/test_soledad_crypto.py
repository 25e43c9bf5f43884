"""shoal's blob encryption against Soledad's scheme written independently
(tests/soledad_scheme.py, on the `cryptography` package): blobs encrypted by
either side decrypt on the other, the declared size is Soledad's rounded one,
and blobs written by older shoal (second-half key, exact size) still read."""

import base64
import hashlib
import hmac
import os

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.apps.blobmanager import crypto
from shoal.apps.blobmanager.errors import InvalidBlobError
from tests import soledad_scheme

SECRET = os.urandom(512)  # Soledad's remote secret is 512 bytes
IDS = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
SIZES = st.one_of(st.integers(0, 5000), st.sampled_from([4095, 4096, 4097, 8191, 8192, 65535, 65536]))


@settings(max_examples=60, deadline=None)
@given(IDS, SIZES, st.binary(min_size=96, max_size=600))
def test_soledad_encrypts_shoal_decrypts(blob_id, size, secret):
    plaintext = os.urandom(size)
    assert crypto.decrypt_blob(secret, blob_id, soledad_scheme.encrypt(secret, blob_id, plaintext)) == plaintext


@settings(max_examples=60, deadline=None)
@given(IDS, SIZES, st.binary(min_size=96, max_size=600))
def test_shoal_encrypts_soledad_decrypts(blob_id, size, secret):
    plaintext = os.urandom(size)
    stored = crypto.encrypt_blob(secret, blob_id, plaintext)
    assert soledad_scheme.decrypt(secret, blob_id, stored) == plaintext
    assert soledad_scheme.declared_size(stored) == soledad_scheme.ceiling(size)


@given(st.integers(0, 2 ** 40))
def test_padded_size_is_soledads_ceiling(size):
    assert crypto.padded_size(size) == soledad_scheme.ceiling(size)


def test_padded_size_edges():
    assert [crypto.padded_size(n) for n in (0, 17, 4095, 4096, 4097, 8192)] == [4096, 4096, 4096, 8192, 8192, 16384]
    with pytest.raises(ValueError):
        crypto.padded_size(-1)


def test_the_issue_examples_both_ways():
    # issue #19: "MAC check failed" (key) and "preamble says 4096 bytes, got 17" (size) are gone
    stored = soledad_scheme.encrypt(SECRET, "att-1", b"seventeen bytes!!")
    assert crypto.decrypt_blob(SECRET, "att-1", stored) == b"seventeen bytes!!"
    assert soledad_scheme.declared_size(stored) == 4096
    assert crypto.blob_key(SECRET, "att-1") == soledad_scheme.doc_key(SECRET, "att-1")


def _old_shoal_blob(secret: bytes, blob_id: str, plaintext: bytes) -> bytes:
    """What shoal wrote before: key from secret[len//2:], exact size in the preamble."""
    iv = os.urandom(16)
    pre = crypto.Preamble(1_700_000_000, iv, blob_id, crypto.REVISION, len(plaintext)).pack()
    key = hmac.new(secret[len(secret) // 2:], blob_id.encode(), hashlib.sha256).digest()
    cipher = AES.new(key, AES.MODE_GCM, nonce=iv, mac_len=16)
    cipher.update(pre)
    ct, tag = cipher.encrypt_and_digest(plaintext)
    return base64.urlsafe_b64encode(pre) + b" " + ct + tag


@given(st.binary(max_size=3000))
def test_blobs_of_older_shoal_still_decrypt(plaintext):
    assert crypto.decrypt_blob(SECRET, "old", _old_shoal_blob(SECRET, "old", plaintext)) == plaintext


def test_wrong_secret_id_or_revision_fail():
    stored = soledad_scheme.encrypt(SECRET, "b1", b"x" * 100)
    with pytest.raises(InvalidBlobError, match="MAC"):
        crypto.decrypt_blob(os.urandom(512), "b1", stored)
    with pytest.raises(InvalidBlobError, match="names blob"):
        crypto.decrypt_blob(SECRET, "b2", stored)
    head, _, body = stored.partition(b" ")
    pre = crypto.unpack_preamble(base64.urlsafe_b64decode(head))
    other_rev = crypto.Preamble(pre.timestamp, pre.iv, pre.blob_id, b"rev2", pre.size).pack()
    with pytest.raises(InvalidBlobError, match="revision"):
        crypto.decrypt_blob(SECRET, "b1", base64.urlsafe_b64encode(other_rev) + b" " + body)
    # a preamble claiming a size below the plaintext is refused (Soledad's client never writes one)
    small = crypto.Preamble(pre.timestamp, pre.iv, pre.blob_id, pre.revision, 10).pack()
    key = soledad_scheme.doc_key(SECRET, "b1")
    cipher = AES.new(key, AES.MODE_GCM, nonce=pre.iv, mac_len=16)
    cipher.update(small)
    ct, tag = cipher.encrypt_and_digest(b"x" * 100)
    with pytest.raises(InvalidBlobError, match="at most 10"):
        crypto.decrypt_blob(SECRET, "b1", base64.urlsafe_b64encode(small) + b" " + ct + tag)


def test_legacy_preamble_without_size_decrypts():
    iv = os.urandom(16)
    pre = crypto.LEGACY_PREAMBLE.pack(b"\x13\x37", 1, 2, 1_500_000_000, iv, b"legacy", crypto.REVISION)
    cipher = AES.new(soledad_scheme.doc_key(SECRET, "legacy"), AES.MODE_GCM, nonce=iv, mac_len=16)
    cipher.update(pre)
    ct, tag = cipher.encrypt_and_digest(b"old soledad")
    assert crypto.decrypt_blob(SECRET, "legacy", base64.urlsafe_b64encode(pre) + b" " + ct + tag) == b"old soledad"


def test_short_secret_refused():
    with pytest.raises(ValueError, match="at least 96"):
        crypto.blob_key(b"s" * 95, "a")
