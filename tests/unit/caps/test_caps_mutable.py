"""Deriving mutable file caps from an RSA key (shoal.caps.mutable)."""

import base64

import pytest

from shoal.caps import (
    MDMFReadCap,
    MDMFVerifierCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKVerifierCap,
    SSKWriteCap,
    mutable_caps_from_private_key,
    writekey_and_fingerprint,
)
from shoal.crypto import rsa
from shoal.crypto.hashes import ssk_pubkey_fingerprint_hash, ssk_writekey_hash


@pytest.fixture(scope="module")
def vector(tahoe_vectors):
    return tahoe_vectors["mutable"][0]


@pytest.fixture(scope="module")
def der(vector):
    return base64.urlsafe_b64decode(vector["private_key_der_b64url"])


def test_sdmf_and_mdmf_share_keys(der):
    sdmf = mutable_caps_from_private_key(der, mdmf=False)
    mdmf = mutable_caps_from_private_key(der, mdmf=True)
    assert [type(c) for c in sdmf] == [SSKWriteCap, SSKReadCap, SSKVerifierCap]
    assert [type(c) for c in mdmf] == [MDMFWriteCap, MDMFReadCap, MDMFVerifierCap]
    assert sdmf[0].writekey == mdmf[0].writekey
    assert sdmf[1].readkey == mdmf[1].readkey
    assert sdmf[2].storage_index == mdmf[2].storage_index
    write, read, verify = sdmf
    assert write.readonly() == read and write.verifier() == verify and read.verifier() == verify


def test_hashes_cover_pkcs8_and_spki(der):
    key = rsa.private_key_from_der(der)
    writekey, fingerprint = writekey_and_fingerprint(key)
    assert writekey == ssk_writekey_hash(der)
    assert fingerprint == ssk_pubkey_fingerprint_hash(rsa.public_key_to_der(key.public_key()))


def test_every_key_spelling_gives_the_same_caps(der):
    key = rsa.private_key_from_der(der)
    pkcs1 = key.key.export_key(format="DER", pkcs=1)
    pem = key.key.export_key(format="PEM", pkcs=1)
    expected = mutable_caps_from_private_key(der, mdmf=True)
    for spelling in (key, pkcs1, pem):
        assert mutable_caps_from_private_key(spelling, mdmf=True) == expected


def test_bad_keys(der):
    with pytest.raises(rsa.BadKeyError):
        mutable_caps_from_private_key(der[:-1], mdmf=False)
    with pytest.raises(rsa.BadKeyError):
        mutable_caps_from_private_key(b"", mdmf=True)
