"""The immutable share *data* layout of Tahoe-LAFS 1.20 (what a bucket stores).

    version word (4 bytes: 1 or 2)
    block size, share data size, then offsets of: data, (unused) plaintext
      hash tree, crypttext hash tree, block hashes, share hashes, UEB
      -- 4-byte fields in v1 (data starts at 0x24), 8-byte in v2 (0x44)
    blocks, one per segment (the tail block may be shorter)
    plaintext hash tree region: zero bytes, the size of a segment tree
    crypttext hash tree: every node, flat, root first
    block hash tree: every node, flat, root first
    share hash chain: (2-byte node number, 32-byte hash) pairs
    UEB length (4 bytes in v1, 8 in v2) and the UEB

v1 is written unless a field would not fit in 32 bits.
"""

import struct

import attrs

from shoal.crypto.hashes import HASH_LENGTH
from shoal.formats.errors import FormatError
from shoal.hashtree import tree_size

V1_HEADER_SIZE = 0x24
V2_HEADER_SIZE = 0x44
SHARE_HASH_ENTRY_SIZE = 2 + HASH_LENGTH
MAX_UEB_LENGTH = 2000  # a stated UEB length at or above this marks a corrupt share


class ShareLayoutError(FormatError):
    """The share's header or hash regions are malformed."""


@attrs.frozen
class ShareLayout:
    """Sizes and offsets of one immutable share's data."""

    version: int
    block_size: int
    data_size: int
    data: int
    plaintext_hash_tree: int
    crypttext_hash_tree: int
    block_hashes: int
    share_hashes: int
    uri_extension: int

    @classmethod
    def compute(
        cls, block_size: int, data_size: int, num_segments: int, num_share_hashes: int
    ) -> "ShareLayout":
        """The layout an uploader writes (v1 when every field fits in 32 bits)."""
        seg_tree = tree_size(num_segments) * HASH_LENGTH
        chain = num_share_hashes * SHARE_HASH_ENTRY_SIZE
        for version, start in ((1, V1_HEADER_SIZE), (2, V2_HEADER_SIZE)):
            offsets = [start]
            for size in (data_size, seg_tree, seg_tree, seg_tree, chain):
                offsets.append(offsets[-1] + size)
            if version == 2 or max(block_size, data_size, offsets[-1]) < 2**32:
                return cls(version, block_size, data_size, *offsets)
        raise AssertionError("unreachable")

    @property
    def field_size(self) -> int:
        return 4 if self.version == 1 else 8

    @property
    def header_size(self) -> int:
        return V1_HEADER_SIZE if self.version == 1 else V2_HEADER_SIZE

    def pack(self) -> bytes:
        fmt = ">L" + ("LL" + "L" * 6 if self.version == 1 else "QQ" + "Q" * 6)
        return struct.pack(
            fmt,
            self.version,
            self.block_size,
            self.data_size,
            self.data,
            self.plaintext_hash_tree,
            self.crypttext_hash_tree,
            self.block_hashes,
            self.share_hashes,
            self.uri_extension,
        )

    def share_size(self, ueb_length: int) -> int:
        """Total bytes of the share with a UEB of ueb_length bytes."""
        return self.uri_extension + self.field_size + ueb_length

    def pack_ueb(self, ueb: bytes) -> bytes:
        return struct.pack(">L" if self.version == 1 else ">Q", len(ueb)) + ueb

    @classmethod
    def parse(cls, header: bytes) -> "ShareLayout":
        """Read the header (the first 0x44 bytes suffice) and check it is self-consistent."""
        if len(header) < 4:
            raise ShareLayoutError(f"share header truncated: {len(header)} bytes")
        (version,) = struct.unpack(">L", header[:4])
        if version == 1:
            size, fmt = V1_HEADER_SIZE, ">LLLLLLLLL"
        elif version == 2:
            size, fmt = V2_HEADER_SIZE, ">LQQQQQQQQ"
        else:
            raise ShareLayoutError(f"unknown immutable share version {version}")
        if len(header) < size:
            raise ShareLayoutError(f"share header truncated: {len(header)} of {size} bytes")
        layout = cls(*struct.unpack(fmt, header[:size]))
        order = [
            layout.data,
            layout.plaintext_hash_tree,
            layout.crypttext_hash_tree,
            layout.block_hashes,
            layout.share_hashes,
            layout.uri_extension,
        ]
        if layout.data != size or order != sorted(order):
            raise ShareLayoutError(f"share offsets out of order: {order}")
        return layout

    def check_against(self, block_size: int, data_size: int, num_segments: int) -> None:
        """Check the regions have the sizes the (trusted) UEB implies."""
        seg_tree = tree_size(num_segments) * HASH_LENGTH
        if self.block_hashes - self.crypttext_hash_tree != seg_tree:
            raise ShareLayoutError("crypttext hash tree region has the wrong size")
        if self.share_hashes - self.block_hashes != seg_tree:
            raise ShareLayoutError("block hash tree region has the wrong size")
        if self.plaintext_hash_tree - self.data < data_size:
            raise ShareLayoutError("data region is smaller than the file needs")
        if (self.uri_extension - self.share_hashes) % SHARE_HASH_ENTRY_SIZE:
            raise ShareLayoutError("share hash chain region is not whole entries")

    def block_range(self, segnum: int, block_size: int, block_length: int) -> tuple[int, int]:
        """(offset, length) of a segment's block. The sizes come from the trusted
        UEB: the header's own block-size field is not used when reading."""
        return self.data + segnum * block_size, block_length

    def ueb_length_range(self) -> tuple[int, int]:
        return self.uri_extension, self.field_size

    def parse_ueb_length(self, data: bytes) -> int:
        if len(data) != self.field_size:
            raise ShareLayoutError("UEB length field truncated")
        (length,) = struct.unpack(">L" if self.version == 1 else ">Q", data)
        if length >= MAX_UEB_LENGTH:
            raise ShareLayoutError(f"UEB length {length} is ridiculous: the share is corrupt")
        return length


def pack_share_hash_chain(chain: list[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack(">H", i) + h for i, h in chain)


def parse_share_hash_chain(data: bytes) -> dict[int, bytes]:
    if len(data) % SHARE_HASH_ENTRY_SIZE:
        raise ShareLayoutError(f"share hash chain of {len(data)} bytes is not whole entries")
    out: dict[int, bytes] = {}
    for pos in range(0, len(data), SHARE_HASH_ENTRY_SIZE):
        (i,) = struct.unpack(">H", data[pos : pos + 2])
        h = bytes(data[pos + 2 : pos + SHARE_HASH_ENTRY_SIZE])
        if out.get(i, h) != h:
            raise ShareLayoutError(f"share hash chain names node {i} twice with different hashes")
        out[i] = h
    return out


def parse_hash_list(data: bytes) -> list[bytes]:
    """A flat tree region as a list of 32-byte hashes."""
    if len(data) % HASH_LENGTH:
        raise ShareLayoutError(f"hash region of {len(data)} bytes is not whole hashes")
    return [bytes(data[i : i + HASH_LENGTH]) for i in range(0, len(data), HASH_LENGTH)]
