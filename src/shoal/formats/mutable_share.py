"""Share data of Tahoe-LAFS 1.20 mutable files (what sits inside a slot container).

SDMF (version byte 0), one segment, everything packed densely:

    offset size
    0      1    version 0
    1      8    sequence number
    9      32   root of the share hash tree
    41     16   IV (the salt of the one segment)
    57     1    k            ] the first 75 bytes are what the RSA key signs
    58     1    N            ]
    59     8    segment size ]
    67     8    data length  ]
    75     4*4  offsets (>L) of: signature, share hash chain, block hash tree, share data
    91     8*2  offsets (>Q) of: encrypted private key, end of share
    107    -    verification key (SubjectPublicKeyInfo DER), signature, share hash
                chain, block hash tree, the one block, encrypted private key

MDMF (version byte 1), segments of salt || block, fields at reserved places:

    0      1    version 1
    1      8    sequence number
    9      32   root of the share hash tree
    41     1    k            ] the first 59 bytes are signed
    42     1    N            ]
    43     8    segment size ]
    51     8    data length  ]
    59     8*8  offsets (>Q) of: encrypted private key, share hash chain, signature,
                verification key, end of verification key, share data, block
                hash tree, end of share
    123    -    encrypted private key, share hash chain, signature, verification
                key (packed densely after 123), then unwritten bytes up to the
                share data, which starts at 123 + 1220 + 260 + 292 + 272 = 2167
                whatever the key sizes; salt||block per segment; block hash tree

Share hash chain entries are >H32s (node number, hash), sorted by node. The
block hash tree is stored whole (flat, root first). The *checkstring* a
writer tests before writing is the first 57 (SDMF) or 41 (MDMF) bytes.
Pure packing and parsing.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import attrs

from shoal.codec import div_ceil, next_multiple
from shoal.formats.errors import FormatError

SDMF_VERSION = 0
MDMF_VERSION = 1
HASH_SIZE = 32
SALT_SIZE = 16

SDMF_CHECKSTRING = struct.Struct(">BQ32s16s")
SDMF_SIGNED = struct.Struct(">BQ32s16sBBQQ")
SDMF_OFFSETS = struct.Struct(">LLLLQQ")
SDMF_HEADER_SIZE = SDMF_SIGNED.size + SDMF_OFFSETS.size  # 107

MDMF_CHECKSTRING = struct.Struct(">BQ32s")
MDMF_SIGNED = struct.Struct(">BQ32sBBQQ")
MDMF_OFFSETS = struct.Struct(">QQQQQQQQ")
MDMF_HEADER_SIZE = MDMF_SIGNED.size + MDMF_OFFSETS.size  # 123

# Room Tahoe reserves in an MDMF share for the variable-length fields.
MDMF_PRIVATE_KEY_SIZE = 1220
MDMF_SIGNATURE_SIZE = 260
MDMF_VERIFICATION_KEY_SIZE = 292
MDMF_SHARE_HASH_CHAIN_SIZE = (2 + HASH_SIZE) * 8  # log2(256) nodes at most
MDMF_SHARE_DATA_OFFSET = (
    MDMF_HEADER_SIZE
    + MDMF_PRIVATE_KEY_SIZE
    + MDMF_SIGNATURE_SIZE
    + MDMF_VERIFICATION_KEY_SIZE
    + MDMF_SHARE_HASH_CHAIN_SIZE
)  # 2167

MDMF_DEFAULT_SEGMENT_SIZE = 128 * 1024
CHAIN_ENTRY = struct.Struct(">H32s")


class BadMutableShareError(FormatError):
    """Mutable share data that does not parse (wrong version, impossible offsets, short)."""


@attrs.frozen
class SignedPrefix:
    """The signed fields of a mutable share: which version of the file it holds.

    `salt` is the SDMF IV; MDMF keeps a salt per segment and has None here.
    """

    version: int
    seqnum: int
    root_hash: bytes
    salt: bytes | None
    k: int
    n: int
    segment_size: int
    data_length: int

    @property
    def is_mdmf(self) -> bool:
        return self.version == MDMF_VERSION

    def checkstring(self) -> bytes:
        """The leading bytes a test-and-set write compares (`eq`)."""
        if self.version == SDMF_VERSION:
            return SDMF_CHECKSTRING.pack(0, self.seqnum, self.root_hash, self.salt or b"")
        return MDMF_CHECKSTRING.pack(1, self.seqnum, self.root_hash)

    def signable(self) -> bytes:
        """The bytes the RSA key signs (also the first bytes of the share)."""
        if self.version == SDMF_VERSION:
            return SDMF_SIGNED.pack(
                0, self.seqnum, self.root_hash, self.salt or b"", self.k, self.n,
                self.segment_size, self.data_length,
            )
        return MDMF_SIGNED.pack(
            1, self.seqnum, self.root_hash, self.k, self.n, self.segment_size, self.data_length
        )

    @property
    def num_segments(self) -> int:
        return div_ceil(self.data_length, self.segment_size) if self.segment_size else 0

    def segment_span(self, segnum: int) -> tuple[int, int]:
        """(start, length) of segment segnum in the plaintext."""
        start = segnum * self.segment_size
        return start, min(self.segment_size, self.data_length - start)

    def block_size(self, segnum: int) -> int:
        """Size of one share's block of segment segnum (the tail is padded to k)."""
        return next_multiple(self.segment_span(segnum)[1], self.k) // self.k


@attrs.frozen
class Offsets:
    """Where each field of a share starts (MDMF also has the key's end)."""

    signature: int
    share_hash_chain: int
    block_hash_tree: int
    share_data: int
    enc_privkey: int
    eof: int
    verification_key: int
    verification_key_end: int
    version: int = SDMF_VERSION

    def span(self, field: str) -> tuple[int, int]:
        """(offset, length) of a field, bounded by the field that follows it."""
        start = getattr(self, field)
        end = getattr(self, (_SDMF_NEXT if self.version == SDMF_VERSION else _MDMF_NEXT)[field])
        return start, end - start


_SDMF_NEXT = {
    "verification_key": "signature", "signature": "share_hash_chain",
    "share_hash_chain": "block_hash_tree", "block_hash_tree": "share_data",
    "share_data": "enc_privkey", "enc_privkey": "eof",
}
_MDMF_NEXT = {
    "enc_privkey": "share_hash_chain", "share_hash_chain": "signature",
    "signature": "verification_key", "verification_key": "verification_key_end",
    "share_data": "block_hash_tree", "block_hash_tree": "eof",
}


def _bad(msg: str) -> BadMutableShareError:
    return BadMutableShareError(msg)


def share_version(data: bytes) -> int:
    if not data:
        raise _bad("empty mutable share")
    version = data[0]
    if version not in (SDMF_VERSION, MDMF_VERSION):
        raise _bad(f"unknown mutable share version byte {version}")
    return version


def header_size(version: int) -> int:
    return SDMF_HEADER_SIZE if version == SDMF_VERSION else MDMF_HEADER_SIZE


def checkstring_size(version: int) -> int:
    return SDMF_CHECKSTRING.size if version == SDMF_VERSION else MDMF_CHECKSTRING.size


def unpack_header(data: bytes) -> tuple[SignedPrefix, Offsets]:
    """Signed prefix and offsets table from the first bytes of a share."""
    version = share_version(data)
    size = header_size(version)
    if len(data) < size:
        raise _bad(f"mutable share header needs {size} bytes, got {len(data)}")
    if version == SDMF_VERSION:
        _, seq, root, iv, k, n, segsize, datalen = SDMF_SIGNED.unpack_from(data)
        sig, chain, bht, sdata, privkey, eof = SDMF_OFFSETS.unpack_from(data, SDMF_SIGNED.size)
        prefix = SignedPrefix(0, seq, root, iv, k, n, segsize, datalen)
        offsets = Offsets(sig, chain, bht, sdata, privkey, eof, SDMF_HEADER_SIZE, sig, SDMF_VERSION)
    else:
        _, seq, root, k, n, segsize, datalen = MDMF_SIGNED.unpack_from(data)
        privkey, chain, sig, vk, vk_end, sdata, bht, eof = MDMF_OFFSETS.unpack_from(
            data, MDMF_SIGNED.size
        )
        prefix = SignedPrefix(1, seq, root, None, k, n, segsize, datalen)
        offsets = Offsets(sig, chain, bht, sdata, privkey, eof, vk, vk_end, MDMF_VERSION)
    _check_geometry(prefix, offsets)
    return prefix, offsets


def _check_geometry(prefix: SignedPrefix, o: Offsets) -> None:
    if not (1 <= prefix.k <= prefix.n):
        raise _bad(f"impossible encoding k={prefix.k} N={prefix.n}")
    if prefix.segment_size % prefix.k:
        raise _bad(f"segment size {prefix.segment_size} is not a multiple of k={prefix.k}")
    if prefix.data_length and not prefix.segment_size:
        raise _bad(f"data length {prefix.data_length} with a zero segment size")
    hsize = header_size(prefix.version)
    if prefix.version == SDMF_VERSION:
        if prefix.num_segments > 1:
            raise _bad(f"SDMF share with {prefix.num_segments} segments")
        order = [hsize, o.signature, o.share_hash_chain, o.block_hash_tree, o.share_data,
                 o.enc_privkey, o.eof]
    else:
        order = [hsize, o.enc_privkey, o.share_hash_chain, o.signature, o.verification_key,
                 o.verification_key_end]
        if o.verification_key_end > o.share_data or not (o.share_data <= o.block_hash_tree <= o.eof):
            raise _bad(f"MDMF offsets out of order: {o}")
    if any(a > b for a, b in zip(order, order[1:], strict=False)):
        raise _bad(f"mutable share offsets out of order: {o}")
    if o.eof > 2**40:
        raise _bad(f"mutable share claims to end at byte {o.eof}")


def unpack_share_hash_chain(data: bytes) -> dict[int, bytes]:
    if len(data) % CHAIN_ENTRY.size:
        raise _bad(f"share hash chain of {len(data)} bytes is not a whole number of entries")
    out: dict[int, bytes] = {}
    for i in range(0, len(data), CHAIN_ENTRY.size):
        node, h = CHAIN_ENTRY.unpack_from(data, i)
        out[node] = h
    return out


def pack_share_hash_chain(chain: Mapping[int, bytes]) -> bytes:
    return b"".join(CHAIN_ENTRY.pack(i, chain[i]) for i in sorted(chain))


def unpack_hashes(data: bytes) -> list[bytes]:
    if len(data) % HASH_SIZE:
        raise _bad(f"block hash tree of {len(data)} bytes is not a whole number of hashes")
    return [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


# --- SDMF ------------------------------------------------------------------------


def pack_sdmf_share(
    prefix: SignedPrefix,
    verification_key: bytes,
    signature: bytes,
    share_hash_chain: Mapping[int, bytes],
    block_hash_tree: Sequence[bytes],
    block: bytes,
    enc_privkey: bytes,
) -> bytes:
    """A whole SDMF share (written in one piece at offset 0)."""
    chain = pack_share_hash_chain(share_hash_chain)
    tree = b"".join(block_hash_tree)
    o_sig = SDMF_HEADER_SIZE + len(verification_key)
    o_chain = o_sig + len(signature)
    o_tree = o_chain + len(chain)
    o_data = o_tree + len(tree)
    o_key = o_data + len(block)
    eof = o_key + len(enc_privkey)
    offsets = SDMF_OFFSETS.pack(o_sig, o_chain, o_tree, o_data, o_key, eof)
    return b"".join(
        [prefix.signable(), offsets, verification_key, signature, chain, tree, block, enc_privkey]
    )


# --- MDMF ------------------------------------------------------------------------


@attrs.frozen
class MDMFGeometry:
    """Fixed positions of an MDMF share for given encoding parameters."""

    k: int
    segment_size: int
    data_length: int

    @property
    def num_segments(self) -> int:
        return div_ceil(self.data_length, self.segment_size) if self.segment_size else 0

    @property
    def block_size(self) -> int:
        return self.segment_size // self.k

    @property
    def tail_block_size(self) -> int:
        tail = self.data_length % self.segment_size if self.segment_size else 0
        return next_multiple(tail, self.k) // self.k if tail else self.block_size

    def block_offset(self, segnum: int) -> int:
        """Offset of segment segnum's salt (its block follows)."""
        return MDMF_SHARE_DATA_OFFSET + segnum * (SALT_SIZE + self.block_size)

    def block_length(self, segnum: int) -> int:
        """Bytes of salt + block of segment segnum."""
        last = segnum + 1 == self.num_segments
        return SALT_SIZE + (self.tail_block_size if last else self.block_size)

    @property
    def share_data_length(self) -> int:
        if not self.num_segments:
            return 0
        return (self.num_segments - 1) * (SALT_SIZE + self.block_size) + SALT_SIZE + self.tail_block_size

    @property
    def block_hash_tree_offset(self) -> int:
        return MDMF_SHARE_DATA_OFFSET + self.share_data_length


def mdmf_segment_size(k: int, max_segment_size: int = MDMF_DEFAULT_SEGMENT_SIZE) -> int:
    """Tahoe's MDMF segment size: 128 KiB rounded up to a multiple of k."""
    return next_multiple(max_segment_size, k)


def mdmf_write_vectors(
    prefix: SignedPrefix,
    enc_privkey: bytes,
    share_hash_chain: Mapping[int, bytes],
    signature: bytes,
    verification_key: bytes,
    blocks: Mapping[int, tuple[bytes, bytes]],
    block_hash_tree: Sequence[bytes],
) -> list[tuple[int, bytes]]:
    """(offset, bytes) writes that put this version into an MDMF share.

    `blocks` maps segment number -> (salt, block) for the segments written
    (all of them for a new share, the touched ones for an in-place update).
    """
    geo = MDMFGeometry(prefix.k, prefix.segment_size, prefix.data_length)
    chain = pack_share_hash_chain(share_hash_chain)
    o_key = MDMF_HEADER_SIZE
    o_chain = o_key + len(enc_privkey)
    o_sig = o_chain + len(chain)
    o_vk = o_sig + len(signature)
    o_vk_end = o_vk + len(verification_key)
    if o_vk_end > MDMF_SHARE_DATA_OFFSET:
        raise _bad(f"MDMF key, chain and signature need {o_vk_end} bytes, more than reserved")
    tree = b"".join(block_hash_tree)
    o_tree = geo.block_hash_tree_offset
    eof = o_tree + len(tree)
    header = prefix.signable() + MDMF_OFFSETS.pack(
        o_key, o_chain, o_sig, o_vk, o_vk_end, MDMF_SHARE_DATA_OFFSET, o_tree, eof
    )
    out = [(0, header + enc_privkey + chain + signature + verification_key)]
    for segnum in sorted(blocks):
        salt, block = blocks[segnum]
        if len(salt) != SALT_SIZE or SALT_SIZE + len(block) != geo.block_length(segnum):
            raise _bad(f"segment {segnum}: block of {len(block)} bytes does not fit the layout")
        out.append((geo.block_offset(segnum), salt + block))
    out.append((o_tree, tree))
    return out


def apply_writes(writes: Sequence[tuple[int, bytes]], base: bytes = b"") -> bytes:
    """The bytes a slot holds after these writes (gaps are zero, as on a server)."""
    buf = bytearray(base)
    for offset, data in writes:
        if len(buf) < offset:
            buf += b"\x00" * (offset - len(buf))
        buf[offset:offset + len(data)] = data
    return bytes(buf)


# --- parsed whole shares ----------------------------------------------------------


@attrs.frozen
class MutableShare:
    """Every field of one share, as parsed (nothing here has been checked)."""

    prefix: SignedPrefix
    offsets: Offsets
    verification_key: bytes
    signature: bytes
    share_hash_chain: dict[int, bytes]
    block_hash_tree: list[bytes]
    blocks: list[tuple[bytes, bytes]]  # (salt, block) per segment
    enc_privkey: bytes


def field(data: bytes, offsets: Offsets, name: str) -> bytes:
    start, length = offsets.span(name)
    if start + length > len(data):
        raise _bad(f"share field {name} at {start}+{length} is past the {len(data)} bytes read")
    return data[start:start + length]


def unpack_share(data: bytes) -> MutableShare:
    """Parse a whole share (SDMF or MDMF)."""
    prefix, o = unpack_header(data)
    if len(data) < o.eof:
        raise _bad(f"share is {len(data)} bytes, its offsets say {o.eof}")
    blocks: list[tuple[bytes, bytes]] = []
    if prefix.version == SDMF_VERSION:
        blocks = [(prefix.salt or b"", field(data, o, "share_data"))] if prefix.num_segments else []
    else:
        geo = MDMFGeometry(prefix.k, prefix.segment_size, prefix.data_length)
        if geo.block_hash_tree_offset != o.block_hash_tree or o.share_data != MDMF_SHARE_DATA_OFFSET:
            raise _bad("MDMF share data offsets disagree with the encoding parameters")
        for segnum in range(geo.num_segments):
            at = geo.block_offset(segnum)
            chunk = data[at:at + geo.block_length(segnum)]
            blocks.append((chunk[:SALT_SIZE], chunk[SALT_SIZE:]))
    return MutableShare(
        prefix=prefix,
        offsets=o,
        verification_key=field(data, o, "verification_key"),
        signature=field(data, o, "signature"),
        share_hash_chain=unpack_share_hash_chain(field(data, o, "share_hash_chain")),
        block_hash_tree=unpack_hashes(field(data, o, "block_hash_tree")),
        blocks=blocks,
        enc_privkey=field(data, o, "enc_privkey"),
    )
