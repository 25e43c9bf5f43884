"""Turning plaintext into a signed version of a mutable file (pure), as Tahoe-LAFS 1.20 does.

* Each segment gets a fresh random 16-byte salt; its AES-128-CTR key is
  the tagged hash of (salt, readkey); the ciphertext is zfec-coded k-of-N,
  the tail padded with zeros to a multiple of k. SDMF has one segment (its
  salt is the share's IV; an empty SDMF file still gets a random IV); MDMF
  segments are 128 KiB rounded up to a multiple of k.
* Block hash tree leaf: block_hash(block) in SDMF, block_hash(salt || block)
  in MDMF. Each share stores its whole tree; a tree over no leaves is the
  one empty-leaf hash.
* Share hash tree over the N block-tree roots; share i carries the nodes
  that prove leaf i (not the leaf), sorted by node number. Its root is in
  the signed prefix, which is RSA-PSS signed.
* The private key (PKCS#8 DER) is stored AES-CTR encrypted under the writekey.
* An MDMF in-place update re-encodes only the touched segments and reuses
  the other leaves of every share's block hash tree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import attrs

from shoal.codec import CodecParams, SegmentCodec, next_multiple
from shoal.crypto import rsa
from shoal.crypto.aes import aes_ctr
from shoal.crypto.hashes import (
    block_hash,
    merkle_empty_leaf_hash,
    ssk_readkey_data_hash,
    ssk_readkey_hash,
    ssk_writekey_hash,
)
from shoal.formats.mutable_share import (
    MDMF_DEFAULT_SEGMENT_SIZE,
    MDMF_VERSION,
    SALT_SIZE,
    SDMF_VERSION,
    SignedPrefix,
    mdmf_segment_size,
    mdmf_write_vectors,
    pack_sdmf_share,
)
from shoal.hashtree import CompleteHashTree, needed_hashes

Salts = Callable[[], bytes]


def random_salt() -> bytes:
    return os.urandom(SALT_SIZE)


@attrs.frozen(repr=False)
class WriteKeys:
    """What a writer needs besides the cap: the signing key and its derivatives."""

    private_key: rsa.PrivateKey
    writekey: bytes
    readkey: bytes
    verification_key: bytes  # SubjectPublicKeyInfo DER
    enc_privkey: bytes

    @classmethod
    def from_private_key(cls, key: rsa.PrivateKey) -> WriteKeys:
        der = rsa.private_key_to_der(key)
        writekey = ssk_writekey_hash(der)
        return cls(
            private_key=key,
            writekey=writekey,
            readkey=ssk_readkey_hash(writekey),
            verification_key=rsa.public_key_to_der(key.public_key()),
            enc_privkey=aes_ctr(writekey, der),
        )

    def __repr__(self) -> str:
        return "<WriteKeys>"


def flat_tree(leaves: Sequence[bytes]) -> list[bytes]:
    """A whole hash tree, root first, as shares store it (no leaves: one empty leaf)."""
    if not leaves:
        return [merkle_empty_leaf_hash(0)]
    return list(CompleteHashTree(leaves))


def tree_leaves(tree: Sequence[bytes], num_leaves: int) -> list[bytes]:
    """The first num_leaves leaves of a stored flat tree."""
    if num_leaves == 0:
        return []
    width = (len(tree) + 1) // 2
    return list(tree[width - 1: width - 1 + num_leaves])


_codecs: dict[tuple[int, int, int], SegmentCodec] = {}


def segment_codec(size: int, k: int, n: int) -> SegmentCodec:
    key = (size, k, n)
    codec = _codecs.get(key)
    if codec is None:
        if len(_codecs) > 64:
            _codecs.clear()
        codec = _codecs[key] = SegmentCodec(CodecParams(size, k, n))
    return codec


def encode_segment(readkey: bytes, k: int, n: int, plaintext: bytes, salt: bytes) -> list[bytes]:
    """The N blocks of one segment."""
    crypttext = aes_ctr(ssk_readkey_data_hash(salt, readkey), plaintext)
    return segment_codec(next_multiple(len(crypttext), k), k, n).encode(crypttext)


def leaf_hash(version: int, salt: bytes, block: bytes) -> bytes:
    return block_hash(salt + block if version == MDMF_VERSION else block)


@attrs.frozen
class EncodedVersion:
    """A signed version, ready to write: every share's parts."""

    prefix: SignedPrefix
    signature: bytes
    chains: dict[int, dict[int, bytes]]
    trees: dict[int, list[bytes]]
    blocks: dict[int, dict[int, tuple[bytes, bytes]]]  # shnum -> segnum -> (salt, block)

    def share_writes(self, shnum: int, keys: WriteKeys) -> list[tuple[int, bytes]]:
        """The (offset, data) writes that put share shnum of this version in a slot."""
        if self.prefix.version == SDMF_VERSION:
            blocks = self.blocks[shnum]
            block = blocks[0][1] if blocks else b""
            return [(0, pack_sdmf_share(
                self.prefix, keys.verification_key, self.signature, self.chains[shnum],
                self.trees[shnum], block, keys.enc_privkey,
            ))]
        return mdmf_write_vectors(
            self.prefix, keys.enc_privkey, self.chains[shnum], self.signature,
            keys.verification_key, self.blocks[shnum], self.trees[shnum],
        )


def segment_size_for(
    version: int, k: int, data_length: int, max_segment_size: int = MDMF_DEFAULT_SEGMENT_SIZE
) -> int:
    """SDMF: the whole file (rounded up to k); MDMF: 128 KiB rounded up to k."""
    if version == SDMF_VERSION:
        return next_multiple(data_length, k)
    return mdmf_segment_size(k, max_segment_size)


def sign_version(
    *,
    version: int,
    seqnum: int,
    k: int,
    n: int,
    segment_size: int,
    data_length: int,
    iv: bytes | None,
    leaves: Mapping[int, Sequence[bytes]],
    blocks: dict[int, dict[int, tuple[bytes, bytes]]],
    keys: WriteKeys,
) -> EncodedVersion:
    """Build the hash trees over every share's block leaves, and sign."""
    trees = {sh: flat_tree(leaves[sh]) for sh in range(n)}
    share_tree = CompleteHashTree([trees[sh][0] for sh in range(n)])
    chains = {sh: {i: share_tree[i] for i in needed_hashes(n, sh)} for sh in range(n)}
    prefix = SignedPrefix(
        version, seqnum, share_tree.root, iv if version == SDMF_VERSION else None,
        k, n, segment_size, data_length,
    )
    signature = rsa.sign(keys.private_key, prefix.signable())
    return EncodedVersion(prefix, signature, chains, trees, blocks)


def encode_version(
    contents: bytes,
    *,
    version: int,
    seqnum: int,
    k: int,
    n: int,
    keys: WriteKeys,
    salts: Salts = random_salt,
    max_segment_size: int = MDMF_DEFAULT_SEGMENT_SIZE,
) -> EncodedVersion:
    """Every share of a new version holding `contents`."""
    segsize = segment_size_for(version, k, len(contents), max_segment_size)
    num_segments = -(-len(contents) // segsize) if segsize else 0
    blocks: dict[int, dict[int, tuple[bytes, bytes]]] = {sh: {} for sh in range(n)}
    leaves: dict[int, list[bytes]] = {sh: [] for sh in range(n)}
    iv = None
    for segnum in range(num_segments):
        salt = salts()
        iv = iv or salt
        plain = contents[segnum * segsize:(segnum + 1) * segsize]
        for sh, block in enumerate(encode_segment(keys.readkey, k, n, plain, salt)):
            blocks[sh][segnum] = (salt, block)
            leaves[sh].append(leaf_hash(version, salt, block))
    if version == SDMF_VERSION and iv is None:
        iv = salts()  # an empty SDMF file still signs an IV
    return sign_version(
        version=version, seqnum=seqnum, k=k, n=n, segment_size=segsize,
        data_length=len(contents), iv=iv, leaves=leaves, blocks=blocks, keys=keys,
    )


def encode_update(
    old: SignedPrefix,
    old_leaves: Mapping[int, Sequence[bytes]],
    segments: Mapping[int, bytes],
    *,
    data_length: int,
    seqnum: int,
    keys: WriteKeys,
    salts: Salts = random_salt,
) -> EncodedVersion:
    """A new MDMF version that differs from `old` only in `segments` (segnum ->
    new plaintext of that whole segment); old_leaves: every share's block
    hash tree leaves of the old version. Only the touched blocks are kept."""
    if old.version != MDMF_VERSION:
        raise ValueError("in-place updates are for MDMF versions")
    k, n, segsize = old.k, old.n, old.segment_size
    num_segments = -(-data_length // segsize) if segsize else 0
    blocks: dict[int, dict[int, tuple[bytes, bytes]]] = {sh: {} for sh in range(n)}
    leaves: dict[int, list[bytes]] = {}
    for sh in range(n):
        kept = list(old_leaves[sh])[:num_segments]
        leaves[sh] = kept + [b""] * (num_segments - len(kept))
    for segnum, plain in sorted(segments.items()):
        if not 0 <= segnum < num_segments:
            raise ValueError(f"segment {segnum} outside a file of {num_segments} segments")
        salt = salts()
        for sh, block in enumerate(encode_segment(keys.readkey, k, n, plain, salt)):
            blocks[sh][segnum] = (salt, block)
            leaves[sh][segnum] = leaf_hash(MDMF_VERSION, salt, block)
    for sh in range(n):
        if any(not leaf for leaf in leaves[sh]):
            raise ValueError(f"share {sh}: a segment is neither old nor rewritten")
    return sign_version(
        version=MDMF_VERSION, seqnum=seqnum, k=k, n=n, segment_size=segsize,
        data_length=data_length, iv=None, leaves=leaves, blocks=blocks, keys=keys,
    )
