"""Soledad's client-side blob encryption, written for tests from Soledad's published
description (leap.soledad ``client/_crypto.py`` module docstring and
``common/blobs/preamble.py``; app-apis.md 1.6), independently of shoal's code.

It uses the ``cryptography`` package (as Soledad does), not pycryptodome (as
shoal does), so a test that encrypts with one and decrypts with the other
checks the format, not one library against itself.

The description, restated:

* KEY = HMAC-SHA256(key=remote_secret[64:], msg=doc_id); blobs use
  doc_id = blob id, rev = ``ImmutableRevision``.
* IV = 16 random bytes.
* PREAMBLE = struct ``2sbbQ16s255p255pQ``: magic ``\\x13\\x37``, scheme 1
  (symkey), method 2 (aes_256_gcm), int(time), IV, doc_id, rev, size, where
  size is the content size rounded up: the first 2**i (i >= 12) with
  size < 2**i.
* CIPHERTEXT = AES-256-GCM(KEY, IV, cleartext, associated data = PREAMBLE) +
  16-byte tag; unarmoured for blobs (the BlobManager passes armor=False).
* PAYLOAD = urlsafe_b64(PREAMBLE) + b" " + CIPHERTEXT.
"""

import base64
import hashlib
import hmac
import os
import struct
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PACKING = struct.Struct("2sbbQ16s255p255pQ")
REV = b"ImmutableRevision"


def ceiling(size: int) -> int:
    i = 12
    while size >= 2 ** i:
        i += 1
    return 2 ** i


def doc_key(remote_secret: bytes, doc_id: str) -> bytes:
    return hmac.new(remote_secret[64:], doc_id.encode(), hashlib.sha256).digest()


def encrypt(remote_secret: bytes, blob_id: str, cleartext: bytes) -> bytes:
    iv = os.urandom(16)
    preamble = PACKING.pack(b"\x13\x37", 1, 2, int(time.time()), iv, blob_id.encode(), REV,
                            ceiling(len(cleartext)))
    sealed = AESGCM(doc_key(remote_secret, blob_id)).encrypt(iv, cleartext, preamble)  # ciphertext + tag
    return base64.urlsafe_b64encode(preamble) + b" " + sealed


def decrypt(remote_secret: bytes, blob_id: str, payload: bytes) -> bytes:
    encoded, sealed = payload.split(b" ", 1)
    preamble = base64.urlsafe_b64decode(encoded)
    magic, scheme, method, _ts, iv, doc_id, rev, _size = PACKING.unpack(preamble)
    if magic != b"\x13\x37" or scheme != 1 or method != 2:
        raise ValueError("not a symmetric AES-256-GCM blob")
    if doc_id != blob_id.encode() or rev != REV:
        raise ValueError(f"preamble is for {doc_id!r}/{rev!r}")
    return AESGCM(doc_key(remote_secret, blob_id)).decrypt(iv, sealed, preamble)


def declared_size(payload: bytes) -> int:
    return int(PACKING.unpack(base64.urlsafe_b64decode(payload.split(b" ", 1)[0]))[7])
