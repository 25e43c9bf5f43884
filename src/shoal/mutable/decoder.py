"""Checking and decoding mutable shares (pure), by Tahoe-LAFS 1.20's rules.

A share is believed only as far as it is proven:

1. its verification key hashes to the cap's fingerprint;
2. the signature over the signed prefix verifies under that key (so seqnum,
   root hash, IV, k, N, sizes are the writer's);
3. its block hash tree root is leaf `shnum` of the share hash tree whose
   root is signed (checked with the share's hash chain);
4. each block (MDMF: salt || block) is a leaf of that block hash tree.

Only then are k blocks zfec-decoded and decrypted with the segment's key.
The encrypted private key is believed once its writekey hash equals the cap's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shoal.crypto import rsa
from shoal.crypto.aes import aes_ctr
from shoal.crypto.hashes import (
    constant_time_equal,
    ssk_pubkey_fingerprint_hash,
    ssk_readkey_data_hash,
    ssk_writekey_hash,
)
from shoal.errors import Fault, ShoalError
from shoal.formats.mutable_share import SignedPrefix
from shoal.hashtree import HashTreeError, IncompleteHashTree, needed_hashes
from shoal.mutable.encoder import leaf_hash, segment_codec


class ShareCheckError(ShoalError):
    """A share failed a check; the message says which (the caller names the share)."""

    fault = Fault.SERVER


def check_verification_key(verification_key: bytes, fingerprint: bytes) -> rsa.PublicKey:
    if not constant_time_equal(ssk_pubkey_fingerprint_hash(verification_key), fingerprint):
        raise ShareCheckError("verification key does not match the cap's fingerprint")
    try:
        return rsa.public_key_from_der(verification_key)
    except rsa.BadKeyError as e:
        raise ShareCheckError(f"bad verification key: {e}") from None


def check_signature(key: rsa.PublicKey, prefix: SignedPrefix, signature: bytes) -> None:
    try:
        rsa.verify(key, signature, prefix.signable())
    except rsa.BadSignatureError:
        raise ShareCheckError(f"bad signature over seqnum {prefix.seqnum}") from None


def check_block_tree_root(
    prefix: SignedPrefix, shnum: int, chain: Mapping[int, bytes], block_tree: Sequence[bytes]
) -> bytes:
    """Prove the stored block hash tree's root (leaf shnum of the share tree); return it."""
    if not 0 <= shnum < prefix.n:
        raise ShareCheckError(f"share number {shnum} is not below N={prefix.n}")
    width = 1 << max(prefix.num_segments - 1, 0).bit_length()
    if len(block_tree) != 2 * width - 1:
        raise ShareCheckError(
            f"block hash tree has {len(block_tree)} nodes, {prefix.num_segments} segments need {2 * width - 1}"
        )
    tree = IncompleteHashTree(prefix.n, root=prefix.root_hash)
    try:
        wanted = {i: chain[i] for i in needed_hashes(prefix.n, shnum)}
        tree.add(hashes=wanted, leaves={shnum: block_tree[0]})
    except KeyError as e:
        raise ShareCheckError(f"share hash chain lacks node {e}") from None
    except HashTreeError as e:
        raise ShareCheckError(f"share hash chain: {e}") from None
    return block_tree[0]


def check_block(
    prefix: SignedPrefix, block_tree: Sequence[bytes], segnum: int, salt: bytes, block: bytes
) -> None:
    """Check one block (after check_block_tree_root proved block_tree[0])."""
    if len(block) != prefix.block_size(segnum):
        raise ShareCheckError(
            f"block of segment {segnum} is {len(block)} bytes, expected {prefix.block_size(segnum)}"
        )
    num = prefix.num_segments
    tree = IncompleteHashTree(num, root=block_tree[0])
    try:
        nodes = {i: block_tree[i] for i in needed_hashes(num, segnum)}
        tree.add(hashes=nodes, leaves={segnum: leaf_hash(prefix.version, salt, block)})
    except HashTreeError as e:
        raise ShareCheckError(f"block of segment {segnum}: {e}") from None


def decode_segment(
    prefix: SignedPrefix, readkey: bytes, segnum: int, salt: bytes, blocks: Mapping[int, bytes]
) -> bytes:
    """Plaintext of segment segnum from k checked blocks {shnum: block}."""
    length = prefix.segment_span(segnum)[1]
    codec = segment_codec(prefix.block_size(segnum) * prefix.k, prefix.k, prefix.n)
    crypttext = codec.decode(blocks, length)
    return aes_ctr(ssk_readkey_data_hash(salt, readkey), crypttext)


def decrypt_private_key(writekey: bytes, enc_privkey: bytes) -> rsa.PrivateKey:
    """The signing key, checked against the writekey (raises ShareCheckError)."""
    der = aes_ctr(writekey, enc_privkey)
    if not constant_time_equal(ssk_writekey_hash(der), writekey):
        raise ShareCheckError("encrypted private key does not match the writekey")
    try:
        return rsa.private_key_from_authenticated_der(der)  # the writekey hash vouches for the bytes
    except rsa.BadKeyError as e:
        raise ShareCheckError(f"private key: {e}") from None
