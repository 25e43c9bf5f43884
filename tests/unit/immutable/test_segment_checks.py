"""The pure pieces the network downloader relies on: whole-tree checks, proven
leaves, and the per-segment step it runs in its CPU pool."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.crypto.aes import aes_ctr
from shoal.crypto.hashes import block_hash, crypttext_segment_hash
from shoal.hashtree import BadHashError, CompleteHashTree, NotEnoughHashesError
from shoal.immutable.decoder import (
    BadBlockError,
    FileIdentity,
    FileValidator,
    SegmentMismatchError,
    TrustedLeaves,
    check_blocks,
    verify_flat_tree,
)
from shoal.immutable.encoder import encode_all
from shoal.immutable.params import FileShape


def leaves(n: int, seed: int = 0) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.randbytes(32) for _ in range(n)]


@given(st.integers(1, 40), st.data())
def test_verify_flat_tree_proves_leaves_and_rejects_any_damage(n, d):
    tree = CompleteHashTree(leaves(n))
    flat = tree.to_bytes()
    assert verify_flat_tree(flat, n, tree.root) == leaves(n)
    pos = d.draw(st.integers(0, len(flat) - 1))
    damaged = bytearray(flat)
    damaged[pos] ^= 1
    with pytest.raises(BadHashError):
        verify_flat_tree(bytes(damaged), n, tree.root)


def test_verify_flat_tree_wrong_root_or_size():
    tree = CompleteHashTree(leaves(5))
    with pytest.raises(BadHashError):
        verify_flat_tree(tree.to_bytes(), 5, b"\x00" * 32)
    with pytest.raises(Exception, match="nodes"):
        verify_flat_tree(tree.to_bytes()[:-32], 5, tree.root)


@settings(max_examples=30)
@given(st.integers(1, 33), st.data())
def test_trusted_leaves_one_at_a_time(n, d):
    tree = CompleteHashTree(leaves(n, 1))
    trusted = TrustedLeaves(n, tree.root)
    for j in d.draw(st.permutations(range(n))):
        needed = trusted.needed_nodes(j)
        assert trusted.prove_leaf(j, {i: tree[i] for i in needed}) == tree.leaf(j)
        assert trusted.needed_nodes(j) == set()
    if n == 1:
        return  # the only leaf is the root itself
    bad = TrustedLeaves(n, tree.root)
    j = d.draw(st.integers(0, n - 1))
    nodes = {i: tree[i] for i in bad.needed_nodes(j)}
    nodes[tree.first_leaf + j] = b"\x01" * 32
    with pytest.raises(BadHashError):
        bad.prove_leaf(j, nodes)


def test_trusted_leaves_whole_and_check_leaf():
    tree = CompleteHashTree(leaves(6, 2))
    trusted = TrustedLeaves(6, tree.root)
    with pytest.raises(NotEnoughHashesError):
        trusted.prove_leaf(3, {})
    trusted.accept_tree(tree.to_bytes())
    assert trusted.complete and trusted.needed_nodes(4) == set()
    trusted.check_leaf(4, tree.leaf(4))
    with pytest.raises(BadHashError):
        trusted.check_leaf(4, tree.leaf(3))


def _encoded(size: int = 10_000, k: int = 3, n: int = 7, segment_size: int = 3000):
    rnd = random.Random(size)
    data = rnd.randbytes(size)
    key = rnd.randbytes(16)
    shape = FileShape(size, k, n, segment_size)
    blocks: dict[int, list[bytes]] = {sh: [] for sh in range(n)}
    shares, result = encode_all(key, shape, [data])
    for seg in range(shape.num_segments):
        for sh in range(n):
            off = 0x24 + seg * shape.block_size
            blocks[sh].append(shares[sh][off : off + shape.block_length(seg)])
    file = FileValidator(FileIdentity(result.ueb_hash, k, n, size, key))
    file.accept_ueb(result.ueb)
    return data, key, shape, blocks, file


@pytest.mark.parametrize("chosen", [(0, 1, 2), (2, 4, 6), (6, 5, 0)])
def test_finish_segment_any_k_and_ranges(chosen):
    data, key, shape, blocks, file = _encoded()
    for seg in range(shape.num_segments):
        given_blocks = {sh: blocks[sh][seg] for sh in chosen}
        proven = {sh: block_hash(b) for sh, b in given_blocks.items()}
        start = seg * shape.segment_size
        segment = data[start : start + shape.segment_length(seg)]
        leaf = crypttext_segment_hash(aes_ctr(key, segment, start))
        assert file.finish_segment(seg, given_blocks, proven, leaf) == segment
        assert file.finish_segment(seg, given_blocks, proven, leaf, 5, 9) == segment[5:9]


def test_finish_segment_rejects_bad_blocks_and_mismatches():
    data, key, shape, blocks, file = _encoded()
    given_blocks = {sh: blocks[sh][1] for sh in (0, 3, 5)}
    proven = {sh: block_hash(b) for sh, b in given_blocks.items()}
    leaf = crypttext_segment_hash(aes_ctr(key, data[3000:6000], 3000))
    damaged = dict(given_blocks)
    damaged[3] = b"\x00" + damaged[3][1:]
    with pytest.raises(BadBlockError) as info:
        file.finish_segment(1, damaged, proven, leaf)
    assert info.value.shnum == 3 and info.value.segnum == 1
    short = dict(given_blocks)
    short[5] = short[5][:-1]
    with pytest.raises(BadBlockError):
        file.finish_segment(1, short, proven, leaf)
    with pytest.raises(SegmentMismatchError):
        file.finish_segment(1, given_blocks, proven, b"\x00" * 32)


def test_check_blocks_spans():
    _, _, shape, blocks, _ = _encoded()
    span = b"".join(blocks[4][1:4])
    proven = [block_hash(b) for b in blocks[4][1:4]]
    check_blocks(shape, 4, 1, span, proven)
    with pytest.raises(BadBlockError) as info:
        check_blocks(shape, 4, 1, span[:-1], proven)
    assert info.value.segnum == 3
    damaged = bytearray(span)
    damaged[shape.block_size + 2] ^= 1
    with pytest.raises(BadBlockError) as info:
        check_blocks(shape, 4, 1, bytes(damaged), proven)
    assert info.value.segnum == 2
