"""Pure streaming encoder for immutable (CHK) files, byte-exact with Tahoe-LAFS 1.20.

Plaintext goes in by chunks of any size; out come, per segment, the n blocks
(one per share) and, at the end, each share's trailer: the zeroed plaintext
hash tree region, the crypttext hash tree, the share's block hash tree, its
share hash chain and the URI extension block. A share's data is
`header + its blocks in segment order + its trailer`.

The work per segment is split in two steps so a shell can overlap them on
two threads: `encrypt_segment` (AES-CTR and the ciphertext hashes, in order)
and `encode_segment` (zfec and block hashes, any order). `feed` does both.
No reactor, no I/O; memory is one segment plus its n blocks.
"""

from collections.abc import Iterable
from typing import Protocol

import attrs

from shoal.caps import CHKCap
from shoal.codec import CODEC_NAME, SegmentCodec
from shoal.crypto.aes import AESCTR
from shoal.crypto.hashes import (
    block_hash,
    crypttext_hasher,
    crypttext_segment_hash,
    storage_index_hash,
    uri_extension_hash,
)
from shoal.formats.share_layout import ShareLayout, pack_share_hash_chain
from shoal.formats.ueb import pack_ueb
from shoal.hashtree import CompleteHashTree, tree_size
from shoal.immutable.params import FileShape

HASH_LENGTH = 32


@attrs.frozen
class EncodedSegment:
    segnum: int
    blocks: list[bytes]  # blocks[shnum]


@attrs.frozen
class EncodeResult:
    """What the uploader needs once every segment is out."""

    key: bytes
    storage_index: bytes
    ueb: bytes
    ueb_hash: bytes
    trailers: list[bytes]  # trailers[shnum]
    shape: FileShape

    @property
    def cap(self) -> CHKCap:
        s = self.shape
        return CHKCap(self.key, self.ueb_hash, s.k, s.n, s.size)


def ueb_fields(shape: FileShape, crypttext_hash: bytes, crypttext_root: bytes, share_root: bytes) -> dict:
    return {
        "codec_name": CODEC_NAME,
        "codec_params": shape.codec_params.serialize(),
        "tail_codec_params": shape.tail_codec_params.serialize(),
        "size": shape.size,
        "segment_size": shape.segment_size,
        "num_segments": shape.num_segments,
        "needed_shares": shape.k,
        "total_shares": shape.n,
        "crypttext_hash": crypttext_hash,
        "crypttext_root_hash": crypttext_root,
        "share_root_hash": share_root,
    }


def ueb_length(shape: FileShape) -> int:
    """Exact UEB size, known before encoding (every hash is 32 bytes)."""
    dummy = b"\x00" * HASH_LENGTH
    return len(pack_ueb(ueb_fields(shape, dummy, dummy, dummy)))


class StreamCipher(Protocol):
    """What the encoder encrypts with: AES-CTR, or nothing for input that is ciphertext."""

    def process(self, data: bytes) -> bytes: ...


class AlreadyEncrypted:
    """The cipher for input that is ciphertext already (a repairer holds no key)."""

    @staticmethod
    def process(data: bytes) -> bytes:
        return data


class ImmutableEncoder:
    """Encode one file of known size under one AES key.

    `cipher` replaces AES-CTR under `key` (AlreadyEncrypted: the input is
    ciphertext; `key` then only names the file in the result)."""

    def __init__(self, key: bytes, shape: FileShape, cipher: StreamCipher | None = None) -> None:
        self.key = key
        self.shape = shape
        self.layout = ShareLayout.compute(
            shape.block_size, shape.share_data_size, shape.num_segments, shape.num_share_hashes
        )
        self._aes: StreamCipher = AESCTR(key) if cipher is None else cipher
        self._codec = SegmentCodec(shape.codec_params)
        self._tail_codec = SegmentCodec(shape.tail_codec_params)
        self._crypttext_hasher = crypttext_hasher()
        self._segment_hashes: list[bytes] = []
        self._block_hashes: list[list[bytes | None]] = [
            [None] * shape.num_segments for _ in range(shape.n)
        ]
        self._pending = bytearray()
        self._consumed = 0

    @property
    def header(self) -> bytes:
        """First bytes of every share (identical for all shares)."""
        return self.layout.pack()

    def share_size(self) -> int:
        return self.layout.share_size(ueb_length(self.shape))

    # --- the two steps of a segment ------------------------------------
    def encrypt_segment(self, plaintext: bytes) -> tuple[int, bytes]:
        """Encrypt and hash the next segment; segments must come in order."""
        segnum = len(self._segment_hashes)
        if segnum >= self.shape.num_segments:
            raise ValueError("more segments than the file size allows")
        if len(plaintext) != self.shape.segment_length(segnum):
            raise ValueError(
                f"segment {segnum} is {len(plaintext)} bytes, expected "
                f"{self.shape.segment_length(segnum)}"
            )
        crypttext = self._aes.process(plaintext)
        self._crypttext_hasher.update(crypttext)
        self._segment_hashes.append(crypttext_segment_hash(crypttext))
        return segnum, crypttext

    def encode_segment(self, segnum: int, crypttext: bytes) -> EncodedSegment:
        """Erasure-code one encrypted segment and record its block hashes."""
        last = segnum == self.shape.num_segments - 1
        blocks = (self._tail_codec if last else self._codec).encode(crypttext)
        for shnum, block in enumerate(blocks):
            self._block_hashes[shnum][segnum] = block_hash(block)
        return EncodedSegment(segnum, blocks)

    # --- convenience: chunks of any size ---------------------------------
    def feed(self, data: bytes) -> list[EncodedSegment]:
        """Accept more plaintext; return the segments it completed."""
        self._pending += data
        out = []
        while len(self._segment_hashes) < self.shape.num_segments:
            want = self.shape.segment_length(len(self._segment_hashes))
            if len(self._pending) < want:
                break
            chunk = bytes(self._pending[:want])
            del self._pending[:want]
            out.append(self.encode_segment(*self.encrypt_segment(chunk)))
        self._consumed += len(data)
        if self._consumed > self.shape.size:
            raise ValueError(f"got {self._consumed} bytes of plaintext, file size is {self.shape.size}")
        return out

    def finish(self) -> EncodeResult:
        """Build the hash trees and UEB once every segment has been encoded."""
        shape = self.shape
        if len(self._segment_hashes) != shape.num_segments or self._pending:
            raise ValueError(
                f"finish() after {len(self._segment_hashes)} of {shape.num_segments} segments"
            )
        crypttext_tree = CompleteHashTree(self._segment_hashes)
        block_trees = []
        for shnum, hashes in enumerate(self._block_hashes):
            if any(h is None for h in hashes):
                raise ValueError(f"share {shnum} is missing blocks")
            block_trees.append(CompleteHashTree([h for h in hashes if h is not None]))
        share_tree = CompleteHashTree([t.root for t in block_trees])
        ueb = pack_ueb(
            ueb_fields(shape, self._crypttext_hasher.digest(), crypttext_tree.root, share_tree.root)
        )
        common = (
            b"\x00" * (tree_size(shape.num_segments) * HASH_LENGTH) + crypttext_tree.to_bytes()
        )
        tail = self.layout.pack_ueb(ueb)
        trailers = []
        for shnum, tree in enumerate(block_trees):
            chain = [(i, share_tree[i]) for i in share_tree.needed_hashes(shnum, include_leaf=True)]
            trailers.append(common + tree.to_bytes() + pack_share_hash_chain(chain) + tail)
        return EncodeResult(
            key=self.key,
            storage_index=storage_index_hash(self.key),
            ueb=ueb,
            ueb_hash=uri_extension_hash(ueb),
            trailers=trailers,
            shape=shape,
        )


def encode_all(key: bytes, shape: FileShape, chunks: Iterable[bytes]) -> tuple[list[bytes], EncodeResult]:
    """Whole shares in memory (tests and small files only)."""
    enc = ImmutableEncoder(key, shape)
    shares = [bytearray(enc.header) for _ in range(shape.n)]
    for chunk in chunks:
        for seg in enc.feed(chunk):
            for shnum, block in enumerate(seg.blocks):
                shares[shnum] += block
    result = enc.finish()
    return [bytes(s) + t for s, t in zip(shares, result.trailers, strict=True)], result
