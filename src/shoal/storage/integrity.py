"""Checking an immutable share against the hashes the share itself carries.

A storage server holds no cap, so it cannot check a share's UEB against the
hash in the cap the way a client does. What it can check is that the share
agrees with itself, using only the formats of Tahoe-LAFS 1.20
(docs/specifications/file-encoding.rst, immutable/layout.py):

1. the share-data header parses and its regions have the sizes the UEB
   implies (``ShareLayout.parse`` / ``check_against``);
2. the UEB stored at the end parses as a UEB Tahoe 1.20 could have written
   (keys, codec parameters consistent with size, segment size, k and N);
3. the crypttext hash tree (every node, stored flat) is one Merkle tree and
   its root is the UEB's ``crypttext_root_hash``;
4. the block hash tree is one Merkle tree, its root is this share's leaf in
   the share hash chain, and the chain hashes up to the UEB's
   ``share_root_hash``;
5. every block hashes to its leaf of the block hash tree.

Damage anywhere in a block, a tree node, the chain, the header offsets or
the UEB's structure fails one of these. Not detectable here: a changed
``crypttext_hash`` value in the UEB (a flat hash of the whole ciphertext,
which needs all k shares) and bytes a reader never uses (the header's
block-size and data-size fields, the unused plaintext-tree region).

Pure: the share is read through ``read(offset, length)`` over the share data.
Steps 1-4 are cheap (``ImmutableShareCheck(...)``); step 5 goes span by span
(``check_blocks``) so a crawler can spread a big share over many slices.

A mutable share (SDMF or MDMF, formats.mutable_share) is checked whole by
``check_mutable_share``: the RSA-PSS signature over its signed prefix
verifies with the verification key it carries; every block (MDMF: salt and
block) hashes to the block hash tree it stores, which is one Merkle tree;
and that tree's root, with the share hash chain, hashes to the signed root
hash. Not checkable without the write key: the encrypted private key.
Whether the verification key is the file's own needs the cap; a client's
verifier checks that.
"""

from collections.abc import Callable

from shoal.crypto import rsa
from shoal.crypto.hashes import BLOCK_TAG, TaggedHasher, block_hash, merkle_empty_leaf_hash
from shoal.errors import Fault, ShoalError
from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import MDMF_VERSION, MutableShare, unpack_share
from shoal.formats.share_layout import (
    V2_HEADER_SIZE,
    ShareLayout,
    parse_hash_list,
    parse_share_hash_chain,
)
from shoal.formats.ueb import UEB
from shoal.hashtree import CompleteHashTree, HashTreeError, IncompleteHashTree, tree_size

ReadFn = Callable[[int, int], bytes]


class ShareDamage(ShoalError):
    """The share disagrees with its own hashes; the message names the region and offset."""

    fault = Fault.SERVER


def _exact(read: ReadFn, offset: int, length: int, what: str) -> bytes:
    data = read(offset, length)
    if len(data) != length:
        raise ShareDamage(f"share data ends inside the {what} (wanted {length} bytes at offset {offset})")
    return data


def _whole_tree(flat: bytes, num_leaves: int, what: str, offset: int) -> list[bytes]:
    """Every node of a stored flat tree recomputed from its leaves; the nodes."""
    try:
        nodes = parse_hash_list(flat)
    except FormatError as e:
        raise ShareDamage(f"{what} at offset {offset}: {e}") from None
    if len(nodes) != tree_size(num_leaves):
        raise ShareDamage(f"{what} at offset {offset} holds {len(nodes)} nodes, expected {tree_size(num_leaves)}")
    first = len(nodes) // 2
    rebuilt = CompleteHashTree(nodes[first : first + num_leaves])
    for i, h in enumerate(nodes):
        if rebuilt[i] != h:
            raise ShareDamage(f"{what}: node {i} (offset {offset + 32 * i}) does not match its children")
    return nodes


class ImmutableShareCheck:
    """One immutable share's structure, proven from its own hashes (steps 1-4 above).

    Raises ShareDamage on construction if the structure is bad; then
    ``check_blocks`` checks the blocks a span at a time.
    """

    def __init__(self, read: ReadFn, shnum: int) -> None:
        self._read = read
        self.shnum = shnum
        try:
            self.layout = layout = ShareLayout.parse(read(0, V2_HEADER_SIZE))
            off, size = layout.ueb_length_range()
            ueb_len = layout.parse_ueb_length(_exact(read, off, size, "UEB length"))
            self.ueb = ueb = UEB.from_bytes(_exact(read, off + size, ueb_len, "UEB"))
        except FormatError as e:
            raise ShareDamage(f"header or UEB: {e}") from None
        if shnum >= ueb.total_shares:
            raise ShareDamage(f"share number {shnum} but the UEB says N={ueb.total_shares}")
        self.num_segments = nseg = ueb.num_segments
        self.data_size = ueb.block_size * (nseg - 1) + ueb.tail_block_size
        try:
            layout.check_against(ueb.block_size, self.data_size, nseg)
        except FormatError as e:
            raise ShareDamage(f"header offsets: {e}") from None
        region = layout.block_hashes - layout.crypttext_hash_tree
        crypttext = _whole_tree(
            _exact(read, layout.crypttext_hash_tree, region, "crypttext hash tree"),
            nseg, "crypttext hash tree", layout.crypttext_hash_tree,
        )
        if crypttext[0] != ueb.crypttext_root_hash:
            raise ShareDamage("crypttext hash tree root differs from the UEB's crypttext_root_hash")
        blocks = _whole_tree(
            _exact(read, layout.block_hashes, region, "block hash tree"),
            nseg, "block hash tree", layout.block_hashes,
        )
        self._leaves = blocks[len(blocks) // 2 :]
        chain_len = layout.uri_extension - layout.share_hashes
        try:
            chain = parse_share_hash_chain(_exact(read, layout.share_hashes, chain_len, "share hash chain"))
            share_tree = IncompleteHashTree(ueb.total_shares, root=ueb.share_root_hash)
            own = share_tree.first_leaf + shnum
            if chain.get(own) != blocks[0]:
                raise ShareDamage(
                    f"block hash tree root is not node {own} of the share hash chain "
                    f"(offset {layout.share_hashes})"
                )
            share_tree.add(hashes=chain)
        except (FormatError, HashTreeError) as e:
            raise ShareDamage(f"share hash chain at offset {layout.share_hashes}: {e}") from None

    def block_offset(self, segnum: int) -> int:
        return self.layout.data + segnum * self.ueb.block_size

    def block_length(self, segnum: int) -> int:
        return self.ueb.tail_block_size if segnum == self.num_segments - 1 else self.ueb.block_size

    def span_length(self, first: int, end: int) -> int:
        """Bytes of the blocks of segments first..end-1 (they are contiguous)."""
        length = (end - first) * self.ueb.block_size
        if end == self.num_segments and end > first:
            length -= self.ueb.block_size - self.ueb.tail_block_size
        return length

    def check_blocks(self, first: int, max_bytes: int) -> int:
        """Check blocks from segment ``first`` on, reading about ``max_bytes``
        (at least one block); return the next segment to check (num_segments
        when done). ShareDamage names the first bad block."""
        if first >= self.num_segments:
            return first
        end = min(self.num_segments, first + max(1, max_bytes // self.ueb.block_size))
        length = self.span_length(first, end)
        span = _exact(self._read, self.block_offset(first), length, f"blocks {first}..{end - 1}")
        view = memoryview(span)
        pos = 0
        for segnum in range(first, end):
            size = self.block_length(segnum)
            hasher = TaggedHasher(BLOCK_TAG)
            hasher.update(view[pos : pos + size])
            if hasher.digest() != self._leaves[segnum]:
                raise ShareDamage(
                    f"block {segnum} (offset {self.block_offset(segnum)}) does not match "
                    "its block hash tree leaf"
                )
            pos += size
        return end


def check_immutable_share(read: ReadFn, shnum: int, span: int = 1024 * 1024) -> None:
    """Check a whole share; ShareDamage if any part disagrees with its hashes."""
    check = ImmutableShareCheck(read, shnum)
    segnum = 0
    while segnum < check.num_segments:
        segnum = check.check_blocks(segnum, span)


def check_mutable_share(data: bytes, shnum: int) -> None:
    """Check a whole mutable share's data against its signature and hashes (see above);
    data not laid out as a share at all is damage too."""
    try:
        share = unpack_share(data)
    except FormatError as e:
        raise ShareDamage(f"mutable share layout: {e}") from None
    check_mutable_layout(share, shnum)


def check_mutable_layout(share: MutableShare, shnum: int) -> None:
    """Check a mutable share already laid out (``unpack_share``) against its signature and hashes."""
    prefix = share.prefix
    if shnum >= prefix.n:
        raise ShareDamage(f"share number {shnum} but the signed prefix says N={prefix.n}")
    try:
        rsa.verify(rsa.public_key_from_der(share.verification_key), share.signature, prefix.signable())
    except rsa.RSAError as e:
        raise ShareDamage(f"signature at offset {share.offsets.signature}: {e}") from None
    leaves = []
    for segnum, (salt, block) in enumerate(share.blocks):
        if len(block) != prefix.block_size(segnum):
            raise ShareDamage(f"block {segnum} is {len(block)} bytes, expected {prefix.block_size(segnum)}")
        leaves.append(block_hash(salt + block if prefix.version == MDMF_VERSION else block))
    expected = list(CompleteHashTree(leaves)) if leaves else [merkle_empty_leaf_hash(0)]
    stored = share.block_hash_tree
    if len(stored) != len(expected):
        raise ShareDamage(f"block hash tree holds {len(stored)} nodes, expected {len(expected)}")
    for i, (have, want) in enumerate(zip(stored, expected, strict=True)):
        if have != want:
            first = len(expected) // 2
            what = f"block {i - first}" if i >= first and i - first < len(leaves) else f"node {i}"
            raise ShareDamage(
                f"block hash tree at offset {share.offsets.block_hash_tree}: {what} does not match"
            )
    try:
        tree = IncompleteHashTree(prefix.n, root=prefix.root_hash)
        tree.add(hashes=share.share_hash_chain, leaves={shnum: expected[0]})
    except HashTreeError as e:
        raise ShareDamage(f"share hash chain at offset {share.offsets.share_hash_chain}: {e}") from None
