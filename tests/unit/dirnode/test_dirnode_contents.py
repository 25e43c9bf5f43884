"""Edits of directory contents (shoal.dirnode.contents) against Tahoe-LAFS 1.20's own
Adder, Deleter and MetadataSetter on the same bytes at the same clock: identical
bytes out. Plus what shoal does beyond Tahoe: entries it was not asked to change
are never dropped, and a retried edit whose first attempt landed is not an error."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.caps import CHKCap, DirectoryWriteCap, SSKWriteCap
from shoal.dirnode import (
    BadMetadataError,
    ChildCapError,
    ChildNameError,
    CorruptDirectoryError,
    ExistingChildError,
    NoSuchChildError,
)
from shoal.dirnode.children import resolve_child
from shoal.dirnode.contents import (
    ONLY_FILES,
    Contents,
    add_children,
    check_overwrite,
    pack_new_directory,
    remove_child,
    set_metadata,
)
from shoal.encoding.netstring import netstring
from shoal.formats.dirnode import MAX_NAME_BYTES, child_name_problem, normalize_name, pack_entry
from tests.unit.dirnode.dirnode_peer import (
    TAHOE_ERRORS,
    cap_texts,
    metadata_dicts,
    names,
    tahoe_dirnode_peer,
)

# Hypothesis's own example cache compares bytes with str keys (BytesWarning under -b).
pytestmark = pytest.mark.filterwarnings("ignore::BytesWarning:hypothesis.*")


_peer = pytest.fixture(scope="module", name="tahoe_dirnode")(tahoe_dirnode_peer)

WRITEKEY = bytes(range(16))
DIR_RW = DirectoryWriteCap.from_string("URI:DIR2:aaaqeayeaudaocajbifqydiob4:" + "a" * 52)
SUBDIR = DirectoryWriteCap(SSKWriteCap(b"s" * 16, b"f" * 32)).to_string()
FILE = CHKCap(b"k" * 16, b"u" * 32, 3, 10, 1234).to_string()
ERRORS = {**TAHOE_ERRORS, ExistingChildError: "ExistingChildError", NoSuchChildError: "NoSuchChildError"}

# Names drawn from a small pool so that edits hit existing children.
pool_names = st.one_of(st.sampled_from(["a", "b", "\u00e9", "e\u0301", "sub"]), names)
children_lists = st.lists(st.tuples(pool_names, cap_texts(), cap_texts(), metadata_dicts), max_size=5)


def tahoe_directory(peer, children):
    """What Tahoe packs of these children; None if it refuses them, or if it would drop
    some child on reading them back (an edit by shoal keeps such children; Tahoe's drops
    them, by design a difference)."""
    ok, packed = peer.ask(op="pack", children=[list(c) for c in children], writekey=WRITEKEY.hex(),
                          deep_immutable=False)
    if not ok:
        return None
    data = bytes.fromhex(packed)
    ok, listed = peer.ask(op="unpack", dircap=DIR_RW.to_string(), data=packed)
    if not ok or len(listed) != len(contents(data).packed):
        return None
    return data


def contents(data):
    return Contents(data, writekey=WRITEKEY, mutable=True)


def shoal_edit(fn):
    try:
        new = fn()
    except (ChildCapError, ExistingChildError, NoSuchChildError) as e:
        return False, ERRORS[type(e)]
    return True, None if new is None else new.hex()


@settings(max_examples=120)
@given(children=children_lists,
       additions=st.lists(st.tuples(pool_names, cap_texts(), cap_texts(), st.one_of(st.none(), metadata_dicts)),
                          min_size=1, max_size=3),
       overwrite=st.sampled_from([True, False, ONLY_FILES]), now=st.floats(0, 2e9))
def test_add_as_tahoe(tahoe_dirnode, children, additions, overwrite, now):
    data = tahoe_directory(tahoe_dirnode, children)
    if data is None:
        return
    entries = {name: (rw, ro, md) for name, rw, ro, md in additions}
    tahoe = tahoe_dirnode.ask(op="add", dircap=DIR_RW.to_string(), data=data.hex(), now=now, overwrite=overwrite,
                              entries=[[n, rw, ro, md] for n, (rw, ro, md) in entries.items()])

    def mine():
        resolved = {n: (resolve_child(rw, ro, name=n), md) for n, (rw, ro, md) in entries.items()}
        return add_children(contents(data), resolved, overwrite=overwrite, now=now)

    if any(child_name_problem(normalize_name(n)) for n in entries):
        # by design a difference: shoal links only names that are one path component
        # (a bad cap may be refused first, when the child is resolved)
        with pytest.raises((ChildNameError, ChildCapError)):
            mine()
        return
    assert shoal_edit(mine) == tahoe


@settings(max_examples=80)
@given(children=children_lists, name=pool_names)
def test_delete_as_tahoe(tahoe_dirnode, children, name):
    data = tahoe_directory(tahoe_dirnode, children)
    if data is None:
        return
    tahoe = tahoe_dirnode.ask(op="delete", dircap=DIR_RW.to_string(), data=data.hex(), name=name)
    assert shoal_edit(lambda: remove_child(contents(data), name, must_exist=True)[0]) == tahoe


@settings(max_examples=80)
@given(children=children_lists, name=pool_names, metadata=metadata_dicts, now=st.floats(0, 2e9))
def test_set_metadata_as_tahoe(tahoe_dirnode, children, name, metadata, now):
    data = tahoe_directory(tahoe_dirnode, children)
    if data is None:
        return
    tahoe = tahoe_dirnode.ask(op="set_metadata", dircap=DIR_RW.to_string(), data=data.hex(), name=name,
                              metadata=metadata, now=now)
    assert shoal_edit(lambda: set_metadata(contents(data), name, metadata, now=now)) == tahoe


def test_untouched_entries_keep_their_bytes(tahoe_dirnode):
    """A foreign spelling (non-NFC name, compact JSON) survives an edit of another
    entry, in Tahoe and in shoal alike."""
    odd = netstring("e\u0301".encode()) + netstring(FILE.encode()) + b"0:," + netstring(b'{"x":1}')  # 'e' + combining acute
    data = netstring(odd)
    assert list(contents(data).packed) == ["\u00e9"]
    child = resolve_child(SUBDIR, None)
    new = add_children(contents(data), {"z": (child, None)}, overwrite=True, now=5.0)
    assert new is not None and new.endswith(netstring(odd))  # "z" < "\u00e9"
    tahoe = tahoe_dirnode.ask(op="add", dircap=DIR_RW.to_string(), data=data.hex(), now=5.0, overwrite=True,
                              entries=[["z", SUBDIR, None, None]])
    assert tahoe == (True, new.hex())


def test_overwrite_rules():
    base = pack_new_directory({"sub": (resolve_child(SUBDIR, None), {}), "f": (resolve_child(FILE, None), {})},
                              writekey=WRITEKEY, mutable=True)
    new_file = {"f": (resolve_child(FILE.replace(":1234", ":99"), None), None)}
    over_dir = {"sub": (resolve_child(FILE, None), None)}
    with pytest.raises(ExistingChildError, match="'f' already exists"):
        add_children(contents(base), new_file, overwrite=False, now=1.0)
    assert add_children(contents(base), new_file, overwrite=ONLY_FILES, now=1.0) is not None
    with pytest.raises(ExistingChildError, match="'sub' already exists as a directory"):
        add_children(contents(base), over_dir, overwrite=ONLY_FILES, now=1.0)
    replaced = add_children(contents(base), over_dir, overwrite=True, now=1.0)
    assert contents(replaced).entry("sub").ro_cap == FILE
    with pytest.raises(ValueError, match="overwrite must be"):
        check_overwrite("files")


def test_no_write_link_is_read_only():
    new = add_children(contents(b""), {"s": (resolve_child(SUBDIR, None), {"no-write": True})}, overwrite=True,
                       now=2.0)
    entry = contents(new).entry("s")
    assert entry.rw_cap is None and entry.ro_cap.startswith("URI:DIR2-RO:")
    assert entry.metadata == {"no-write": True, "tahoe": {"linkcrtime": 2.0, "linkmotime": 2.0}}


def test_retried_add_is_not_an_existing_child_error():
    child = resolve_child(FILE, None)
    once = add_children(contents(b""), {"f": (child, None)}, overwrite=False, now=1.0)
    with pytest.raises(ExistingChildError):
        add_children(contents(once), {"f": (child, None)}, overwrite=False, now=2.0)
    assert add_children(contents(once), {"f": (child, None)}, overwrite=False, now=2.0, retry=True) is None
    other = resolve_child(SUBDIR, None)
    with pytest.raises(ExistingChildError):  # someone else's child there: still refused
        add_children(contents(once), {"f": (other, None)}, overwrite=False, now=2.0, retry=True)


def test_edits_keep_entries_tahoe_would_drop():
    """A write cap in a read-only slot (a constraint Tahoe enforces by hiding the
    child) is not listed, but an edit of another child keeps it."""
    bad = pack_entry("w", None, b"ro." + SUBDIR.encode(), {}, writekey=WRITEKEY)
    bad = bad.replace(netstring(SUBDIR.encode()), netstring(b"ro." + SUBDIR.encode()))
    data = netstring(bad)
    assert contents(data).entries() == {}
    new = add_children(contents(data), {"a": (resolve_child(FILE, None), None)}, overwrite=True, now=1.0)
    assert netstring(bad) in new and list(contents(new).entries()) == ["a"]


def test_corrupt_entry_can_be_unlinked():
    broken = netstring(b"1:x," + netstring(b"URI:CHK:broken") + netstring(b"") + netstring(b"{}"))
    good = netstring(pack_entry("y", None, FILE.encode(), {}, writekey=WRITEKEY))
    data = broken + good
    with pytest.raises(CorruptDirectoryError, match="entry 0 \\('x'\\)"):
        contents(data).entries()
    new, removed = remove_child(contents(data), "x", must_exist=True)
    assert removed.name == "x" and removed.ro_cap is None
    assert list(contents(new).entries()) == ["y"]
    with pytest.raises(NoSuchChildError):
        remove_child(contents(new), "x", must_exist=True)
    assert remove_child(contents(new), "x", must_exist=False) == (None, None)


def test_names_are_normalised_on_every_edit():
    new = add_children(contents(b""), {"e\u0301": (resolve_child(FILE, None), {})}, overwrite=True, now=1.0)
    assert list(contents(new).entries()) == [normalize_name("e\u0301")] == ["\u00e9"]
    assert remove_child(contents(new), "e\u0301", must_exist=True)[0] == b""


def test_bad_names_and_metadata_are_the_callers_fault():
    child = resolve_child(FILE, None)
    with pytest.raises(ChildNameError, match="cannot encode"):
        add_children(contents(b""), {"\udc80": (child, None)}, overwrite=True, now=1.0)
    with pytest.raises(BadMetadataError, match="'m': metadata is not JSON-serialisable"):
        add_children(contents(b""), {"m": (child, {"x": object()})}, overwrite=True, now=1.0)
    with pytest.raises(BadMetadataError, match="'m': metadata is a list"):
        pack_new_directory({"m": (child, [])}, writekey=WRITEKEY, mutable=True)


BAD_NAMES = ["", ".", "..", "../x", "/abs/path", "a/b", "a\x00b", "x" * (MAX_NAME_BYTES + 1),
             "\u00e9" * (MAX_NAME_BYTES // 2 + 1)]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_that_are_not_one_path_component_are_refused(name):
    """issue #15: children named ../x or /abs/path led shoal cp outside its destination."""
    child = resolve_child(FILE, None)
    with pytest.raises(ChildNameError, match="bad child name"):
        add_children(contents(b""), {name: (child, None)}, overwrite=True, now=1.0)
    with pytest.raises(ChildNameError, match="bad child name"):
        pack_new_directory({name: (child, {})}, writekey=WRITEKEY, mutable=True)


@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(["", ".", "..", "/", "a", "\x00"])).map("".join)))
def test_an_accepted_name_is_one_path_component(name):
    if child_name_problem(name) is None:
        joined = os.path.normpath(os.path.join("/base", name))
        assert os.path.dirname(joined) == "/base" and os.path.basename(joined) == name
        assert "\x00" not in name


def test_existing_entries_with_such_names_stay_readable_and_removable():
    """A Tahoe-made directory may hold '../x': it lists, re-tags and unlinks."""
    data = netstring(pack_entry("../x", None, FILE.encode(), {}, writekey=WRITEKEY)) + netstring(
        pack_entry("ok", None, FILE.encode(), {}, writekey=WRITEKEY))
    assert list(contents(data).entries()) == ["../x", "ok"]
    tagged = set_metadata(contents(data), "../x", {"k": 1}, now=1.0)
    assert "../x" in contents(tagged).entries()
    new, removed = remove_child(contents(data), "../x", must_exist=True)
    assert removed.name == "../x" and list(contents(new).entries()) == ["ok"]


def raw_entry(name: bytes, metadata: bytes) -> bytes:
    return netstring(netstring(name) + netstring(FILE.encode()) + netstring(b"") + netstring(metadata))


def test_metadata_json_too_deep_for_python_is_a_corrupt_entry_not_a_recursion_error():
    """The grid's bytes are untrusted: a writer's 100,000-deep metadata is that entry's corruption."""
    data = raw_entry(b"deep", b"[" * 100_000 + b"]" * 100_000) + raw_entry(b"ok", b'{"a": [[[1]]]}')
    with pytest.raises(CorruptDirectoryError, match="'deep'.*metadata is not JSON"):
        contents(data).entries()
    new, removed = remove_child(contents(data), "deep", must_exist=True)
    assert list(contents(new).entries()) == ["ok"]
    wide = raw_entry(b"w", b'{"n": ' + b"7" * 4000 + b', "d": ' + b"[" * 300 + b"]" * 300 + b"}")
    assert contents(wide).entries()["w"].metadata["n"] == int("7" * 4000)  # what Tahoe reads, shoal reads


def test_every_name_of_an_edit_is_checked_before_any_child_is():
    """A bad name later in the batch is the error, not an existing child earlier in it
    (hypothesis found {'a': existing, '': ...} answering ExistingChildError)."""
    child = resolve_child(FILE, None)
    existing = add_children(contents(b""), {"a": (child, None)}, overwrite=True, now=1.0)
    with pytest.raises(ChildNameError, match="bad child name"):
        add_children(contents(existing), {"a": (child, None), "": (child, None)}, overwrite=False, now=2.0)
