"""RSA keys and RSA-PSS signatures of mutable files (shoal.crypto.rsa).

Where the `cryptography` package is installed (Tahoe itself uses it), the
DER bytes and signatures are checked against it directly.
"""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.crypto import rsa
from shoal.errors import ShoalError


@pytest.fixture(scope="module")
def key_der(tahoe_vectors) -> bytes:
    return base64.urlsafe_b64decode(tahoe_vectors["mutable"][0]["private_key_der_b64url"])


@pytest.fixture(scope="module")
def key(key_der) -> rsa.PrivateKey:
    return rsa.private_key_from_der(key_der)


@pytest.fixture(scope="module")
def other_key(tahoe_vectors) -> rsa.PrivateKey:
    return rsa.private_key_from_der(
        base64.urlsafe_b64decode(tahoe_vectors["mutable"][1]["private_key_der_b64url"])
    )


def _pem(der: bytes, marker: str) -> bytes:
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN {marker}-----\n{body}-----END {marker}-----\n".encode("ascii")


def test_errors_are_shoal_errors():
    assert issubclass(rsa.BadKeyError, ShoalError)
    assert issubclass(rsa.BadSignatureError, ShoalError)


def test_tahoe_key_reserialises_byte_for_byte(tahoe_vectors):
    for vector in tahoe_vectors["mutable"]:
        der = base64.urlsafe_b64decode(vector["private_key_der_b64url"])
        loaded = rsa.private_key_from_der(der)
        assert loaded.bits == 2048
        assert rsa.private_key_to_der(loaded) == der


def test_pkcs1_and_pem_load_to_the_same_key(key, key_der):
    pkcs1 = key.key.export_key(format="DER", pkcs=1)
    assert pkcs1 != key_der
    for form in (pkcs1, _pem(pkcs1, "RSA PRIVATE KEY"), _pem(key_der, "PRIVATE KEY")):
        assert rsa.private_key_to_der(rsa.private_key_from_der(form)) == key_der


def test_public_key_round_trip(key):
    der = rsa.public_key_to_der(key.public_key())
    assert der[:2] == b"\x30\x82"  # SEQUENCE (SubjectPublicKeyInfo)
    assert rsa.public_key_from_der(der) == key.public_key()
    assert rsa.public_key_to_der(rsa.public_key_from_der(der)) == der


def test_sign_and_verify(key, other_key):
    signature = rsa.sign(key, b"signed prefix")
    assert len(signature) == 256
    rsa.verify(key.public_key(), signature, b"signed prefix")
    with pytest.raises(rsa.BadSignatureError):
        rsa.verify(key.public_key(), signature, b"signed prefiX")
    with pytest.raises(rsa.BadSignatureError):
        rsa.verify(other_key.public_key(), signature, b"signed prefix")
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(rsa.BadSignatureError):
        rsa.verify(key.public_key(), tampered, b"signed prefix")


def test_pss_salt_is_random(key):
    assert rsa.sign(key, b"x") != rsa.sign(key, b"x")


@given(signature=st.binary(max_size=300), data=st.binary(max_size=64))
def test_verify_raises_only_bad_signature(key, signature, data):
    with pytest.raises(rsa.BadSignatureError):
        rsa.verify(key.public_key(), signature, data)


def test_generate_private_key():
    small = rsa.generate_private_key(1024)
    assert small.bits == 1024
    assert small.key.e == 65537
    der = rsa.private_key_to_der(small)
    assert rsa.private_key_to_der(rsa.private_key_from_der(der, bits=None)) == der
    with pytest.raises(rsa.BadKeyError, match="2048 bits"):
        rsa.private_key_from_der(der)  # Tahoe refuses any other size
    with pytest.raises(rsa.BadKeyError):
        rsa.generate_private_key(512)


def test_default_key_is_2048_bits_and_round_trips():
    fresh = rsa.generate_private_key()
    assert fresh.bits == 2048
    der = rsa.private_key_to_der(fresh)
    assert rsa.private_key_to_der(rsa.private_key_from_der(der)) == der
    rsa.verify(fresh.public_key(), rsa.sign(fresh, b"m"), b"m")


def test_keys_compare_and_hash_by_value(key, key_der, other_key):
    again = rsa.private_key_from_der(key_der)
    assert again == key and hash(again) == hash(key)
    assert again.public_key() == key.public_key()
    assert hash(again.public_key()) == hash(key.public_key())
    assert key != other_key and key.public_key() != other_key.public_key()
    assert len({key, again, other_key}) == 2


def test_repr_shows_no_key_material(key):
    assert repr(key) == "<rsa.PrivateKey 2048 bits>"
    assert str(key.key.n)[:10] not in repr(key)


def test_key_kinds_are_not_interchangeable(key, key_der):
    with pytest.raises(TypeError):
        rsa.PrivateKey(key.public_key().key)
    with pytest.raises(TypeError):
        rsa.PublicKey(key.key)
    with pytest.raises(rsa.BadKeyError, match="public key"):
        rsa.private_key_from_der(rsa.public_key_to_der(key.public_key()))
    with pytest.raises(rsa.BadKeyError, match="private key"):
        rsa.public_key_from_der(key_der)


def test_non_canonical_public_key_is_refused(key):
    pkcs1_public = key.public_key().key.export_key(format="DER", pkcs=1)
    # pycryptodome writes SPKI for public keys whatever `pkcs` says; build
    # the bare PKCS#1 RSAPublicKey (the SPKI's BIT STRING contents) instead.
    spki = rsa.public_key_to_der(key.public_key())
    assert pkcs1_public == spki
    bare = spki[-270:]
    assert bare[:4] == b"\x30\x82\x01\x0a"
    with pytest.raises(rsa.BadKeyError):
        rsa.public_key_from_der(bare)


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x30",
        b"\x30\x82\xff\xff",
        b"-----BEGIN RSA PRIVATE KEY-----\n!!!\n-----END RSA PRIVATE KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN RSA PRIVATE KEY-----\n\xff\n-----END RSA PRIVATE KEY-----\n",
        b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
    ],
)
def test_bad_private_keys(bad):
    with pytest.raises(rsa.BadKeyError):
        rsa.private_key_from_der(bad)


def test_encrypted_keys_are_refused(key):
    protection = "PBKDF2WithHMAC-SHA1AndAES128-CBC"
    for encrypted in (
        key.key.export_key(format="PEM", pkcs=1, passphrase="pw"),
        key.key.export_key(format="PEM", pkcs=8, passphrase="pw", protection=protection),
        key.key.export_key(format="DER", pkcs=8, passphrase="pw", protection=protection),
    ):
        with pytest.raises(rsa.BadKeyError):
            rsa.private_key_from_der(encrypted)


@given(st.binary(max_size=400))
def test_random_bytes_raise_only_bad_key(data):
    for load in (rsa.private_key_from_der, rsa.public_key_from_der):
        try:
            load(data)
        except rsa.BadKeyError:
            pass


@pytest.mark.parametrize("load", [rsa.private_key_from_der, rsa.private_key_from_authenticated_der])
@given(position=st.integers(min_value=0, max_value=1216), bit=st.integers(0, 7))
def test_damaged_der_raises_only_bad_key(key_der, load, position, bit):
    damaged = bytearray(key_der)
    damaged[position % len(damaged)] ^= 1 << bit
    try:
        loaded = load(bytes(damaged))
    except rsa.BadKeyError:
        return
    # A flip that survives the consistency checks still gives a usable key.
    rsa.verify(loaded.public_key(), rsa.sign(loaded, b"m"), b"m")


@given(cut=st.integers(min_value=0, max_value=1216))
def test_truncated_der_is_refused(key_der, cut):
    with pytest.raises(rsa.BadKeyError):
        rsa.private_key_from_der(key_der[:cut])


# --- against `cryptography`, the library Tahoe 1.20 uses ----------------------

def test_der_matches_cryptography(key, key_der):
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    theirs = serialization.load_der_private_key(key_der, password=None)
    pkcs1_pem = key.key.export_key(format="PEM", pkcs=1)
    from_pem = serialization.load_pem_private_key(pkcs1_pem, password=None)
    for loaded in (theirs, from_pem):
        assert loaded.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ) == rsa.private_key_to_der(key)
        assert loaded.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        ) == rsa.public_key_to_der(key.public_key())


def test_fresh_key_der_is_what_openssl_writes():
    """A generated key (primes from OpenSSL, held by pycryptodome) serialises
    exactly as OpenSSL serialises the same numbers, and the writekey hashes
    that DER."""
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    fresh = rsa.generate_private_key()
    der = rsa.private_key_to_der(fresh)
    theirs = serialization.load_der_private_key(der, password=None)
    assert theirs.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) == der
    assert theirs.private_numbers().p * theirs.private_numbers().q == int(fresh.key.n)
    rsa.verify(rsa.public_key_from_der(rsa.public_key_to_der(fresh.public_key())), rsa.sign(fresh, b"m"), b"m")


def test_signatures_interoperate_with_cryptography(key, key_der):
    pytest.importorskip("cryptography")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    theirs = load_der_private_key(key_der, password=None)
    tahoe_padding = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    ours = rsa.sign(key, b"prefix")
    theirs.public_key().verify(ours, b"prefix", tahoe_padding, hashes.SHA256())
    rsa.verify(key.public_key(), theirs.sign(b"prefix", tahoe_padding, hashes.SHA256()), b"prefix")
    # The salt length is fixed at 32: a maximal-salt signature does not verify.
    max_salt = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    with pytest.raises(rsa.BadSignatureError):
        rsa.verify(key.public_key(), theirs.sign(b"prefix", max_salt, hashes.SHA256()), b"prefix")
    with pytest.raises(InvalidSignature):
        theirs.public_key().verify(ours, b"prefiX", tahoe_padding, hashes.SHA256())


# --- keys whose bytes a writekey already vouches for -----------------------------------


def _der_with(key: rsa.PrivateKey, **fields: int) -> bytes:
    """The key's PKCS#8 DER with some RSAPrivateKey integers replaced."""
    from Crypto.IO import PKCS8
    from Crypto.Util.asn1 import DerNull, DerSequence

    k = key.key
    values = {"version": 0, "n": int(k.n), "e": int(k.e), "d": int(k.d), "p": int(k.p), "q": int(k.q),
              "dp": int(k.d) % (int(k.p) - 1), "dq": int(k.d) % (int(k.q) - 1), "qinv": pow(int(k.q), -1, int(k.p))}
    values.update(fields)
    pkcs1 = DerSequence(list(values.values())).encode()
    return bytes(PKCS8.wrap(pkcs1, "1.2.840.113549.1.1.1", key_params=DerNull()))


def test_authenticated_der_loads_the_same_key(tahoe_vectors, key, key_der):
    assert _der_with(key) == key_der
    for vector in tahoe_vectors["mutable"]:
        der = base64.urlsafe_b64decode(vector["private_key_der_b64url"])
        loaded = rsa.private_key_from_authenticated_der(der)
        assert loaded == rsa.private_key_from_der(der)
        assert rsa.private_key_to_der(loaded) == der
        rsa.verify(loaded.public_key(), rsa.sign(loaded, b"m"), b"m")


def test_authenticated_der_skips_the_primality_tests(key_der, monkeypatch):
    """The point of it: no prime test (tens of ms of Python on the reactor per modify)."""
    from Crypto.Math import Primality

    def refuse(*args, **kwargs):
        raise AssertionError("primality test run")

    monkeypatch.setattr(Primality, "test_probable_prime", refuse)
    monkeypatch.setattr(Primality, "miller_rabin_test", refuse)
    with pytest.raises(AssertionError):
        rsa.private_key_from_der(key_der)  # the full import does test
    assert rsa.private_key_to_der(rsa.private_key_from_authenticated_der(key_der)) == key_der


@pytest.mark.parametrize("change", [
    {"version": 1}, {"n": 12345}, {"e": 3}, {"dp": 5}, {"dq": 7}, {"qinv": 11},
])
def test_authenticated_der_still_checks_consistency(key, change):
    k = key.key
    with pytest.raises(rsa.BadKeyError):
        rsa.private_key_from_authenticated_der(_der_with(key, **change))
    # d not matching e, and p, q swapped for a wrong factorisation
    with pytest.raises(rsa.BadKeyError):
        rsa.private_key_from_authenticated_der(_der_with(key, d=int(k.d) + 2))
    with pytest.raises(rsa.BadKeyError):
        rsa.private_key_from_authenticated_der(_der_with(key, p=int(k.p) + 2))


def test_authenticated_der_refuses_other_sizes_forms_and_junk(key, key_der):
    small = rsa.generate_private_key(1024)
    with pytest.raises(rsa.BadKeyError):
        rsa.private_key_from_authenticated_der(rsa.private_key_to_der(small))
    assert rsa.private_key_from_authenticated_der(rsa.private_key_to_der(small), bits=1024) == small
    for bad in (b"", key_der[:-1], key_der + b"\x00", key.key.export_key(format="DER", pkcs=1),
                _pem(key_der, "PRIVATE KEY"), rsa.public_key_to_der(key.public_key())):
        with pytest.raises(rsa.BadKeyError):
            rsa.private_key_from_authenticated_der(bad)
    with pytest.raises(TypeError):
        rsa.private_key_from_authenticated_der(bytearray(key_der))  # type: ignore[arg-type]

