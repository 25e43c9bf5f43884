"""Deriving a mutable file's caps from its RSA signing key (Tahoe-LAFS 1.20).

writekey    = tagged hash of the PKCS#8 DER private key, 16 bytes
fingerprint = tagged hash of the SubjectPublicKeyInfo DER public key, 32 bytes
readkey     = tagged hash of the writekey; storage index = tagged hash of the readkey

The key is always re-serialised before hashing, so PKCS#1 or PEM input gives
the caps Tahoe derives from the same key (Tahoe hashes its own PKCS#8 output).
SDMF and MDMF differ only in the cap prefix.
"""

from __future__ import annotations

from typing import Literal, overload

from shoal.caps.ssk import (
    MDMFReadCap,
    MDMFVerifierCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKVerifierCap,
    SSKWriteCap,
)
from shoal.crypto import rsa
from shoal.crypto.hashes import ssk_pubkey_fingerprint_hash, ssk_writekey_hash


def writekey_and_fingerprint(key: bytes | rsa.PrivateKey) -> tuple[bytes, bytes]:
    """(writekey, fingerprint) of a private key object or its DER/PEM bytes.

    Key bytes of a size other than 2048 bits are refused, as Tahoe refuses
    them; an already-loaded PrivateKey is taken as it is.
    """
    private = rsa.private_key_from_der(key) if isinstance(key, bytes) else key
    writekey = ssk_writekey_hash(rsa.private_key_to_der(private))
    fingerprint = ssk_pubkey_fingerprint_hash(rsa.public_key_to_der(private.public_key()))
    return writekey, fingerprint


@overload
def mutable_caps_from_private_key(
    key: bytes | rsa.PrivateKey, mdmf: Literal[False]
) -> tuple[SSKWriteCap, SSKReadCap, SSKVerifierCap]: ...


@overload
def mutable_caps_from_private_key(
    key: bytes | rsa.PrivateKey, mdmf: Literal[True]
) -> tuple[MDMFWriteCap, MDMFReadCap, MDMFVerifierCap]: ...


@overload
def mutable_caps_from_private_key(
    key: bytes | rsa.PrivateKey, mdmf: bool
) -> (
    tuple[SSKWriteCap, SSKReadCap, SSKVerifierCap]
    | tuple[MDMFWriteCap, MDMFReadCap, MDMFVerifierCap]
): ...


def mutable_caps_from_private_key(
    key: bytes | rsa.PrivateKey, mdmf: bool
) -> (
    tuple[SSKWriteCap, SSKReadCap, SSKVerifierCap]
    | tuple[MDMFWriteCap, MDMFReadCap, MDMFVerifierCap]
):
    """(write, read, verify) caps of the mutable file signed by `key`.

    Raises shoal.crypto.rsa.BadKeyError for bytes that are not a 2048-bit
    RSA private key.
    """
    writekey, fingerprint = writekey_and_fingerprint(key)
    if mdmf:
        mdmf_write = MDMFWriteCap(writekey, fingerprint)
        return mdmf_write, mdmf_write.readonly(), mdmf_write.verifier()
    sdmf_write = SSKWriteCap(writekey, fingerprint)
    return sdmf_write, sdmf_write.readonly(), sdmf_write.verifier()
