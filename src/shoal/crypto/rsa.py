"""RSA signing keys of Tahoe-LAFS 1.20 mutable files (SDMF and MDMF).

Facts implemented here:

* Keys are 2048-bit RSA with public exponent 65537.
* A private key is stored and hashed (into the writekey) as PKCS#8
  ``PrivateKeyInfo`` DER, unencrypted, with the rsaEncryption algorithm
  identifier and NULL parameters, wrapping PKCS#1 ``RSAPrivateKey`` with all
  eight integers (n, e, d, p, q, d mod p-1, d mod q-1, q^-1 mod p). That is
  what OpenSSL writes for Tahoe (``der_string_from_signing_key``), and what
  pycryptodome writes too, byte for byte, for a key it imported.
* A public key is SubjectPublicKeyInfo DER; its tagged hash is the
  fingerprint in every mutable cap.
* Signatures are RSA-PSS with SHA-256, MGF1-SHA-256 and a fixed 32-byte salt
  (the salt length pycryptopp used; ``MAX_LENGTH`` salts would not verify in
  Tahoe).

Keys are wrapped in small frozen classes so a public key can never be passed
where a private one is wanted, and so a private key's repr shows no secret.
"""

from __future__ import annotations

import math

import attrs
from Crypto.Hash import SHA256
from Crypto.IO import PEM, PKCS8
from Crypto.PublicKey import RSA
from Crypto.Signature import pss
from Crypto.Util.asn1 import DerSequence
from cryptography.hazmat.primitives.asymmetric import rsa as openssl_rsa

from shoal.errors import Fault, ShoalError

KEY_BITS = 2048
"""Tahoe creates, and refuses to load, any other private key size."""
PUBLIC_EXPONENT = 65537
PSS_SALT_LENGTH = 32
_PEM_MARKERS = ("RSA PRIVATE KEY", "PRIVATE KEY")
_RSA_ENCRYPTION_OID = "1.2.840.113549.1.1.1"
# What pycryptodome's importers raise on malformed input. BytesWarning: its
# PKCS#8 reader compares a bytes element with 0 when the version is not an
# INTEGER, which is an exception under ``python -b -W error::BytesWarning``.
_IMPORT_ERRORS = (ValueError, IndexError, TypeError, BytesWarning)


class RSAError(ShoalError):
    """Base class of the RSA errors: bad input (whoever supplied it: callers that
    read others' data re-raise as their own kind)."""

    fault = Fault.CALLER


class BadKeyError(RSAError):
    """Bytes that are not an acceptable RSA key (wrong format, size or kind)."""


class BadSignatureError(RSAError):
    """A signature that does not verify under the given public key."""


def _is_private(_instance: object, _attribute: object, key: RSA.RsaKey) -> None:
    if not isinstance(key, RSA.RsaKey) or not key.has_private():
        raise TypeError("PrivateKey wants a pycryptodome RSA private key")


def _is_public(_instance: object, _attribute: object, key: RSA.RsaKey) -> None:
    if not isinstance(key, RSA.RsaKey) or key.has_private():
        raise TypeError("PublicKey wants a pycryptodome RSA public key")


@attrs.frozen(repr=False)
class PublicKey:
    """An RSA verifying key."""

    key: RSA.RsaKey = attrs.field(validator=_is_public, eq=lambda k: (int(k.n), int(k.e)))

    @property
    def bits(self) -> int:
        return int(self.key.size_in_bits())

    def __repr__(self) -> str:
        return f"<rsa.PublicKey {self.bits} bits>"


@attrs.frozen(repr=False)
class PrivateKey:
    """An RSA signing key (its repr never shows key material)."""

    key: RSA.RsaKey = attrs.field(
        validator=_is_private, eq=lambda k: (int(k.n), int(k.e), int(k.d))
    )

    @property
    def bits(self) -> int:
        return int(self.key.size_in_bits())

    def public_key(self) -> PublicKey:
        return PublicKey(self.key.public_key())

    def __repr__(self) -> str:
        return f"<rsa.PrivateKey {self.bits} bits>"


def generate_private_key(bits: int = KEY_BITS) -> PrivateKey:
    """A fresh key with e = 65537 (only 2048 bits interoperates with Tahoe).

    The primes come from OpenSSL (through `cryptography`), as Tahoe's do:
    20-50 ms of C that releases the GIL, where pycryptodome's pure-Python
    prime search holds the GIL for 0.2-2 s and stalls the reactor thread
    while it runs in the CPU pool. The key is then held as a pycryptodome key
    like every other, so its DER is the same as an imported key's.
    """
    if bits < 1024:
        raise BadKeyError(f"RSA key size must be at least 1024 bits, not {bits}")
    numbers = openssl_rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits).private_numbers()
    public = numbers.public_numbers
    return PrivateKey(RSA.construct((public.n, public.e, numbers.d, numbers.p, numbers.q), consistency_check=False))


def private_key_from_der(data: bytes, *, bits: int | None = KEY_BITS) -> PrivateKey:
    """Load a private key from PKCS#8 DER (what Tahoe stores), PKCS#1 DER, or
    the PEM armour of either (unencrypted).

    Like Tahoe, refuse keys of a size other than `bits` (None accepts any).
    The key's consistency (n = p*q, d, CRT values) is checked on import.
    """
    if not isinstance(data, bytes):
        raise TypeError(f"private key must be bytes, not {type(data).__name__}")
    der = _unarmour(data) if data.lstrip().startswith(b"-----BEGIN ") else data
    try:
        key = RSA.import_key(der)
    except _IMPORT_ERRORS as e:
        raise BadKeyError(f"not an RSA private key in PKCS#8 or PKCS#1 DER: {e}") from None
    if not key.has_private():
        raise BadKeyError("expected an RSA private key, got a public key")
    if bits is not None and key.size_in_bits() != bits:
        raise BadKeyError(f"RSA private key must be {bits} bits, not {key.size_in_bits()}")
    return PrivateKey(key)


def private_key_from_authenticated_der(der: bytes, *, bits: int = KEY_BITS) -> PrivateKey:
    """Load the PKCS#8 DER of a private key whose bytes the caller has already
    authenticated: a mutable file's signing key, whose tagged hash is the writekey
    of the cap (so these are the bytes the file's creator made, nobody else's).

    private_key_from_der tests p and q for primality on every import, 20-70 ms of
    pure Python holding the GIL, paid by every modify of a mutable file or directory
    opened afresh; here the key is only checked for consistency (n = p*q, e*d = 1
    modulo lcm(p-1, q-1), the CRT values) and for writing back out as these very
    bytes, which together cost well under a millisecond of big-integer arithmetic.
    """
    if not isinstance(der, bytes):
        raise TypeError(f"private key must be bytes, not {type(der).__name__}")
    try:
        oid, pkcs1, _params = PKCS8.unwrap(der)
        if oid != _RSA_ENCRYPTION_OID:
            raise ValueError(f"algorithm {oid} is not rsaEncryption")
        fields = DerSequence().decode(pkcs1, nr_elements=9, only_ints_expected=True)
    except _IMPORT_ERRORS as err:
        raise BadKeyError(f"not an RSA private key in PKCS#8 DER: {err}") from None
    version, n, e, d, p, q, dp, dq, qinv = (int(fields[i]) for i in range(9))
    if version != 0 or min(p, q) < 3 or not 1 < e < n:
        raise BadKeyError("RSA private key fields out of range")
    if n.bit_length() != bits:
        raise BadKeyError(f"RSA private key must be {bits} bits, not {n.bit_length()}")
    if math.gcd(p, q) != 1:
        raise BadKeyError("inconsistent RSA private key (p and q share a factor)")
    lcm = math.lcm(p - 1, q - 1)
    if p * q != n or (e * d) % lcm != 1 or dp != d % (p - 1) or dq != d % (q - 1) or (q * qinv) % p != 1:
        raise BadKeyError("inconsistent RSA private key (n, e, d and the CRT values do not agree)")
    key = PrivateKey(RSA.construct((n, e, d, p, q, pow(p, -1, q)), consistency_check=False))
    if private_key_to_der(key) != der:
        raise BadKeyError("RSA private key is not canonical PKCS#8 DER")
    return key


def _unarmour(data: bytes) -> bytes:
    try:
        der, marker, encrypted = PEM.decode(data.decode("ascii"))
    except _IMPORT_ERRORS as e:
        # UnicodeDecodeError is a ValueError; PEM.decode raises ValueError
        # subclasses for bad boundaries, base64 and encrypted blocks.
        raise BadKeyError(f"malformed PEM private key: {e}") from None
    if encrypted or marker not in _PEM_MARKERS:
        raise BadKeyError(f"PEM block {marker!r} is not an unencrypted RSA private key")
    return der


def private_key_to_der(key: PrivateKey) -> bytes:
    """PKCS#8 DER, byte-identical to Tahoe's ``der_string_from_signing_key``."""
    return bytes(key.key.export_key(format="DER", pkcs=8))


def public_key_to_der(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo DER (Tahoe's ``der_string_from_verifying_key``)."""
    return bytes(key.key.export_key(format="DER"))


def public_key_from_der(der: bytes) -> PublicKey:
    """Load a SubjectPublicKeyInfo DER verifying key.

    Only the canonical encoding is accepted (the one public_key_to_der
    writes, as every Tahoe does), so the fingerprint hashed from these
    bytes is the fingerprint of the key.
    """
    if not isinstance(der, bytes):
        raise TypeError(f"public key must be bytes, not {type(der).__name__}")
    try:
        key = RSA.import_key(der)
    except _IMPORT_ERRORS as e:
        raise BadKeyError(f"not an RSA SubjectPublicKeyInfo DER: {e}") from None
    if key.has_private():
        raise BadKeyError("expected an RSA public key, got a private key")
    public = PublicKey(key)
    if public_key_to_der(public) != der:
        raise BadKeyError("RSA public key is not canonical SubjectPublicKeyInfo DER")
    return public


def sign(key: PrivateKey, data: bytes) -> bytes:
    """RSA-PSS(SHA-256, MGF1-SHA-256, 32-byte random salt) signature of data."""
    signer = pss.new(key.key, salt_bytes=PSS_SALT_LENGTH)
    return bytes(signer.sign(SHA256.new(data)))


def verify(key: PublicKey, signature: bytes, data: bytes) -> None:
    """Return if `signature` is a valid signature of data; raise BadSignatureError if not."""
    verifier = pss.new(key.key, salt_bytes=PSS_SALT_LENGTH)
    try:
        verifier.verify(SHA256.new(data), signature)
    except (ValueError, TypeError):
        raise BadSignatureError(
            f"RSA-PSS signature ({len(signature)} bytes) does not verify over "
            f"{len(data)} bytes of data"
        ) from None
