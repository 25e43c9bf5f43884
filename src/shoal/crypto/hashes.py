"""Every tagged SHA-256d hash of Tahoe-LAFS 1.20, with its tag, in one place.

SHA-256d is SHA-256 applied twice. A *tagged hash* is
SHA-256d(netstring(tag) || value); a *tagged pair hash* is
SHA-256d(netstring(tag) || netstring(a) || netstring(b)); either may be
truncated (16 bytes for keys and storage indexes). The tags are the byte
strings Tahoe's own code uses (src/allmydata/util/hashutil.py is the spec).
"""

import hashlib
import hmac as _stdlib_hmac

from shoal.encoding.netstring import netstring

KEY_LENGTH = 16  # AES-128 keys, storage indexes, mutable read/write keys
HASH_LENGTH = 32
SALT_LENGTH = 16

# immutable files
STORAGE_INDEX_TAG = b"allmydata_immutable_key_to_storage_index_v1"
BLOCK_TAG = b"allmydata_encoded_subshare_v1"
UEB_TAG = b"allmydata_uri_extension_v1"
PLAINTEXT_TAG = b"allmydata_plaintext_v1"
CIPHERTEXT_TAG = b"allmydata_crypttext_v1"
CIPHERTEXT_SEGMENT_TAG = b"allmydata_crypttext_segment_v1"
PLAINTEXT_SEGMENT_TAG = b"allmydata_plaintext_segment_v1"
CONVERGENT_ENCRYPTION_TAG = b"allmydata_immutable_content_to_key_with_added_secret_v1+"
# Merkle trees
MERKLE_INTERNAL_TAG = b"Merkle tree internal node"
MERKLE_EMPTY_LEAF_TAG = b"Merkle tree empty leaf"
# leases
CLIENT_RENEWAL_TAG = b"allmydata_client_renewal_secret_v1"
CLIENT_CANCEL_TAG = b"allmydata_client_cancel_secret_v1"
FILE_RENEWAL_TAG = b"allmydata_file_renewal_secret_v1"
FILE_CANCEL_TAG = b"allmydata_file_cancel_secret_v1"
BUCKET_RENEWAL_TAG = b"allmydata_bucket_renewal_secret_v1"
BUCKET_CANCEL_TAG = b"allmydata_bucket_cancel_secret_v1"
# mutable files
MUTABLE_WRITEKEY_TAG = b"allmydata_mutable_privkey_to_writekey_v1"
MUTABLE_WRITE_ENABLER_MASTER_TAG = b"allmydata_mutable_writekey_to_write_enabler_master_v1"
MUTABLE_WRITE_ENABLER_TAG = b"allmydata_mutable_write_enabler_master_and_nodeid_to_write_enabler_v1"
MUTABLE_PUBKEY_TAG = b"allmydata_mutable_pubkey_to_fingerprint_v1"
MUTABLE_READKEY_TAG = b"allmydata_mutable_writekey_to_readkey_v1"
MUTABLE_DATAKEY_TAG = b"allmydata_mutable_readkey_to_datakey_v1"
MUTABLE_STORAGEINDEX_TAG = b"allmydata_mutable_readkey_to_storage_index_v1"
MUTABLE_CONTAINER_HEADER_TAG = b"allmydata_mutable_container_header"
# directories
DIRNODE_CHILD_WRITECAP_TAG = b"allmydata_mutable_writekey_and_salt_to_dirnode_child_capkey_v1"
DIRNODE_CHILD_SALT_TAG = b"allmydata_dirnode_child_rwcap_to_salt_v1"
BACKUPDB_DIRHASH_TAG = b"allmydata_backupdb_dirhash_v1"
# shoal's own: the HTTP upload secret of one share upload, derived from its (per-server,
# per-file) lease renewal secret so that a restarted client presents the same one
HTTP_UPLOAD_SECRET_TAG = b"shoal_http_upload_secret_from_bucket_renewal_secret_v1"


class TaggedHasher:
    """Incremental tagged SHA-256d: feed with update(), finish with digest()."""

    __slots__ = ("_inner", "_truncate")

    def __init__(self, tag: bytes, truncate_to: int | None = None) -> None:
        self._inner = hashlib.sha256(netstring(tag))
        self._truncate = truncate_to

    def update(self, data: bytes | memoryview) -> None:
        self._inner.update(data)

    def digest(self) -> bytes:
        out = hashlib.sha256(self._inner.digest()).digest()
        return out[: self._truncate] if self._truncate else out


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def tagged_hash(tag: bytes, value: bytes, truncate_to: int | None = None) -> bytes:
    out = sha256d(netstring(tag) + value)
    return out[:truncate_to] if truncate_to else out


def tagged_pair_hash(tag: bytes, a: bytes, b: bytes, truncate_to: int | None = None) -> bytes:
    out = sha256d(netstring(tag) + netstring(a) + netstring(b))
    return out[:truncate_to] if truncate_to else out


# --- immutable -------------------------------------------------------------

def storage_index_hash(key: bytes) -> bytes:
    """CHK AES key -> 16-byte storage index."""
    return tagged_hash(STORAGE_INDEX_TAG, key, KEY_LENGTH)


def block_hash(data: bytes) -> bytes:
    """Leaf of a block hash tree (immutable and mutable)."""
    return tagged_hash(BLOCK_TAG, data)


def uri_extension_hash(data: bytes) -> bytes:
    return tagged_hash(UEB_TAG, data)


def plaintext_hash(data: bytes) -> bytes:
    return tagged_hash(PLAINTEXT_TAG, data)


def plaintext_segment_hash(data: bytes) -> bytes:
    return tagged_hash(PLAINTEXT_SEGMENT_TAG, data)


def crypttext_hash(data: bytes) -> bytes:
    return tagged_hash(CIPHERTEXT_TAG, data)


def crypttext_hasher() -> TaggedHasher:
    return TaggedHasher(CIPHERTEXT_TAG)


def crypttext_segment_hash(data: bytes) -> bytes:
    return tagged_hash(CIPHERTEXT_SEGMENT_TAG, data)


def crypttext_segment_hasher() -> TaggedHasher:
    return TaggedHasher(CIPHERTEXT_SEGMENT_TAG)


def convergence_tag(k: int, n: int, segment_size: int, secret: bytes) -> bytes:
    """The tag of the convergent-key hash: it embeds the secret and "k,N,segsize"."""
    if not (1 <= k <= n <= 256):
        raise ValueError(f"bad encoding parameters k={k} n={n} (need 1 <= k <= n <= 256)")
    params = b"%d,%d,%d" % (k, n, segment_size)
    return CONVERGENT_ENCRYPTION_TAG + netstring(secret) + netstring(params)


def convergence_hasher(k: int, n: int, segment_size: int, secret: bytes) -> TaggedHasher:
    """Feed the whole plaintext; digest() is the 16-byte convergent AES key."""
    return TaggedHasher(convergence_tag(k, n, segment_size, secret), KEY_LENGTH)


# --- Merkle trees ----------------------------------------------------------

def merkle_pair_hash(left: bytes, right: bytes) -> bytes:
    return tagged_pair_hash(MERKLE_INTERNAL_TAG, left, right)


def merkle_empty_leaf_hash(leafnum: int) -> bytes:
    """Padding leaf at position leafnum of the bottom row."""
    return tagged_hash(MERKLE_EMPTY_LEAF_TAG, b"%d" % leafnum)


# --- leases ----------------------------------------------------------------
# The client secrets swap the arguments: the node's lease secret is the tag.

def client_renewal_secret(lease_secret: bytes) -> bytes:
    return tagged_hash(lease_secret, CLIENT_RENEWAL_TAG)


def client_cancel_secret(lease_secret: bytes) -> bytes:
    return tagged_hash(lease_secret, CLIENT_CANCEL_TAG)


def file_renewal_secret(client_renewal: bytes, storage_index: bytes) -> bytes:
    return tagged_pair_hash(FILE_RENEWAL_TAG, client_renewal, storage_index)


def file_cancel_secret(client_cancel: bytes, storage_index: bytes) -> bytes:
    return tagged_pair_hash(FILE_CANCEL_TAG, client_cancel, storage_index)


def bucket_renewal_secret(file_renewal: bytes, lease_seed: bytes) -> bytes:
    """Per-server renew secret; lease_seed is the server's 20-byte binary tubid."""
    return tagged_pair_hash(BUCKET_RENEWAL_TAG, file_renewal, lease_seed)


def bucket_cancel_secret(file_cancel: bytes, lease_seed: bytes) -> bytes:
    return tagged_pair_hash(BUCKET_CANCEL_TAG, file_cancel, lease_seed)


# --- mutable files ---------------------------------------------------------

def ssk_writekey_hash(private_key_der: bytes) -> bytes:
    return tagged_hash(MUTABLE_WRITEKEY_TAG, private_key_der, KEY_LENGTH)


def ssk_readkey_hash(writekey: bytes) -> bytes:
    return tagged_hash(MUTABLE_READKEY_TAG, writekey, KEY_LENGTH)


def ssk_storage_index_hash(readkey: bytes) -> bytes:
    return tagged_hash(MUTABLE_STORAGEINDEX_TAG, readkey, KEY_LENGTH)


def ssk_pubkey_fingerprint_hash(public_key_der: bytes) -> bytes:
    return tagged_hash(MUTABLE_PUBKEY_TAG, public_key_der)


def ssk_readkey_data_hash(salt: bytes, readkey: bytes) -> bytes:
    """Per-file (SDMF) or per-segment (MDMF) data key from the salt and readkey."""
    return tagged_pair_hash(MUTABLE_DATAKEY_TAG, salt, readkey, KEY_LENGTH)


def ssk_write_enabler_master_hash(writekey: bytes) -> bytes:
    return tagged_hash(MUTABLE_WRITE_ENABLER_MASTER_TAG, writekey)


def ssk_write_enabler_hash(writekey: bytes, server_seed: bytes) -> bytes:
    """Write enabler for one server; server_seed is its 20-byte binary tubid."""
    if len(server_seed) != 20:
        raise ValueError(f"write-enabler server seed must be 20 bytes, got {len(server_seed)}")
    master = ssk_write_enabler_master_hash(writekey)
    return tagged_pair_hash(MUTABLE_WRITE_ENABLER_TAG, master, server_seed)


def mutable_container_magic_suffix(human_readable: bytes) -> bytes:
    """The 5 bytes that end a v2+ mutable container magic, from its text part."""
    return tagged_hash(MUTABLE_CONTAINER_HEADER_TAG, human_readable, 5)


# --- directories -----------------------------------------------------------

def dirnode_child_salt_hash(child_rwcap: bytes) -> bytes:
    """16-byte salt (IV) for encrypting a child's write cap, derived from that cap."""
    return tagged_hash(DIRNODE_CHILD_SALT_TAG, child_rwcap, SALT_LENGTH)


def dirnode_child_key_hash(salt: bytes, dir_writekey: bytes) -> bytes:
    return tagged_pair_hash(DIRNODE_CHILD_WRITECAP_TAG, salt, dir_writekey, KEY_LENGTH)


def dirnode_child_mac(key: bytes, data: bytes) -> bytes:
    """Tahoe's dirnode MAC: the key is XORed with ipad/opad without being
    padded to the block size, so it is not RFC 2104 HMAC (written, never checked)."""
    inner = hashlib.sha256(bytes(c ^ 0x36 for c in key) + data).digest()
    return hashlib.sha256(bytes(c ^ 0x5C for c in key) + inner).digest()


def backupdb_dirhash(data: bytes) -> bytes:
    return tagged_hash(BACKUPDB_DIRHASH_TAG, data)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return _stdlib_hmac.compare_digest(a, b)


def http_upload_secret(bucket_renew_secret: bytes) -> bytes:
    """The upload secret a client presents to one server for one file (shoal's, not Tahoe's:
    Tahoe 1.20 draws a random one per allocation, so an upload it starts again cannot resume)."""
    return tagged_hash(HTTP_UPLOAD_SECRET_TAG, bucket_renew_secret)
