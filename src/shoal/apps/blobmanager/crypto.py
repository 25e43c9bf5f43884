"""Client-side blob encryption laid out as Soledad's client does (app-apis.md 1.6).

* Per-blob key: HMAC-SHA256 over the blob id (UTF-8), keyed with the user's
  remote storage secret after its first 64 bytes (``secret[64:]``, Soledad's
  ``SECRET_LENGTH``; 448 bytes of a 512-byte secret). Blobs written by older
  shoal (keyed with ``secret[len // 2:]``) still decrypt: a MAC failure under
  Soledad's key retries the old key before giving up.
* Cipher AES-256-GCM, 16-byte IV, 16-byte tag.
* Preamble: struct ``2sbbQ16s255p255pQ`` = magic ``\\x13\\x37``, scheme
  (symkey=1), method (aes_256_gcm=2), timestamp, IV, doc id (the blob id),
  revision (``ImmutableRevision``), and the size rounded up to blur lengths: the
  least power of two above it, at least 4096 (Soledad's ``_ceiling``: 4095 ->
  4096, 4096 -> 8192). Decryption accepts any declared size at or above the
  plaintext's (older shoal wrote the exact size) and Soledad's legacy
  preamble without a size (``2sbbQ16s255p255p``). The packed preamble is the GCM associated data, so
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
LEGACY_PREAMBLE = struct.Struct("2sbbQ16s255p255p")
TAG_SIZE = 16
IV_SIZE = 16
REVISION = b"ImmutableRevision"
SECRET_LENGTH = 64  # Soledad: the first 64 bytes of the remote secret never key blobs
MIN_SECRET = SECRET_LENGTH + 32  # at least 32 bytes of key material after them
MIN_PADDED = 4096


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
    """A preamble; the legacy form has no size (reported as -1)."""
    if len(raw) == PREAMBLE.size:
        magic, scheme, method, ts, iv, doc_id, rev, size = PREAMBLE.unpack(raw)
    elif len(raw) == LEGACY_PREAMBLE.size:
        magic, scheme, method, ts, iv, doc_id, rev = LEGACY_PREAMBLE.unpack(raw)
        size = -1
    else:
        raise InvalidBlobError(f"preamble is {len(raw)} bytes, not {PREAMBLE.size}")
    if magic != MAGIC:
        raise InvalidBlobError(f"preamble magic is {magic!r}, not {MAGIC!r}")
    return Preamble(ts, iv, doc_id.decode("utf-8", "replace"), rev, size, scheme, method)


def padded_size(size: int) -> int:
    """The size a preamble declares: the least power of two strictly above `size`, at least 4096."""
    if size < 0:
        raise ValueError(f"a blob size cannot be negative, got {size}")
    return max(MIN_PADDED, 1 << size.bit_length())


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET:
        raise ValueError(f"the storage secret must be at least {MIN_SECRET} bytes, got {len(secret)}")


def blob_key(secret: bytes, blob_id: str) -> bytes:
    """The 32-byte AES key of one blob, as Soledad derives it: HMAC-SHA256(secret[64:], blob id)."""
    _check_secret(secret)
    return hmac.new(secret[SECRET_LENGTH:], blob_id.encode("utf-8"), hashlib.sha256).digest()


def legacy_blob_key(secret: bytes, blob_id: str) -> bytes:
    """The key older shoal used (the second half of the secret); read-only fallback."""
    _check_secret(secret)
    return hmac.new(secret[len(secret) // 2:], blob_id.encode("utf-8"), hashlib.sha256).digest()


def encrypt_blob(secret: bytes, blob_id: str, plaintext: bytes, *, iv: bytes | None = None,
                 timestamp: int | None = None) -> bytes:
    """The bytes the server stores for this blob."""
    pre = Preamble(int(time.time()) if timestamp is None else timestamp,
                   os.urandom(IV_SIZE) if iv is None else iv, blob_id, REVISION, padded_size(len(plaintext)))
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
    if pre.revision != REVISION:
        raise InvalidBlobError(f"blob {blob_id}: preamble revision {pre.revision!r} is not {REVISION!r}")
    keys = [blob_key(secret, blob_id)]
    old = legacy_blob_key(secret, blob_id)
    if old != keys[0]:
        keys.append(old)
    for key in keys:
        cipher = AES.new(key, AES.MODE_GCM, nonce=pre.iv, mac_len=TAG_SIZE)
        cipher.update(packed)
        try:
            plaintext = cipher.decrypt_and_verify(ciphertext, tag)
        except ValueError:
            continue
        if pre.size >= 0 and len(plaintext) > pre.size:
            raise InvalidBlobError(f"blob {blob_id}: preamble says at most {pre.size} bytes, got {len(plaintext)}")
        return plaintext
    raise InvalidBlobError(f"blob {blob_id}: MAC check failed (wrong secret or damaged bytes)")


def tag_of(stored: bytes) -> str:
    """What the server's Tag header carries: base64url of the last 16 bytes."""
    return base64.urlsafe_b64encode(stored[-TAG_SIZE:]).decode("ascii")
