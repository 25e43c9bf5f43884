"""The bytes of a Tahoe-LAFS 1.20 directory: packed entries (docs/specifications/dirnodes.rst,
corrected where Tahoe's code is the real spec).

A directory's file holds one netstring per child, sorted by NFC name (code point
order), each wrapping four netstrings::

    netstring(name as UTF-8) || netstring(read-only slot) || netstring(write slot)
                             || netstring(metadata as JSON)

* The read-only slot holds the child's read cap with an ``ro.`` prefix removed
  (in an immutable directory an ``imm.`` prefix too); empty if there is none.
* The write slot, in a directory written with a write key, is the encrypted
  child write cap (empty text when the child has none, so always >= 48 bytes)::

      salt = tagged hash of the child write cap (16 bytes, *derived*, not random)
      key  = tagged hash of (salt, directory writekey)
      salt || AES-128-CTR(key, write cap) || MAC(key, salt || crypttext) (32 bytes)

  The MAC is Tahoe's unpadded HMAC-like construction; readers never check it.
  An immutable directory is packed without a write key: every write slot empty.
* The metadata is ``json.dumps(metadata)`` with Python's defaults (``", "`` and
  ``": "`` separators, ASCII escapes, dict order as given): byte identity needs them.

Readers strip trailing spaces from both caps (Tahoe >= 1.6 reserves them as
padding) and NFC-normalise names. Tahoe repacks an unchanged entry from its
original bytes, so foreign spellings survive a rewrite; `PackedEntry.packed`
keeps them for the same purpose.

This module only knows bytes. Which caps a slot may hold, and what a child
becomes when it does not fit (Tahoe's UnknownNode rules), is shoal.dirnode.children.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from shoal.crypto.aes import aes_ctr
from shoal.crypto.hashes import dirnode_child_key_hash, dirnode_child_mac, dirnode_child_salt_hash
from shoal.encoding import bounded_json
from shoal.encoding.netstring import netstring, split_netstring
from shoal.errors import EncodingError
from shoal.formats.errors import FormatError

SALT_LENGTH = 16
MAC_LENGTH = 32
MIN_WRITE_SLOT = SALT_LENGTH + MAC_LENGTH  # an encrypted empty write cap
_EMPTY_NETSTRING = netstring(b"")


class DirectoryFormatError(FormatError):
    """Directory contents that do not parse; says which entry (index and, once known, name)."""

    def __init__(self, problem: str, index: int | None = None, name: str | None = None) -> None:
        self.problem = problem
        self.index = index
        self.name = name
        where = ""
        if index is not None:
            where = f"entry {index}" + (f" ({name!r})" if name is not None else "") + ": "
        super().__init__(f"malformed directory: {where}{problem}")


def normalize_name(name: str) -> str:
    """NFC, as Tahoe normalises names going into and out of a directory."""
    if not isinstance(name, str):
        raise TypeError(f"a child name is str, not {type(name).__name__}")
    return unicodedata.normalize("NFC", name)


# shoal's rule for names entering a directory (Tahoe 1.20 has none): one path
# component, so no tool that turns names into local paths can be led out of
# its destination. Directories already holding other names stay readable.
MAX_NAME_BYTES = 1024


def child_name_problem(name: str) -> str | None:
    """Why `name` (NFC) cannot be a new child's name or a local path component, or None."""
    if name in ("", ".", ".."):
        return f"{name!r} is not a name" if name else "a name cannot be empty"
    if "/" in name:
        return f"{name!r} holds a '/'"
    if "\x00" in name:
        return f"{name!r} holds a NUL character"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"a name of {size} UTF-8 bytes is longer than {MAX_NAME_BYTES}"
    return None


def encode_name(name: str) -> bytes:
    """The UTF-8 of an NFC name; ValueError for text UTF-8 cannot hold (lone surrogates)."""
    try:
        return normalize_name(name).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"child name {name!r} has a character UTF-8 cannot encode at {e.start}") from None


def dumps_metadata(metadata: Mapping[str, Any]) -> bytes:
    """Metadata JSON exactly as Tahoe writes it (``json.dumps`` defaults, UTF-8)."""
    return json.dumps(metadata).encode("utf-8")


def encrypt_write_cap(writekey: bytes, write_cap: bytes) -> bytes:
    """The write slot for `write_cap` (b"" for none) in a directory with this writekey."""
    salt = dirnode_child_salt_hash(write_cap)
    key = dirnode_child_key_hash(salt, writekey)
    crypttext = aes_ctr(key, write_cap)
    return salt + crypttext + dirnode_child_mac(key, salt + crypttext)


def decrypt_write_slot(writekey: bytes, slot: bytes) -> bytes:
    """The write cap in a write slot (b"" if the slot is empty or holds none). The MAC
    is not checked, as in Tahoe: a wrong writekey gives garbage, not an error."""
    if len(slot) <= MIN_WRITE_SLOT:
        return b""  # empty, or an encrypted empty cap: nothing to decrypt
    salt, crypttext = slot[:SALT_LENGTH], slot[SALT_LENGTH:-MAC_LENGTH]
    return aes_ctr(dirnode_child_key_hash(salt, writekey), crypttext)


@attrs.frozen
class PackedEntry:
    """One entry split into its fields but not decoded (decoding costs AES and JSON;
    a rewrite that does not touch an entry reuses `packed`)."""

    index: int  # position in the directory, for error messages
    name: str  # NFC
    ro_slot: bytes
    write_slot: bytes
    metadata_json: bytes
    packed: bytes = attrs.field(repr=False)  # the entry (inside its outer netstring)

    def read_cap(self) -> bytes | None:
        """The read-only slot without padding; None if empty."""
        return self.ro_slot.rstrip(b" ") or None

    def write_cap(self, writekey: bytes) -> bytes | None:
        """The decrypted write cap without padding; None if there is none."""
        return decrypt_write_slot(writekey, self.write_slot).rstrip(b" ") or None

    def metadata(self) -> dict[str, Any]:
        try:
            # Tahoe reads any JSON Python can: bounds as wide as Python's own, but no RecursionError
            value = bounded_json.loads(self.metadata_json, max_depth=500, max_digits=4300)
        except bounded_json.BadJSONError as e:
            raise DirectoryFormatError(f"metadata is not JSON ({e})", self.index, self.name) from None
        if not isinstance(value, dict):
            raise DirectoryFormatError(
                f"metadata is JSON {type(value).__name__}, not an object", self.index, self.name
            )
        return value


def split_entries(data: bytes, *, mutable: bool) -> dict[str, PackedEntry]:
    """Split directory contents into entries by NFC name (a later duplicate wins, as in
    Tahoe). `mutable` False (an immutable directory) requires every write slot empty.

    Raises DirectoryFormatError naming the entry for any malformed structure: bad
    netstrings, trailing bytes, a name that is not UTF-8, a write slot too short to
    hold salt and MAC.
    """
    if not isinstance(data, bytes):
        raise TypeError("directory contents are bytes")
    entries: dict[str, PackedEntry] = {}
    position = 0
    index = 0
    while position < len(data):
        try:
            (entry,), position = split_netstring(data, 1, position)
        except EncodingError as e:
            raise DirectoryFormatError(str(e), index) from None
        try:
            fields, end = split_netstring(entry, 4)
        except EncodingError as e:
            raise DirectoryFormatError(f"fields: {e}", index) from None
        name_utf8, ro_slot, write_slot, metadata_json = fields
        try:
            name = normalize_name(name_utf8.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DirectoryFormatError(f"name is not UTF-8 (byte {e.start})", index) from None
        if end != len(entry):
            raise DirectoryFormatError(f"{len(entry) - end} bytes after the four fields", index, name)
        if write_slot and not mutable:
            raise DirectoryFormatError("an immutable directory's entry has a write cap", index, name)
        if 0 < len(write_slot) < MIN_WRITE_SLOT:
            raise DirectoryFormatError(
                f"write slot of {len(write_slot)} bytes is shorter than salt and MAC ({MIN_WRITE_SLOT})",
                index, name,
            )
        entries[name] = PackedEntry(index, name, ro_slot, write_slot, metadata_json, entry)
        index += 1
    return entries


def strip_prefix_for_ro(ro_cap: bytes, deep_immutable: bool) -> bytes:
    """What a read-only slot stores: ``ro.`` is implied by the slot; ``imm.`` only
    by an immutable directory (in a mutable one it is a claim worth keeping)."""
    if ro_cap.startswith(b"imm."):
        return ro_cap[4:] if deep_immutable else ro_cap
    if ro_cap.startswith(b"ro."):
        return ro_cap[3:]
    return ro_cap


def pack_entry(
    name: str,
    write_cap: bytes | None,
    read_cap: bytes | None,
    metadata: Mapping[str, Any],
    *,
    writekey: bytes | None,
    deep_immutable: bool = False,
) -> bytes:
    """One entry (without its outer netstring). `writekey` None packs an empty write slot
    (an immutable directory); a write cap there is a caller's bug."""
    if writekey is None:
        if write_cap:
            raise ValueError(f"child {name!r}: a write cap cannot be stored without a writekey")
        write_field = _EMPTY_NETSTRING
    else:
        write_field = netstring(encrypt_write_cap(writekey, write_cap or b""))
    return b"".join((
        netstring(encode_name(name)),
        netstring(strip_prefix_for_ro(read_cap or b"", deep_immutable)),
        write_field,
        netstring(dumps_metadata(metadata)),
    ))


def join_entries(entries: Mapping[str, bytes]) -> bytes:
    """Directory contents from packed entries keyed by NFC name (sorted here)."""
    return b"".join(netstring(entries[name]) for name in sorted(entries))


def pack_children(
    children: Iterable[tuple[str, bytes | None, bytes | None, Mapping[str, Any]]],
    *,
    writekey: bytes | None,
    deep_immutable: bool = False,
) -> bytes:
    """Directory contents from (name, write cap, read cap, metadata); names are
    normalised, and a later duplicate after normalisation replaces an earlier one."""
    packed: dict[str, bytes] = {}
    for name, write_cap, read_cap, metadata in children:
        packed[normalize_name(name)] = pack_entry(
            name, write_cap, read_cap, metadata, writekey=writekey, deep_immutable=deep_immutable
        )
    return join_entries(packed)
