"""Merkle trees: shape, padding, proofs, and rejection of every bad hash."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.crypto.hashes import merkle_empty_leaf_hash, merkle_pair_hash, tagged_hash
from shoal.hashtree import (
    BadHashError,
    CompleteHashTree,
    IncompleteHashTree,
    NotEnoughHashesError,
    needed_hashes,
    tree_size,
)

leaf = lambda i: tagged_hash(b"test leaf", b"%d" % i)  # noqa: E731
leaves_st = st.integers(min_value=1, max_value=40).map(lambda n: [leaf(i) for i in range(n)])


def test_three_leaves_by_hand():
    a, b, c = leaf(0), leaf(1), leaf(2)
    pad = merkle_empty_leaf_hash(3)
    t = CompleteHashTree([a, b, c])
    assert len(t) == 7
    assert list(t)[3:] == [a, b, c, pad]
    assert t[1] == merkle_pair_hash(a, b) and t[2] == merkle_pair_hash(c, pad)
    assert t.root == merkle_pair_hash(t[1], t[2])


def test_single_leaf_is_its_own_root():
    t = CompleteHashTree([leaf(0)])
    assert len(t) == 1 and t.root == leaf(0)
    assert t.needed_hashes(0, include_leaf=True) == [0]


def test_chain_order_matches_cpython_set_order():
    # 10 shares -> 16 leaves; leaf 0 is node 15. Tahoe writes the chain in
    # the iteration order of set([16, 8, 4, 2]) after .add(15).
    expected = set([16, 8, 4, 2])  # noqa: C405 - built exactly as Tahoe builds it
    expected.add(15)
    assert needed_hashes(10, 0, include_leaf=True) == list(expected)
    assert sorted(needed_hashes(10, 9, include_leaf=True)) == [1, 6, 12, 23, 24]


@given(leaves_st, st.data())
def test_chain_proves_leaf(leaves, data):
    t = CompleteHashTree(leaves)
    assert len(t) == tree_size(len(leaves))
    j = data.draw(st.integers(0, len(leaves) - 1))
    it = IncompleteHashTree(len(leaves), root=t.root)
    assert it.needed_hashes(j, include_leaf=True) == set(t.needed_hashes(j, include_leaf=True)) - {0}
    it.add(hashes=t.chain(j), leaves={j: leaves[j]})
    assert it.get_leaf(j) == leaves[j]
    assert it.needed_hashes(j) == set()


@given(leaves_st, st.data())
def test_any_flipped_hash_is_rejected(leaves, data):
    t = CompleteHashTree(leaves)
    j = data.draw(st.integers(0, len(leaves) - 1))
    chain = t.chain(j, include_leaf=True)
    victim = data.draw(st.sampled_from(sorted(chain)))
    bit = data.draw(st.integers(0, 255))
    bad = bytearray(chain[victim])
    bad[bit // 8] ^= 1 << (bit % 8)
    chain[victim] = bytes(bad)
    it = IncompleteHashTree(len(leaves), root=t.root)
    with pytest.raises(BadHashError):
        it.add(hashes=chain)
    # nothing was kept from the failed add
    assert set(it.known_nodes()) == {0}


@given(leaves_st, st.data())
def test_missing_sibling_is_not_enough(leaves, data):
    if len(leaves) < 2:
        return
    t = CompleteHashTree(leaves)
    j = data.draw(st.integers(0, len(leaves) - 1))
    chain = t.chain(j)
    del chain[data.draw(st.sampled_from(sorted(chain)))]
    it = IncompleteHashTree(len(leaves), root=t.root)
    with pytest.raises(NotEnoughHashesError) as e:
        it.add(hashes=chain, leaves={j: leaves[j]})
    assert "node" in str(e.value)


def test_wrong_leaf_is_bad_and_named():
    leaves = [leaf(i) for i in range(5)]
    t = CompleteHashTree(leaves)
    it = IncompleteHashTree(5, root=t.root)
    with pytest.raises(BadHashError) as e:
        it.add(hashes=t.chain(2), leaves={2: leaf(99)})
    assert "node" in str(e.value)


def test_no_root_no_trust():
    it = IncompleteHashTree(4)
    with pytest.raises(NotEnoughHashesError):
        it.add(leaves={0: leaf(0)})


def test_conflicting_root_rejected():
    t = CompleteHashTree([leaf(0), leaf(1)])
    it = IncompleteHashTree(2, root=t.root)
    with pytest.raises(BadHashError):
        it.add(hashes={0: leaf(7)})


def test_wrong_length_hash_rejected():
    t = CompleteHashTree([leaf(0), leaf(1)])
    it = IncompleteHashTree(2, root=t.root)
    with pytest.raises(BadHashError):
        it.add(hashes={1: b"short"})


@given(leaves_st)
def test_leaves_accumulate_across_adds(leaves):
    t = CompleteHashTree(leaves)
    it = IncompleteHashTree(len(leaves), root=t.root)
    for j, h in enumerate(leaves):
        needed = it.needed_hashes(j) - {0}
        it.add(hashes={i: t[i] for i in needed}, leaves={j: h})
    assert all(it.get_leaf(j) == h for j, h in enumerate(leaves))
