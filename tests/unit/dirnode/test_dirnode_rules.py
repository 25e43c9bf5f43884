"""shoal's directory rules against Tahoe-LAFS 1.20's own code (run in the reference
peer's Python): which child a pair of caps makes, link metadata updates, packed
bytes of new directories, and what listing Tahoe-packed bytes gives."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.caps import CHKVerifierCap, DirectoryWriteCap, LiteralDirectoryCap, parse_cap
from shoal.dirnode import (
    ChildCapError,
    ChildNameError,
    CorruptDirectoryError,
    update_metadata,
)
from shoal.dirnode.children import resolve_child
from shoal.dirnode.contents import Contents, pack_new_directory
from shoal.formats.dirnode import child_name_problem, normalize_name
from tests.unit.dirnode.dirnode_peer import (
    TAHOE_ERRORS,
    cap_texts,
    metadata_dicts,
    names,
    tahoe_dirnode_peer,
)

_peer = pytest.fixture(scope="module", name="tahoe_dirnode")(tahoe_dirnode_peer)

WRITEKEY = bytes(range(16))
DIR_RW = DirectoryWriteCap.from_string(
    "URI:DIR2:aaaqeayeaudaocajbifqydiob4:" + "a" * 52
)  # its writekey is WRITEKEY (b2a of bytes 0..15)

# Hypothesis's own example cache compares bytes with str keys (BytesWarning under -b).
pytestmark = pytest.mark.filterwarnings("ignore::BytesWarning:hypothesis.*")



def test_dir_cap_writekey():
    assert DIR_RW.file_cap.writekey == WRITEKEY


def shoal_resolve(rw, ro, deep_immutable):
    try:
        child = resolve_child(rw, ro, deep_immutable=deep_immutable, name="n")
    except ChildCapError as e:
        return False, TAHOE_ERRORS[type(e)]
    return True, [child.write, child.read, child.allowed_in_immutable_directory()]


@settings(max_examples=200)
@given(rw=cap_texts(), ro=cap_texts(), deep_immutable=st.booleans())
def test_resolve_child_as_tahoe(tahoe_dirnode, rw, ro, deep_immutable):
    ok, tahoe = tahoe_dirnode.ask(op="resolve", rw=rw, ro=ro, deep_immutable=deep_immutable)
    assert shoal_resolve(rw, ro, deep_immutable) == (ok, tahoe)


@pytest.mark.parametrize("rw, ro, deep", [
    ("URI:FUTURE:x", None, False), ("ro.URI:FUTURE:x", None, False), ("imm.URI:FUTURE:x", None, True),
    ("URI:FUTURE:x", "URI:FUTURE:y", False), ("URI:FUTURE:x", "imm.URI:FUTURE:y", False),
    ("URI:FUTURE:x", "URI:FUTURE:y", True), (None, "URI:FUTURE:y", True), (None, "ro.URI:SSK:x", False),
    ("imm.URI:SSK-RO:" + "a" * 26 + ":" + "a" * 52, None, False), ("URI:CHK:nope", "URI:FUTURE:y", False),
    (None, "URI:CHK:nope", False), ("x-tahoe-future-test-writeable:x", None, True),
])
def test_resolve_corner_cases_as_tahoe(tahoe_dirnode, rw, ro, deep):
    assert shoal_resolve(rw, ro, deep) == tahoe_dirnode.ask(op="resolve", rw=rw, ro=ro, deep_immutable=deep)


def test_chk_verifier_child_is_read_only_immutable():
    """Tahoe makes a node for a CHK verify cap that cannot be packed; shoal keeps it."""
    text = "URI:CHK-Verifier:" + "a" * 26 + ":" + "a" * 52 + ":3:10:1000"
    assert isinstance(parse_cap(text), CHKVerifierCap)
    child = resolve_child(text, None, deep_immutable=True)
    assert (child.write, child.read, child.allowed_in_immutable_directory()) == (None, text, True)


@settings(max_examples=100)
@given(old=st.one_of(st.none(), metadata_dicts), new=st.one_of(st.none(), metadata_dicts),
       now=st.floats(0, 2e9))
def test_update_metadata_as_tahoe(tahoe_dirnode, old, new, now):
    before = json.dumps(old)
    ok, tahoe = tahoe_dirnode.ask(op="update_metadata", old=old, new=new, now=now)
    assert ok
    assert json.dumps(update_metadata(old, new, now)) == tahoe  # same keys, values and order
    assert json.dumps(old) == before  # not modified


def test_update_metadata_replaces_a_tahoe_value_that_is_not_an_object():
    assert update_metadata({"tahoe": [1]}, None, 5.0) == {"tahoe": {"linkcrtime": 5.0, "linkmotime": 5.0}}


children_lists = st.lists(st.tuples(names, cap_texts(), cap_texts(), metadata_dicts), max_size=5)


def shoal_pack(children, writekey, deep_immutable):
    given = {c[0]: c for c in children}  # a dict, as the API takes: the last of a name wins
    latest = {normalize_name(name): c for name, c in given.items()}  # then the last once normalised
    resolved = {}
    try:
        for name, rw, ro, metadata in latest.values():
            resolved[name] = (resolve_child(rw, ro, name=name), metadata)
        return True, pack_new_directory(resolved, writekey=writekey, mutable=not deep_immutable).hex()
    except ChildCapError as e:
        return False, TAHOE_ERRORS[type(e)]
    except ChildNameError:
        return False, "ChildNameError"


def tahoe_answer(children, answer):
    """Tahoe's answer, but shoal's where a name is not one path component (shoal refuses
    it, by design a difference; a bad cap of another child may be refused first)."""
    if any(child_name_problem(normalize_name(c[0])) for c in children):
        return None
    return answer


@settings(max_examples=120)
@given(children=children_lists, immutable=st.booleans())
def test_pack_new_directory_as_tahoe(tahoe_dirnode, children, immutable):
    """Byte-identical to Tahoe's pack_children for the same children."""
    request = [list(c) for c in children]
    writekey = None if immutable else WRITEKEY.hex()
    ok, tahoe = tahoe_dirnode.ask(op="pack", children=request, writekey=writekey, deep_immutable=immutable)
    mine = shoal_pack(children, None if immutable else WRITEKEY, immutable)
    if tahoe_answer(children, ok) is None:
        assert not mine[0]
        return
    if not ok and not mine[0]:
        return  # both refuse (possibly different children's errors, checked below for one child)
    assert mine == (ok, tahoe)


@settings(max_examples=100)
@given(name=names, rw=cap_texts(), ro=cap_texts(), metadata=metadata_dicts, immutable=st.booleans())
def test_pack_one_child_as_tahoe_errors_included(tahoe_dirnode, name, rw, ro, metadata, immutable):
    writekey = None if immutable else WRITEKEY.hex()
    ok, tahoe = tahoe_dirnode.ask(op="pack", children=[[name, rw, ro, metadata]], writekey=writekey,
                                  deep_immutable=immutable)
    mine = shoal_pack([(name, rw, ro, metadata)], None if immutable else WRITEKEY, immutable)
    if tahoe_answer([(name,)], ok) is None:
        assert not mine[0]
        return
    assert mine == (ok, tahoe)


def shoal_list(data, writekey, mutable):
    try:
        entries = Contents(data, writekey=writekey, mutable=mutable).entries()
    except CorruptDirectoryError:
        return False, "error"
    return True, [[e.name, e.rw_cap, e.ro_cap, e.metadata] for e in entries.values()]


@settings(max_examples=120)
@given(children=children_lists, mode=st.sampled_from(["rw", "ro", "imm"]))
def test_list_as_tahoe(tahoe_dirnode, children, mode):
    """Listing what Tahoe packed: same names, caps and metadata, same children left out."""
    immutable = mode == "imm"
    ok, packed = tahoe_dirnode.ask(op="pack", children=[list(c) for c in children],
                                   writekey=None if immutable else WRITEKEY.hex(), deep_immutable=immutable)
    if not ok:
        return
    data = bytes.fromhex(packed)
    if mode == "imm":
        dircap = LiteralDirectoryCap.from_string("URI:DIR2-LIT:").to_string()
        writekey = None
    elif mode == "ro":
        dircap, writekey = DIR_RW.readonly().to_string(), None
    else:
        dircap, writekey = DIR_RW.to_string(), WRITEKEY
    tahoe = tahoe_dirnode.ask(op="unpack", dircap=dircap, data=data.hex())
    mine = shoal_list(data, writekey, not immutable)
    if not tahoe[0]:
        assert not mine[0]
    else:
        assert mine == tahoe


@settings(max_examples=50)
@given(children=children_lists)
def test_list_what_tahoe_wrote_with_a_foreign_writekey(tahoe_dirnode, children):
    """Read-only listing never needs the writekey; names come back NFC."""
    ok, packed = tahoe_dirnode.ask(op="pack", children=[list(c) for c in children],
                                   writekey=os.urandom(16).hex(), deep_immutable=False)
    if not ok:
        return
    listed = shoal_list(bytes.fromhex(packed), None, True)
    assert listed[0]
    assert all(normalize_name(name) == name for name, *_ in listed[1])
