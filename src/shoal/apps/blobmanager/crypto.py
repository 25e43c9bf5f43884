"""Client-side blob encryption laid out as Soledad's client does (app-apis.md 1.6).

* Per-blob key: HMAC-SHA256 over the blob id (UTF-8), keyed with the second half
  of the user's storage secret.
* Cipher AES-256-GCM, 16-byte IV, 16-byte tag.
* Preamble: struct ``2sbbQ16s255p255pQ`` = magic ``\\x13\\x37``, scheme
  (symkey=1), method (aes_256_gcm=2), timestamp, IV, doc id (the blob id),
  revision, plaintext size. The packed preamble is the GCM associated data, so
  a blob copied under another id or with an edited preamble fails to decrypt.
* Stored bytes: base64url(preamble), one space, ciphertext, then the tag. The
  server's ``Tag`` header is the base64url of the last 16 bytes.

Pure: stdlib and pycryptodome only.
"""

import base64
import hashlib
import hmac
import os
import struct
import time

import attrs
from Crypto.Cipher import AES

from shoal.apps.blobmanager.errors import InvalidBlobError

MAGIC = b"\x13\x37"
SCHEME_SYMKEY = 1
SCHEME_EXTERNAL = 2
METHOD_AES_256_CTR = 1
METHOD_AES_256_GCM = 2
METHOD_PGP = 3
PREAMBLE = struct.Struct("2sbbQ16s255p255pQ")
TAG_SIZE = 16
IV_SIZE = 16
REVISION = b"ImmutableRevision"
MIN_SECRET = 64


@attrs.frozen
class Preamble:
    timestamp: int
    iv: bytes
    blob_id: str
    revision: bytes
    size: int
    scheme: int = SCHEME_SYMKEY
    method: int = METHOD_AES_256_GCM

    def pack(self) -> bytes:
        return PREAMBLE.pack(MAGIC, self.scheme, self.method, self.timestamp, self.iv,
                             self.blob_id.encode("utf-8"), self.revision, self.size)


def unpack_preamble(raw: bytes) -> Preamble:
    if len(raw) != PREAMBLE.size:
        raise InvalidBlobError(f"preamble is {len(raw)} bytes, not {PREAMBLE.size}")
    magic, scheme, method, ts, iv, doc_id, rev, size = PREAMBLE.unpack(raw)
    if magic != MAGIC:
        raise InvalidBlobError(f"preamble magic is {magic!r}, not {MAGIC!r}")
    return Preamble(ts, iv, doc_id.decode("utf-8", "replace"), rev, size, scheme, method)


def blob_key(secret: bytes, blob_id: str) -> bytes:
    """The 32-byte AES key of one blob."""
    if len(secret) < MIN_SECRET:
        raise ValueError(f"the storage secret must be at least {MIN_SECRET} bytes, got {len(secret)}")
    return hmac.new(secret[len(secret) // 2:], blob_id.encode("utf-8"), hashlib.sha256).digest()


def encrypt_blob(secret: bytes, blob_id: str, plaintext: bytes, *, iv: bytes | None = None,
                 timestamp: int | None = None) -> bytes:
    """The bytes the server stores for this blob."""
    pre = Preamble(int(time.time()) if timestamp is None else timestamp,
                   os.urandom(IV_SIZE) if iv is None else iv, blob_id, REVISION, len(plaintext))
    packed = pre.pack()
    cipher = AES.new(blob_key(secret, blob_id), AES.MODE_GCM, nonce=pre.iv, mac_len=TAG_SIZE)
    cipher.update(packed)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return base64.urlsafe_b64encode(packed) + b" " + ciphertext + tag


def split_stored(stored: bytes) -> tuple[Preamble, bytes, bytes, bytes]:
    """(preamble, packed preamble, ciphertext, tag) of stored bytes; InvalidBlobError if malformed."""
    head, sep, body = stored.partition(b" ")
    if not sep or len(body) < TAG_SIZE:
        raise InvalidBlobError("stored blob lacks the 'preamble space ciphertext tag' layout")
    try:
        packed = base64.urlsafe_b64decode(head)
    except ValueError:
        raise InvalidBlobError("stored blob preamble is not base64url") from None
    return unpack_preamble(packed), packed, body[:-TAG_SIZE], body[-TAG_SIZE:]


def decrypt_blob(secret: bytes, blob_id: str, stored: bytes) -> bytes:
    """The plaintext; InvalidBlobError if the MAC check fails or the blob is another id's."""
    pre, packed, ciphertext, tag = split_stored(stored)
    if pre.scheme != SCHEME_SYMKEY or pre.method != METHOD_AES_256_GCM:
        raise InvalidBlobError(f"blob {blob_id}: scheme {pre.scheme} method {pre.method} is not symkey GCM")
    if pre.blob_id != blob_id:
        raise InvalidBlobError(f"blob {blob_id}: preamble names blob {pre.blob_id!r}")
    cipher = AES.new(blob_key(secret, blob_id), AES.MODE_GCM, nonce=pre.iv, mac_len=TAG_SIZE)
    cipher.update(packed)
    try:
        plaintext = cipher.decrypt_and_verify(ciphertext, tag)
    except ValueError:
        raise InvalidBlobError(f"blob {blob_id}: MAC check failed (wrong secret or damaged bytes)") from None
    if len(plaintext) != pre.size:
        raise InvalidBlobError(f"blob {blob_id}: preamble says {pre.size} bytes, got {len(plaintext)}")
    return plaintext


def tag_of(stored: bytes) -> str:
    """What the server's Tag header carries: base64url of the last 16 bytes."""
    return base64.urlsafe_b64encode(stored[-TAG_SIZE:]).decode("ascii")
