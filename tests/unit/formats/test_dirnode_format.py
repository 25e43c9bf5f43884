"""The packed bytes of directories (shoal.formats.dirnode): structure, the derived
write-cap salt, round trips, and malformed contents refused with an error naming
the entry (never an IndexError or a UnicodeError)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.crypto.hashes import dirnode_child_key_hash, dirnode_child_mac, dirnode_child_salt_hash
from shoal.dirnode import CorruptDirectoryError
from shoal.dirnode.contents import Contents
from shoal.encoding.netstring import netstring
from shoal.formats.dirnode import (
    DirectoryFormatError,
    decrypt_write_slot,
    encrypt_write_cap,
    join_entries,
    normalize_name,
    pack_children,
    pack_entry,
    split_entries,
)
from tests.unit.dirnode.dirnode_peer import metadata_dicts, names

# Hypothesis's own example cache compares bytes with str keys (BytesWarning under -b).
pytestmark = pytest.mark.filterwarnings("ignore::BytesWarning:hypothesis.*")


WRITEKEY = b"k" * 16
cap_bytes = st.one_of(st.none(), st.text(max_size=90).map(lambda t: t.encode("utf-8")))


def test_entry_layout_by_hand():
    """Four netstrings inside one; the write slot is salt || AES-CTR || MAC."""
    cap = b"URI:SSK:aaaa:bbbb"
    entry = pack_entry("b\u00e9", cap, b"ro.URI:SSK-RO:x:y", {"a": [1, 2]}, writekey=WRITEKEY)
    salt = dirnode_child_salt_hash(cap)
    key = dirnode_child_key_hash(salt, WRITEKEY)
    slot = encrypt_write_cap(WRITEKEY, cap)
    assert slot[:16] == salt and len(slot) == 16 + len(cap) + 32
    assert slot[-32:] == dirnode_child_mac(key, slot[:-32])
    assert entry == (netstring("b\u00e9".encode()) + netstring(b"URI:SSK-RO:x:y") + netstring(slot)
                     + netstring(b'{"a": [1, 2]}'))
    assert decrypt_write_slot(WRITEKEY, slot) == cap


def test_salt_is_derived_not_random():
    assert encrypt_write_cap(WRITEKEY, b"URI:X:1") == encrypt_write_cap(WRITEKEY, b"URI:X:1")
    assert len(encrypt_write_cap(WRITEKEY, b"")) == 48  # an empty write cap still has salt and MAC


def test_immutable_entries_and_prefixes():
    assert pack_entry("n", None, b"imm.URI:FUTURE:x", {}, writekey=None, deep_immutable=True) == (
        b"1:n,12:URI:FUTURE:x,0:,2:{},")
    assert pack_entry("n", None, b"imm.URI:FUTURE:x", {}, writekey=None)[4:24] == b"16:imm.URI:FUTURE:x,"
    with pytest.raises(ValueError, match="without a writekey"):
        pack_entry("n", b"URI:SSK:x", None, {}, writekey=None)


def test_metadata_json_spacing_and_escapes():
    entry = pack_entry("n", None, None, {"k": {"x": 1.5, "\u00e9": [True, None]}}, writekey=None)
    assert entry.endswith(netstring(b'{"k": {"x": 1.5, "\\u00e9": [true, null]}}'))


def test_names_sorted_by_normalised_code_points():
    data = pack_children([("b", None, None, {}), ("\u212b", None, None, {}), ("a", None, None, {}),
                          ("A\u030a", None, None, {})], writekey=None)
    assert list(split_entries(data, mutable=False)) == ["a", "b", "\u00c5"]  # both Angstroms are one


def test_surrogate_names_refused():
    with pytest.raises(ValueError, match="cannot encode"):
        pack_entry("\ud800", None, None, {}, writekey=None)


@settings(max_examples=150)
@given(children=st.lists(st.tuples(names, cap_bytes, cap_bytes, metadata_dicts), max_size=6),
       mutable=st.booleans())
def test_round_trip(children, mutable):
    writekey = WRITEKEY if mutable else None
    if not mutable:
        children = [(n, None, ro, md) for n, _rw, ro, md in children]
    data = pack_children(children, writekey=writekey)
    expected = {normalize_name(n): (rw, ro, md) for n, rw, ro, md in children}
    entries = split_entries(data, mutable=mutable)
    assert list(entries) == sorted(expected)
    for name, (rw, ro, md) in expected.items():
        got = entries[name]
        if ro is not None and ro.startswith(b"ro."):
            ro = ro[3:]  # implied by the slot; imm. is kept in a mutable directory
        assert got.read_cap() == ((ro or b"").rstrip(b" ") or None)
        if mutable:
            assert got.write_cap(WRITEKEY) == ((rw or b"").rstrip(b" ") or None)
        assert json.dumps(got.metadata()) == json.dumps(md)
    assert join_entries({n: e.packed for n, e in entries.items()}) == data


def _malformed_cases():
    good = pack_entry("ok", None, b"URI:LIT:", {}, writekey=None)
    return [
        (b"5:abc", "entry 0: netstring"),
        (netstring(good) + b"3:abc", "entry 1: netstring"),
        (netstring(b"1:n,0:,0:,"), "entry 0: fields"),
        (netstring(good + b"x"), "entry 0 ('ok'): 1 bytes after"),
        (netstring(b"1:\xff,0:,0:,2:{},"), "entry 0: name is not UTF-8"),
        (netstring(b"1:n,0:,3:abc,2:{},"), "entry 0 ('n'): write slot of 3 bytes"),
        (b"99999999999999999999999:", "entry 0: netstring"),
        (b"01:a,", "entry 0: netstring"),
    ]


@pytest.mark.parametrize("data, message", _malformed_cases())
def test_malformed_structure_names_the_entry(data, message):
    with pytest.raises(DirectoryFormatError) as e:
        split_entries(data, mutable=True)
    assert message in str(e.value)


def test_immutable_directory_with_a_write_slot_is_malformed():
    data = netstring(pack_entry("w", b"URI:SSK:x", None, {}, writekey=WRITEKEY))
    with pytest.raises(DirectoryFormatError, match="entry 0 \\('w'\\): an immutable directory's entry has a write cap"):
        split_entries(data, mutable=False)


@pytest.mark.parametrize("metadata, problem", [(b"[1]", "JSON list, not an object"), (b"{", "not JSON"),
                                               (b"\xff", "not JSON")])
def test_bad_metadata_names_the_entry(metadata, problem):
    data = netstring(b"1:m,8:URI:LIT:,0:," + netstring(metadata))
    (entry,) = split_entries(data, mutable=True).values()
    with pytest.raises(DirectoryFormatError, match=f"entry 0 \\('m'\\): metadata is {problem}"):
        entry.metadata()


@settings(max_examples=300)
@given(children=st.lists(st.tuples(names, cap_bytes, cap_bytes, metadata_dicts), max_size=4),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["flip", "cut", "insert", "delete"]),
                                st.binary(min_size=1, max_size=3)), min_size=1, max_size=4),
       mode=st.sampled_from([(WRITEKEY, True), (None, True), (None, False)]))
def test_damaged_contents_fail_only_with_a_directory_error(children, edits, mode):
    """Any damage: listing works or raises CorruptDirectoryError; nothing else escapes."""
    writekey, mutable = mode
    data = bytearray(pack_children(
        [(n, rw if mutable else None, ro, md) for n, rw, ro, md in children],
        writekey=WRITEKEY if mutable else None))
    for at, how, blob in edits:
        i = at % (len(data) + 1)
        if how == "flip" and i < len(data):
            data[i] ^= blob[0] or 1
        elif how == "cut":
            del data[i:]
        elif how == "insert":
            data[i:i] = blob
        else:
            del data[i:i + len(blob)]
    try:
        Contents(bytes(data), writekey=writekey, mutable=mutable).entries()
    except CorruptDirectoryError as e:
        assert "malformed directory: entry " in str(e)
