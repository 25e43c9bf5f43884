"""Merkle hash trees as Tahoe-LAFS 1.20 builds them.

A tree over L leaves is a complete binary tree whose bottom row is padded to
the next power of two with "empty leaf" hashes (tagged with the leaf's
position). Nodes are numbered in one flat array, root first: node i has
children 2i+1 and 2i+2, and leaf number j sits at node (width - 1 + j).
Shares carry trees in this flat order, and hash chains name nodes by these
numbers, so the numbering is part of the format.

`CompleteHashTree` builds every node from known leaves (the uploader's view).
`IncompleteHashTree` starts from a trusted root and accepts hashes and leaves
from an untrusted source, keeping only what it has proven against the root
(the downloader's view).
"""

from collections.abc import Iterable, Mapping, Sequence

from shoal.crypto.hashes import HASH_LENGTH, merkle_empty_leaf_hash, merkle_pair_hash
from shoal.errors import Fault, ShoalError


class HashTreeError(ShoalError):
    """A hash tree could not accept the hashes it was given (whoever sent them:
    a storage server)."""

    fault = Fault.SERVER


class BadHashError(HashTreeError):
    """A hash or leaf contradicts the trusted root: the data is corrupt."""


class NotEnoughHashesError(HashTreeError):
    """Not enough hashes to connect a node to the trusted root."""


def tree_width(num_leaves: int) -> int:
    """Number of leaves after padding: the smallest power of two >= num_leaves."""
    if num_leaves < 1:
        raise ValueError("a hash tree needs at least one leaf")
    return 1 << (num_leaves - 1).bit_length()


def tree_size(num_leaves: int) -> int:
    """Number of nodes in the flat array of a tree over num_leaves leaves."""
    return 2 * tree_width(num_leaves) - 1


def parent(i: int) -> int:
    return (i - 1) // 2


def sibling(i: int) -> int:
    return i + 1 if i % 2 else i - 1


def chain_for(node: int) -> list[int]:
    """Siblings of node and of each of its ancestors, from the node up (root excluded)."""
    out = []
    while node > 0:
        out.append(sibling(node))
        node = parent(node)
    return out


def needed_hashes(num_leaves: int, leafnum: int, include_leaf: bool = False) -> list[int]:
    """Node numbers needed to prove leaf `leafnum` against the root (root excluded).

    The order is the iteration order of a CPython set built from the chain
    (leaf up) with the leaf added last: Tahoe's uploader writes share hash
    chains in exactly this order, so byte-identical shares depend on it.
    """
    width = tree_width(num_leaves)
    if not 0 <= leafnum < width:
        raise IndexError(f"leaf {leafnum} out of range for a tree of {num_leaves} leaves")
    node = width - 1 + leafnum
    wanted = set(chain_for(node))
    if include_leaf:
        wanted.add(node)
    return list(wanted)


class CompleteHashTree(Sequence[bytes]):
    """Every node of the tree over the given leaf hashes."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        width = tree_width(len(leaves))
        row = list(leaves) + [merkle_empty_leaf_hash(j) for j in range(len(leaves), width)]
        rows = [row]
        while len(row) > 1:
            row = [merkle_pair_hash(row[2 * i], row[2 * i + 1]) for i in range(len(row) // 2)]
            rows.append(row)
        self._nodes: list[bytes] = [h for r in reversed(rows) for h in r]
        self.num_leaves = len(leaves)
        self.first_leaf = width - 1

    def __len__(self) -> int:
        return len(self._nodes)

    def __getitem__(self, i):  # type: ignore[override]
        return self._nodes[i]

    @property
    def root(self) -> bytes:
        return self._nodes[0]

    def leaf(self, leafnum: int) -> bytes:
        return self._nodes[self.first_leaf + leafnum]

    def needed_hashes(self, leafnum: int, include_leaf: bool = False) -> list[int]:
        return needed_hashes(self.num_leaves, leafnum, include_leaf)

    def chain(self, leafnum: int, include_leaf: bool = False) -> dict[int, bytes]:
        """{node number: hash} that proves one leaf."""
        return {i: self._nodes[i] for i in self.needed_hashes(leafnum, include_leaf)}

    def to_bytes(self) -> bytes:
        """The flat array, as stored in shares."""
        return b"".join(self._nodes)


class IncompleteHashTree:
    """A tree that believes only what it can prove against its root.

    Give the root to the constructor or as node 0 of the first add();
    thereafter every hash and leaf is checked before it is kept.
    """

    def __init__(self, num_leaves: int, root: bytes | None = None) -> None:
        self.num_leaves = num_leaves
        self.width = tree_width(num_leaves)
        self.first_leaf = self.width - 1
        self.size = 2 * self.width - 1
        self._known: dict[int, bytes] = {}
        if root is not None:
            self.add(hashes={0: root})

    @property
    def root(self) -> bytes | None:
        return self._known.get(0)

    def __contains__(self, node: int) -> bool:
        return node in self._known

    def get(self, node: int) -> bytes | None:
        return self._known.get(node)

    def get_leaf(self, leafnum: int) -> bytes | None:
        return self._known.get(self.first_leaf + leafnum)

    def needed_hashes(self, leafnum: int, include_leaf: bool = False) -> set[int]:
        """Node numbers still missing before leaf `leafnum` can be checked."""
        if not 0 <= leafnum < self.num_leaves:
            raise IndexError(f"leaf {leafnum} out of range (tree has {self.num_leaves} leaves)")
        node = self.first_leaf + leafnum
        missing = set()
        if include_leaf and node not in self._known:
            missing.add(node)
        while node > 0 and node not in self._known:
            sib = sibling(node)
            if sib not in self._known:
                missing.add(sib)
            node = parent(node)
        if 0 not in self._known:
            missing.add(0)
        return missing

    def add(
        self,
        hashes: Mapping[int, bytes] | None = None,
        leaves: Mapping[int, bytes] | None = None,
    ) -> None:
        """Check and keep node hashes (by node number) and leaf hashes (by leaf number).

        Everything given is proven together or nothing is kept:
        BadHashError if anything contradicts what is known, naming the node;
        NotEnoughHashesError if some node cannot be connected to the root.
        """
        new: dict[int, bytes] = {}
        for i, h in (hashes or {}).items():
            self._stage(new, i, h, f"node {i}")
        for j, h in (leaves or {}).items():
            if not 0 <= j < self.num_leaves:
                raise IndexError(f"leaf {j} out of range (tree has {self.num_leaves} leaves)")
            self._stage(new, self.first_leaf + j, h, f"leaf {j} (node {self.first_leaf + j})")
        if not new:
            return
        if 0 not in self._known:
            if 0 not in new:
                raise NotEnoughHashesError("the tree has no trusted root yet")
            self._known[0] = new.pop(0)
        proven = self._prove(new)
        self._known.update(proven)

    def _stage(self, new: dict[int, bytes], node: int, h: bytes, what: str) -> None:
        if not 0 <= node < self.size:
            # node numbers come from untrusted shares: a bad one is corruption
            raise BadHashError(f"{what} out of range (tree has {self.size} nodes)")
        if not isinstance(h, bytes) or len(h) != HASH_LENGTH:
            raise BadHashError(f"{what}: a hash must be {HASH_LENGTH} bytes")
        old = self._known.get(node, new.get(node))
        if old is not None and old != h:
            raise BadHashError(f"{what}: hash differs from the one already known")
        if node not in self._known:
            new[node] = h

    def _prove(self, new: dict[int, bytes]) -> dict[int, bytes]:
        """Walk each new node up to a known one, computing parents on the way."""
        tentative = dict(new)
        for start in sorted(new, reverse=True):
            node = start
            while node not in self._known:
                sib = sibling(node)
                sib_hash = self._known.get(sib, tentative.get(sib))
                if sib_hash is None:
                    raise NotEnoughHashesError(
                        f"cannot check node {start}: sibling node {sib} of node {node} is missing"
                    )
                left, right = (node, sib) if node < sib else (sib, node)
                up = parent(node)
                computed = merkle_pair_hash(
                    tentative.get(left) or self._known[left],
                    tentative.get(right) or self._known[right],
                )
                claimed = self._known.get(up, tentative.get(up))
                if claimed is not None and claimed != computed:
                    raise BadHashError(
                        f"hash mismatch at node {up} (children {left}, {right}) "
                        f"while checking node {start}"
                    )
                tentative[up] = computed
                node = up
        return {i: h for i, h in tentative.items() if i not in self._known}

    def known_nodes(self) -> Iterable[int]:
        return self._known.keys()
