"""Pure validating decoder for immutable (CHK) files.

Nothing from a share is believed until it is proven against the cap:
the UEB against the UEB hash in the cap; each share's hash chain against the
share root in the UEB; each block hash tree root against that chain; each
block against its block tree; each decoded ciphertext segment against the
crypttext tree. Any mismatch raises BadHashError (or a layout error) naming
the share and the node, and the share is dropped by the driver; no byte that
failed a check is ever returned.

`FileValidator` holds the file-wide state; `ShareValidator` one share's;
`TrustedLeaves` the proven leaves of one tree (a whole stored tree is
checked at once by `verify_flat_tree`, or leaves are proven one by one).
`FileValidator.finish_segment` is the thread-safe per-segment step a shell
runs in its CPU pool: check blocks against proven leaves, decode, check the
segment, decrypt. Its drivers: shoal.immutable.local_decode (synchronous, over share sources
in hand) and shoal.immutable.download (the network).
"""

from collections.abc import Mapping, Sequence

import attrs

from shoal import errors
from shoal.codec import CodecError, CodecParams, SegmentCodec
from shoal.crypto.aes import AESCTR
from shoal.crypto.hashes import (
    BLOCK_TAG,
    CIPHERTEXT_SEGMENT_TAG,
    HASH_LENGTH,
    TaggedHasher,
    block_hash,
    crypttext_segment_hash,
    uri_extension_hash,
)
from shoal.errors import ShoalError, UnrecoverableError
from shoal.formats.errors import FormatError
from shoal.formats.share_layout import (
    ShareLayout,
    ShareLayoutError,
    parse_hash_list,
    parse_share_hash_chain,
)
from shoal.formats.ueb import unpack_ueb
from shoal.hashtree import (
    BadHashError,
    CompleteHashTree,
    IncompleteHashTree,
    NotEnoughHashesError,
    tree_size,
)
from shoal.immutable.params import FileShape


class DownloadError(ShoalError):
    """An immutable file could not be read."""


class UEBMismatchError(DownloadError, errors.ContradictoryCapError):
    """A UEB that matches the cap's hash but describes another file (the cap's
    k, N or size are wrong: the cap is bad)."""


class NotEnoughSharesError(DownloadError, errors.NotEnoughSharesError):
    """Fewer than k good shares: the message says what was found and what failed."""


class BadBlockError(BadHashError):
    """A block that does not match its share's (proven) block hash tree leaf."""

    def __init__(self, shnum: int, segnum: int, message: str) -> None:
        super().__init__(f"share {shnum}, block {segnum}: {message}")
        self.shnum = shnum
        self.segnum = segnum


class SegmentMismatchError(DownloadError, UnrecoverableError):
    """Every block passed its check, yet the decoded segment does not match the
    crypttext tree: the file was encoded wrongly (no other share can help)."""


def _tagged_digest(tag: bytes, data: bytes | memoryview) -> bytes:
    hasher = TaggedHasher(tag)  # feeds the data without copying it behind the tag
    hasher.update(data)
    return hasher.digest()


def verify_flat_tree(flat: bytes, num_leaves: int, root: bytes) -> list[bytes]:
    """A whole hash tree as stored in a share (every node, root first) checked
    against its trusted root: returns the leaf hashes, all proven.

    Every stored node must equal the node recomputed from the leaves, so any
    damage anywhere in the region is BadHashError. Pure; cost one pair hash
    per inner node.
    """
    nodes = parse_hash_list(flat)
    if len(nodes) != tree_size(num_leaves):
        raise ShareLayoutError(f"hash tree region holds {len(nodes)} nodes, expected {tree_size(num_leaves)}")
    first = len(nodes) // 2
    leaves = nodes[first : first + num_leaves]
    rebuilt = CompleteHashTree(leaves)
    if rebuilt.root != root:
        raise BadHashError("hash tree leaves do not hash to the trusted root")
    for i, h in enumerate(nodes):
        if rebuilt[i] != h:
            raise BadHashError(f"hash tree node {i} differs from the node its children give")
    return leaves


class TrustedLeaves:
    """The leaf hashes of one Merkle tree that have been proven against its root.

    Either all at once, from the whole flat tree (`install` the result of
    `verify_flat_tree`), or a few at a time, from the nodes that connect a leaf
    to the root (`prove_leaf`, `check_leaf`). Not thread-safe: use it from one
    thread and hand the proven leaves to workers.
    """

    def __init__(self, num_leaves: int, root: bytes) -> None:
        self.num_leaves = num_leaves
        self.root = root
        self.tree = IncompleteHashTree(num_leaves, root=root)
        self._all: list[bytes] | None = None

    @property
    def complete(self) -> bool:
        return self._all is not None

    def install(self, leaves: list[bytes]) -> None:
        """Leaves returned by verify_flat_tree for this tree's root."""
        if len(leaves) != self.num_leaves:
            raise ValueError(f"{len(leaves)} leaves for a tree of {self.num_leaves}")
        self._all = leaves

    def accept_tree(self, flat: bytes) -> None:
        self.install(verify_flat_tree(flat, self.num_leaves, self.root))

    def leaf(self, leafnum: int) -> bytes | None:
        if self._all is not None:
            return self._all[leafnum]
        return self.tree.get_leaf(leafnum)

    def needed_nodes(self, leafnum: int, include_leaf: bool = True) -> set[int]:
        """Node numbers to fetch before leaf `leafnum` is proven (none once it is)."""
        if self.leaf(leafnum) is not None:
            return set()
        return self.tree.needed_hashes(leafnum, include_leaf=include_leaf) - {0}

    def prove_leaf(self, leafnum: int, nodes: Mapping[int, bytes]) -> bytes:
        """Prove the stored leaf hash with `nodes` (which include the leaf's own node)."""
        known = self.leaf(leafnum)
        if known is not None:
            return known
        self.tree.add(hashes=nodes)
        leaf = self.tree.get_leaf(leafnum)
        if leaf is None:
            raise NotEnoughHashesError(f"leaf {leafnum} not among the nodes given")
        return leaf

    def check_leaf(self, leafnum: int, leaf_hash: bytes, nodes: Mapping[int, bytes] | None = None) -> None:
        """Check a computed leaf hash, with whatever sibling nodes it still needs."""
        known = self.leaf(leafnum)
        if known is not None:
            if known != leaf_hash:
                raise BadHashError(f"leaf {leafnum} does not match the proven leaf hash")
            return
        self.tree.add(hashes=nodes, leaves={leafnum: leaf_hash})


@attrs.frozen
class FileIdentity:
    """What a CHK read or verify cap says about the file."""

    ueb_hash: bytes
    k: int
    n: int
    size: int
    key: bytes | None = None  # None for a verify-only pass


def _int_field(fields: Mapping[str, object], name: str) -> int:
    value = fields.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UEBMismatchError(f"UEB field {name!r} missing or not an integer")
    return value


def _hash_field(fields: Mapping[str, object], name: str) -> bytes:
    value = fields.get(name)
    if not isinstance(value, bytes) or len(value) != HASH_LENGTH:
        raise UEBMismatchError(f"UEB field {name!r} missing or not a 32-byte hash")
    return value


class FileValidator:
    """File-wide state: the trusted UEB and the share and crypttext trees."""

    def __init__(self, identity: FileIdentity) -> None:
        self.identity = identity
        self.shape: FileShape | None = None
        self.share_tree: IncompleteHashTree | None = None
        self.crypttext_leaves: TrustedLeaves | None = None
        self.ueb_fields: dict | None = None
        self._codecs: dict[CodecParams, SegmentCodec] = {}

    @property
    def crypttext_tree(self) -> IncompleteHashTree | None:
        return self.crypttext_leaves.tree if self.crypttext_leaves is not None else None

    def accept_ueb(self, ueb: bytes) -> FileShape:
        """Check a UEB against the cap; the first good one fixes the file's shape."""
        if uri_extension_hash(ueb) != self.identity.ueb_hash:
            raise BadHashError("UEB does not match the hash in the cap")
        if self.shape is not None:
            return self.shape
        try:
            fields = unpack_ueb(ueb)
        except FormatError as e:
            raise UEBMismatchError(f"UEB matches the cap but does not parse: {e}") from None
        ident = self.identity
        size = _int_field(fields, "size")
        segment_size = _int_field(fields, "segment_size")
        if size != ident.size:
            raise UEBMismatchError(f"UEB says size {size}, the cap says {ident.size}")
        try:
            shape = FileShape(size=size, k=ident.k, n=ident.n, segment_size=segment_size)
        except ShoalError as e:
            raise UEBMismatchError(f"UEB describes an impossible file: {e}") from None
        if _int_field(fields, "num_segments") != shape.num_segments:
            raise UEBMismatchError("UEB num_segments disagrees with size and segment_size")
        for name, params in (("codec_params", shape.codec_params), ("tail_codec_params", shape.tail_codec_params)):
            if fields.get(name) != params.serialize():
                raise UEBMismatchError(f"UEB {name} {fields.get(name)!r} != {params.serialize()!r}")
        self.share_tree = IncompleteHashTree(ident.n, root=_hash_field(fields, "share_root_hash"))
        self.crypttext_leaves = TrustedLeaves(shape.num_segments, _hash_field(fields, "crypttext_root_hash"))
        self._codecs = {p: SegmentCodec(p) for p in (shape.codec_params, shape.tail_codec_params)}
        self.ueb_fields = fields
        self.shape = shape
        return shape

    def decode_segment(self, segnum: int, blocks: Mapping[int, bytes]) -> bytes:
        """Blocks of k shares (each already proven) -> the segment's ciphertext, unchecked."""
        shape = self.shape
        assert shape is not None
        last = segnum == shape.num_segments - 1
        codec = self._codecs[shape.tail_codec_params if last else shape.codec_params]
        return codec.decode(blocks, shape.segment_length(segnum))

    def check_segment(self, segnum: int, crypttext: bytes, hashes: Mapping[int, bytes]) -> None:
        """Prove a decoded segment against the crypttext root, with the tree
        nodes it still needs (from any share: a share that sends bad nodes
        makes this raise BadHashError)."""
        assert self.crypttext_leaves is not None
        self.crypttext_leaves.check_leaf(segnum, crypttext_segment_hash(crypttext), hashes)

    def decrypt_segment(self, segnum: int, crypttext: bytes) -> bytes:
        assert self.shape is not None
        if self.identity.key is None:
            raise DownloadError("a verify cap cannot decrypt")
        return AESCTR(self.identity.key, segnum * self.shape.segment_size).process(crypttext)

    def finish_segment(
        self,
        segnum: int,
        blocks: Mapping[int, bytes],
        block_leaves: Mapping[int, bytes],
        crypttext_leaf: bytes,
        start: int = 0,
        end: int | None = None,
    ) -> bytes:
        """Check k blocks against their proven leaves, decode, check the segment
        against its proven crypttext leaf, and return bytes [start, end) of the
        segment: plaintext, or ciphertext when the identity has no key.

        Thread-safe (reads only the settled shape), so a shell runs it in a CPU
        pool. BadBlockError names the first bad block's share; nothing is
        decoded or returned unless every block passed.
        """
        shape = self.shape
        assert shape is not None
        want = shape.block_length(segnum)
        for shnum, block in blocks.items():
            if len(block) != want:
                raise BadBlockError(shnum, segnum, f"{len(block)} bytes, expected {want}")
            if _tagged_digest(BLOCK_TAG, block) != block_leaves[shnum]:
                raise BadBlockError(shnum, segnum, "hash does not match the block hash tree")
        try:
            crypttext = self.decode_segment(segnum, blocks)
        except CodecError as e:  # cannot happen with proven blocks of the right size
            raise SegmentMismatchError(f"segment {segnum}: {e}") from None
        if _tagged_digest(CIPHERTEXT_SEGMENT_TAG, crypttext) != crypttext_leaf:
            raise SegmentMismatchError(
                f"segment {segnum} decodes from valid blocks {sorted(blocks)} but fails the "
                f"crypttext hash tree: the file was encoded wrongly"
            )
        length = len(crypttext)
        end = length if end is None else min(end, length)
        if self.identity.key is None:
            return crypttext[start:end] if (start, end) != (0, length) else crypttext
        view = memoryview(crypttext)[start:end]
        return AESCTR(self.identity.key, segnum * shape.segment_size + start).process(view)


def check_blocks(shape: FileShape, shnum: int, first: int, span: bytes, leaves: Sequence[bytes]) -> None:
    """Check consecutive blocks first, first+1, ... of one share, read as one
    `span`, against their proven leaf hashes (thread-safe: for a CPU pool)."""
    view = memoryview(span)
    pos = 0
    for i, leaf in enumerate(leaves):
        segnum = first + i
        length = shape.block_length(segnum)
        block = view[pos : pos + length]
        if len(block) != length:
            raise BadBlockError(shnum, segnum, f"share truncated ({len(block)} of {length} bytes)")
        if _tagged_digest(BLOCK_TAG, block) != leaf:
            raise BadBlockError(shnum, segnum, "hash does not match the block hash tree")
        pos += length


class ShareValidator:
    """One share: its layout, its place in the share tree, its block tree."""

    def __init__(self, file: FileValidator, shnum: int) -> None:
        if not 0 <= shnum < file.identity.n:
            raise ValueError(f"share number {shnum} out of range for n={file.identity.n}")
        self.file = file
        self.shnum = shnum
        self.layout: ShareLayout | None = None
        self.block_leaves: TrustedLeaves | None = None

    @property
    def block_tree(self) -> IncompleteHashTree | None:
        return self.block_leaves.tree if self.block_leaves is not None else None

    def accept_layout(self, header: bytes) -> ShareLayout:
        self.layout = ShareLayout.parse(header)
        return self.layout

    def accept_share_chain(self, chain: bytes) -> None:
        """Prove this share's block-tree root against the share root in the UEB."""
        file, layout = self.file, self.layout
        assert file.shape is not None and file.share_tree is not None and layout is not None
        shape = file.shape
        layout.check_against(shape.block_size, shape.share_data_size, shape.num_segments)
        leaf = file.share_tree.first_leaf + self.shnum
        hashes = parse_share_hash_chain(chain)
        if leaf not in hashes and file.share_tree.get(leaf) is None:
            raise NotEnoughHashesError(f"share {self.shnum}: hash chain lacks its own leaf")
        file.share_tree.add(hashes=hashes)
        root = file.share_tree.get(leaf)
        assert root is not None
        self.block_leaves = TrustedLeaves(shape.num_segments, root)

    def needed_block_hashes(self, segnum: int) -> set[int]:
        """Sibling nodes still needed to check block `segnum` once it is hashed."""
        assert self.block_leaves is not None
        return self.block_leaves.needed_nodes(segnum, include_leaf=False)

    def accept_block(self, segnum: int, block: bytes, hashes: Mapping[int, bytes]) -> bytes:
        """Check a block (with the block-tree nodes it needs); return it if good."""
        assert self.block_leaves is not None and self.file.shape is not None
        want = self.file.shape.block_length(segnum)
        if len(block) != want:
            raise BadBlockError(self.shnum, segnum, f"{len(block)} bytes, expected {want}")
        self.block_leaves.check_leaf(segnum, block_hash(block), hashes)
        return block
