"""Directories (shoal.dirnode) on real storage servers in process (LocalGrid):
every family round trip (DIR2, DIR2-MDMF, DIR2-CHK, DIR2-LIT), nested paths,
link metadata, unknown caps kept intact, read-only views, errors, and two
clients editing one directory at once without losing a change."""

import types

import pytest
from twisted.internet import defer

from shoal.caps import (
    CHKCap,
    CHKDirectoryCap,
    DirectoryReadCap,
    DirectoryWriteCap,
    LiteralCap,
    LiteralDirectoryCap,
    MDMFDirectoryReadCap,
    MDMFDirectoryWriteCap,
    SSKWriteCap,
    parse_cap,
)
from shoal.dirnode import (
    DirectoryNode,
    ExistingChildError,
    ImmutableFileNode,
    MustBeImmutableError,
    MustNotBeUnknownRWError,
    NodeMaker,
    NoSuchChildError,
    NotDirectoryError,
    NotReadableError,
    ReadOnlyDirectoryError,
    UnknownNode,
    VerifierNode,
)
from shoal.formats.dirnode import split_entries
from shoal.immutable.params import EncodingParams
from shoal.mutable import MutableClient, MutableFileNode
from shoal.node.files import ClientFiles
from shoal.testing.local_grid import LocalGrid
from tests.unit.mutable.vector_keys import fresh_key

K, HAPPY, N = 3, 4, 5
FUTURE = "URI:FUTURE:some-new-kind"
BIG = b"x" * 5000


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


def make_maker(grid, secret=b"C" * 32) -> NodeMaker:
    identity = types.SimpleNamespace(convergence_secret=secret, lease_secret=b"L" * 32)
    files = ClientFiles(grid.broker, EncodingParams(K, HAPPY, N), identity)
    return NodeMaker(files, MutableClient(grid.broker, lease_secret=b"L" * 32, k=K, n=N))


@pytest.fixture(scope="module")
def maker(grid):
    return make_maker(grid)


def run(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


def mkdir(grid, maker, children=None, fmt="SDMF") -> DirectoryNode:
    return run(grid, maker.create_directory, children, format=fmt, private_key=fresh_key())


def upload(grid, maker, data: bytes) -> str:
    import io

    return run(grid, maker.files.upload, io.BytesIO(data), len(data)).cap


def raw_contents(grid, node: DirectoryNode) -> bytes:
    return run(grid, node._data)


# --- mutable directories -----------------------------------------------------------

@pytest.mark.parametrize("fmt, write_cls, read_cls", [
    ("SDMF", DirectoryWriteCap, DirectoryReadCap), ("MDMF", MDMFDirectoryWriteCap, MDMFDirectoryReadCap),
])
def test_mutable_directory_round_trip(grid, maker, fmt, write_cls, read_cls):
    file_cap = upload(grid, maker, BIG)
    sub = mkdir(grid, maker)
    d = mkdir(grid, maker, {"file": file_cap, "sub": sub.cap.to_string(), "lit": ("URI:LIT:mfrgg", None, {"k": 1})},
              fmt=fmt)
    assert isinstance(d.cap, write_cls) and isinstance(d.readonly_cap, read_cls)
    assert d.is_mutable() and not d.is_readonly()
    listing = run(grid, d.list)
    assert list(listing) == ["file", "lit", "sub"]
    assert listing["file"].ro_cap == file_cap and listing["file"].rw_cap is None
    assert listing["sub"].rw_cap == sub.cap.to_string()
    assert listing["sub"].ro_cap == sub.readonly_cap.to_string()
    assert listing["lit"].metadata == {"k": 1}  # initial children: metadata exactly as given
    assert listing["file"].metadata == {}
    # The same directory opened from its cap by another client.
    other = make_maker(grid).node_for(d.cap.to_string())
    assert isinstance(other, DirectoryNode) and run(grid, other.list) == listing
    # Its file is a mutable file of the right format holding the packed entries.
    assert isinstance(d.file, MutableFileNode) and d.file.format == fmt
    assert list(split_entries(raw_contents(grid, d), mutable=True)) == ["file", "lit", "sub"]


def test_set_get_and_link_metadata(grid):
    clock = iter([1000.0, 2000.0, 3000.0])
    maker = make_maker(grid)
    maker.clock = lambda: next(clock)
    d = mkdir(grid, maker)
    run(grid, d.set_child, "a", "URI:LIT:mfrgg")
    assert run(grid, d.get, "a").metadata == {"tahoe": {"linkcrtime": 1000.0, "linkmotime": 1000.0}}
    run(grid, d.set_child, "a", "URI:LIT:mfrgg", metadata={"mtime": 5, "tahoe": {"linkcrtime": 1}})
    entry = run(grid, d.get, "a")
    assert entry.metadata == {"mtime": 5, "tahoe": {"linkcrtime": 1000.0, "linkmotime": 2000.0}}
    run(grid, d.set_child, "a", "URI:LIT:nfrgg")  # metadata None: the old kept, timestamps touched
    entry = run(grid, d.get, "a")
    assert entry.ro_cap == "URI:LIT:nfrgg"
    assert entry.metadata == {"mtime": 5, "tahoe": {"linkcrtime": 1000.0, "linkmotime": 3000.0}}


def test_set_children_overwrite_modes(grid, maker):
    d = mkdir(grid, maker)
    sub = mkdir(grid, maker)
    run(grid, d.set_children, {"f": "URI:LIT:mfrgg", "d": sub.cap.to_string()})
    with pytest.raises(ExistingChildError, match="'f' already exists"):
        run(grid, d.set_child, "f", "URI:LIT:nfrgg", overwrite=False)
    run(grid, d.set_child, "f", "URI:LIT:nfrgg", overwrite="only-files")
    with pytest.raises(ExistingChildError, match="'d' already exists as a directory"):
        run(grid, d.set_child, "d", "URI:LIT:nfrgg", overwrite="only-files")
    listing = run(grid, d.list)
    assert listing["f"].ro_cap == "URI:LIT:nfrgg" and listing["d"].rw_cap == sub.cap.to_string()


def test_nested_paths_and_subdirectories(grid, maker):
    root = mkdir(grid, maker)
    a = run(grid, root.create_subdirectory, "a", private_key=fresh_key())
    b = run(grid, a.create_subdirectory, "b", {"leaf": "URI:LIT:mfrgg"}, format="MDMF", private_key=fresh_key())
    assert isinstance(b.cap, MDMFDirectoryWriteCap)
    assert run(grid, root.get_at_path, []) is None
    assert run(grid, root.get_at_path, ["a", "b", "leaf"]).ro_cap == "URI:LIT:mfrgg"
    assert run(grid, root.get_at_path, ["a", "b"]).rw_cap == b.cap.to_string()
    with pytest.raises(NotDirectoryError, match="'a/b/leaf' is not a directory"):
        run(grid, root.get_at_path, ["a", "b", "leaf", "deeper"])
    with pytest.raises(NoSuchChildError, match="'nope' in a/b"):
        run(grid, root.get_at_path, ["a", "b", "nope"])
    with pytest.raises(NoSuchChildError):
        run(grid, root.get, "zzz")
    # A subdirectory linked through its read cap is walked read-only.
    run(grid, root.set_child, "ro", a.readonly_cap.to_string())
    leaf_dir = maker.node_for_entry(run(grid, root.get_at_path, ["ro", "b"]))
    assert isinstance(leaf_dir, DirectoryNode) and leaf_dir.is_readonly()


def test_unlink_rename_and_relink(grid, maker):
    one = mkdir(grid, maker, {"f": ("URI:LIT:mfrgg", None, {"user": "x"}), "g": "URI:LIT:nfrgg"})
    two = mkdir(grid, maker)
    run(grid, one.move_child_to, "f", one, "f2")  # rename: one write
    listing = run(grid, one.list)
    assert sorted(listing) == ["f2", "g"] and listing["f2"].metadata["user"] == "x"
    assert set(listing["f2"].metadata["tahoe"]) == {"linkcrtime", "linkmotime"}
    run(grid, one.move_child_to, "f2", two)  # relink into another directory
    assert list(run(grid, one.list)) == ["g"]
    moved = run(grid, two.get, "f2")
    assert moved.ro_cap == "URI:LIT:mfrgg" and moved.metadata["user"] == "x"
    run(grid, two.move_child_to, "f2", two)  # onto itself: nothing happens
    with pytest.raises(ExistingChildError):
        run(grid, one.move_child_to, "g", two, "f2", overwrite=False)
    assert list(run(grid, one.list)) == ["g"]  # the failed move left the source alone
    removed = run(grid, one.unlink, "g")
    assert removed.name == "g" and removed.ro_cap == "URI:LIT:nfrgg"
    assert run(grid, one.list) == {}
    with pytest.raises(NoSuchChildError):
        run(grid, one.unlink, "g")
    with pytest.raises(NoSuchChildError):
        run(grid, one.move_child_to, "g", two)


def test_read_only_view(grid, maker):
    sub = mkdir(grid, maker)
    d = mkdir(grid, maker, {"sub": sub.cap.to_string(), "f": "URI:LIT:mfrgg"})
    ro = maker.node_for(d.readonly_cap)
    assert isinstance(ro, DirectoryNode) and ro.is_readonly() and ro.is_mutable()
    listing = run(grid, ro.list)
    assert listing["sub"].rw_cap is None  # transitive read-only: write caps stay encrypted
    assert listing["sub"].ro_cap == sub.readonly_cap.to_string()
    for attempt in (
        lambda: ro.set_child("x", "URI:LIT:mfrgg"), lambda: ro.unlink("f"),
        lambda: ro.set_children({"x": "URI:LIT:"}), lambda: ro.create_subdirectory("x"),
        lambda: ro.move_child_to("f", d), lambda: d.move_child_to("f", ro), lambda: ro.set_metadata("f", {}),
    ):
        with pytest.raises(ReadOnlyDirectoryError):
            run(grid, attempt)
    assert sorted(run(grid, d.list)) == ["f", "sub"]


def test_unknown_caps_kept_intact(grid, maker):
    d = mkdir(grid, maker, {"both": (FUTURE + ":w", FUTURE + ":r", {})})
    run(grid, d.set_child, "ro", "ro." + FUTURE)
    run(grid, d.set_child, "imm", "imm." + FUTURE)
    with pytest.raises(MustNotBeUnknownRWError):
        run(grid, d.set_child, "bare", FUTURE)
    listing = run(grid, d.list)
    assert (listing["both"].rw_cap, listing["both"].ro_cap) == (FUTURE + ":w", "ro." + FUTURE + ":r")
    assert (listing["ro"].rw_cap, listing["ro"].ro_cap) == (None, "ro." + FUTURE)
    assert (listing["imm"].rw_cap, listing["imm"].ro_cap) == (None, "imm." + FUTURE)
    assert all(e.is_unknown for e in listing.values())
    assert isinstance(maker.node_for_entry(listing["ro"]), UnknownNode)
    # Copied between directories (and into an immutable one) they keep their text.
    e = mkdir(grid, maker)
    run(grid, e.set_children, {name: entry for name, entry in listing.items() if name != "both"})
    assert {n: (x.rw_cap, x.ro_cap) for n, x in run(grid, e.list).items()} == {
        "ro": (None, "ro." + FUTURE), "imm": (None, "imm." + FUTURE)}
    frozen = run(grid, maker.create_immutable_directory, {"ro": listing["ro"], "imm": listing["imm"]})
    assert {n: x.ro_cap for n, x in run(grid, frozen.list).items()} == {"ro": "imm." + FUTURE, "imm": "imm." + FUTURE}
    ro_listing = run(grid, maker.node_for(d.readonly_cap).list)
    assert (ro_listing["both"].rw_cap, ro_listing["both"].ro_cap) == (None, "ro." + FUTURE + ":r")


def test_concurrent_writers_lose_nothing(grid, maker):
    """Two clients (each its own mutable client, as two nodes) add children to one
    directory at the same time: every child ends up in it."""
    d = mkdir(grid, maker)
    other = make_maker(grid).node_for(d.cap)

    async def both():
        await defer.gatherResults([
            defer.ensureDeferred(d.set_children({f"a{i}": "URI:LIT:mfrgg"})) for i in range(3)
        ] + [
            defer.ensureDeferred(other.set_children({f"b{i}": "URI:LIT:nfrgg"})) for i in range(3)
        ], consumeErrors=True)

    run(grid, both)
    assert sorted(run(grid, d.list)) == ["a0", "a1", "a2", "b0", "b1", "b2"]


# --- immutable directories ---------------------------------------------------------

def test_literal_directory(grid, maker):
    empty = run(grid, maker.create_immutable_directory, {})
    assert isinstance(empty.cap, LiteralDirectoryCap) and empty.cap.to_string() == "URI:DIR2-LIT:"
    assert run(grid, empty.list) == {}
    small = run(grid, maker.create_immutable_directory, {"a": "URI:LIT:"})
    assert isinstance(small.cap, LiteralDirectoryCap)  # 29 bytes packed: inside the cap
    assert not small.is_mutable() and small.is_readonly() and small.storage_index is None
    assert run(grid, small.get, "a").ro_cap == "URI:LIT:"


def test_chk_directory_round_trip_and_nesting(grid, maker):
    file_cap = upload(grid, maker, BIG)
    inner = run(grid, maker.create_immutable_directory, {"file": (None, file_cap, {"size": len(BIG)})})
    assert isinstance(inner.cap, CHKDirectoryCap)
    outer = run(grid, maker.create_immutable_directory, {
        "inner": inner.cap.to_string(), "lit": "URI:LIT:mfrgg", "dirlit": "URI:DIR2-LIT:",
        "e\u0301": "URI:LIT:",
    })
    assert isinstance(outer.cap, CHKDirectoryCap)
    assert list(run(grid, outer.list)) == ["dirlit", "inner", "lit", "\u00e9"]
    entry = run(grid, outer.get_at_path, ["inner", "file"])
    assert (entry.rw_cap, entry.ro_cap, entry.metadata) == (None, file_cap, {"size": len(BIG)})
    node = maker.node_for_entry(entry)
    assert isinstance(node, ImmutableFileNode) and run(grid, node.download) == BIG
    assert isinstance(maker.node_for(outer.cap.to_string()), DirectoryNode)
    # Convergent: the same children give the same cap.
    again = run(grid, maker.create_immutable_directory, {"file": (None, file_cap, {"size": len(BIG)})})
    assert again.cap == inner.cap


def test_immutable_directory_refuses_mutable_children_and_writes(grid, maker):
    mutable_dir = mkdir(grid, maker)
    for child in (mutable_dir.cap.to_string(), mutable_dir.readonly_cap.to_string(),
                  (FUTURE + ":w", FUTURE + ":r")):
        with pytest.raises(MustBeImmutableError):
            run(grid, maker.create_immutable_directory, {"bad": child})
    frozen = run(grid, maker.create_immutable_directory, {"a": "URI:LIT:mfrgg", "b": "URI:LIT:" + "a" * 60})
    for attempt in (lambda: frozen.set_child("x", "URI:LIT:"), lambda: frozen.unlink("a"),
                    lambda: frozen.move_child_to("a", frozen, "c"), lambda: frozen.create_subdirectory("x")):
        with pytest.raises(ReadOnlyDirectoryError):
            run(grid, attempt)


def test_node_for_every_kind(grid, maker):
    d = mkdir(grid, maker)
    assert isinstance(maker.node_for(d.cap), DirectoryNode)
    assert isinstance(maker.node_for(d.readonly_cap), DirectoryNode)
    assert isinstance(maker.node_for(LiteralCap(b"abc")), ImmutableFileNode)
    assert isinstance(maker.node_for(d.cap.file_cap), MutableFileNode)
    assert isinstance(maker.node_for(d.cap.file_cap.readonly()), MutableFileNode)
    assert isinstance(maker.node_for(FUTURE), UnknownNode)
    assert isinstance(parse_cap(d.cap.to_string()).file_cap, SSKWriteCap)
    # every verify cap, of a directory or a file, is a VerifierNode that checks and never reads
    for verifier in (d.verifier_cap, d.cap.file_cap.verifier()):
        node = maker.node_for(verifier)
        assert isinstance(node, VerifierNode) and node.kind == "verifier" and node.cap == verifier
        assert node.storage_index == d.storage_index and node.verifier_cap == verifier
        assert node.get_size() is None and not node.is_mutable() and node.is_readonly()
        with pytest.raises(NotReadableError):
            run(grid, lambda n=node: n.read(lambda _data: None))
    assert maker.node_for(d.verifier_cap).is_directory and not maker.node_for(d.cap.file_cap.verifier()).is_directory


def test_nodes_answer_the_same_questions(grid, maker):
    d = mkdir(grid, maker)
    lit = maker.node_for(LiteralCap(b"abc"))
    assert (lit.kind, lit.format, lit.storage_index, lit.verifier_cap, lit.get_size()) == ("file", "LIT", None, None, 3)
    assert run(grid, lit.get_current_size) == 3 and not lit.is_mutable() and lit.is_readonly()
    got: list[bytes] = []
    run(grid, lambda: lit.read(got.append, 1, 1))
    assert got == [b"b"]
    mutable = maker.node_for(d.cap.file_cap)
    assert (mutable.kind, mutable.format, mutable.get_size()) == ("file", "SDMF", None)
    assert run(grid, mutable.get_current_size) == len(run(grid, mutable.download_best_version))
    assert (d.kind, d.format, d.is_mutable(), d.is_readonly()) == ("directory", "SDMF", True, False)
    unknown = maker.node_for(FUTURE)
    assert (unknown.kind, unknown.storage_index, unknown.verifier_cap) == ("unknown", None, None)


def test_children_become_nodes_by_the_same_table(grid, maker):
    d = mkdir(grid, maker)
    chk = CHKCap(b"k" * 16, b"h" * 32, 3, 10, 12345)
    run(grid, lambda: d.set_children({
        "lit": LiteralCap(b"abc").to_string(), "chk-verify": chk.verifier().to_string(),
        "dir-verify": "ro." + d.verifier_cap.to_string(),
    }))
    nodes = {name: node for name, (node, _entry) in run(grid, d.list_nodes).items()}
    assert isinstance(nodes["lit"], ImmutableFileNode)
    # shoal keeps a CHK verify cap as a node; a directory's verify cap is an unknown child, as in Tahoe
    assert isinstance(nodes["chk-verify"], VerifierNode) and nodes["chk-verify"].get_size() == 12345
    assert isinstance(nodes["dir-verify"], UnknownNode) and nodes["dir-verify"].verifier_cap == d.verifier_cap


def test_format_names(grid, maker):
    d = run(grid, maker.create_directory, format="mdmf", private_key=fresh_key())
    assert isinstance(d.cap, MDMFDirectoryWriteCap)
    with pytest.raises(ValueError, match="SDMF or MDMF, not 'CHK'"):
        run(grid, maker.create_directory, format="CHK")


def test_edits_after_another_writer_see_its_version(grid):
    """Client A made the directory (it remembers that version); client B then
    changes it. A's next edits must be decided on B's version, not on the one A
    remembers: unlinking B's child works, re-adding a child B removed is written,
    and unlinking a child B removed is NoSuchChildError."""
    a, b = make_maker(grid), make_maker(grid)
    lit = "URI:LIT:mfrgg"
    d_a = mkdir(grid, a, {"kept": lit, "gone": lit})
    d_b = b.node_for(d_a.cap)
    run(grid, d_b.set_child, "added", lit)
    run(grid, d_b.unlink, "gone")
    run(grid, d_a.unlink, "added")  # A remembers no "added"
    run(grid, d_b.set_child, "again", lit)
    run(grid, d_a.set_child, "kept", lit, overwrite=True)  # a no-op on what A remembers: must check the grid
    run(grid, d_b.unlink, "kept")
    run(grid, d_a.set_child, "kept", lit)  # A remembers "kept" as it is: it must be written again
    with pytest.raises(NoSuchChildError):
        run(grid, d_a.unlink, "gone")
    assert sorted(run(grid, make_maker(grid).node_for(d_a.cap).list)) == ["again", "kept"]
