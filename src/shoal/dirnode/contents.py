"""One version of a directory's contents, and the edits Tahoe-LAFS 1.20 makes to it
(its dirnode ``Adder``, ``Deleter`` and ``MetadataSetter``), as pure code.

Decoding is lazy: splitting the contents reads only names and field bounds; a
child's caps (an AES decryption) and metadata (JSON) are decoded when asked for.
An edit decodes only the children it touches and writes every other entry back
from its original bytes, as Tahoe does with its cached entries, so adding one
child to a directory of 10,000 costs one entry's encryption.

Reading follows Tahoe: a child whose caps break its directory's constraints (a
write cap in a read-only slot, a mutable child of an immutable directory) is
left out of listings; a child whose read cap is malformed makes the whole
listing fail (CorruptDirectoryError naming the entry). Where Tahoe would drop
such children when it rewrites the directory, shoal keeps their bytes: an edit
never loses an entry it was not asked to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from shoal.dirnode.children import (
    Child,
    Entry,
    readonly_child,
    resolve_child,
    update_metadata,
)
from shoal.dirnode.errors import (
    BadChildCapError,
    BadMetadataError,
    ChildCapError,
    ChildNameError,
    CorruptDirectoryError,
    ExistingChildError,
    MustBeImmutableError,
    NoSuchChildError,
)
from shoal.formats.dirnode import (
    DirectoryFormatError,
    PackedEntry,
    child_name_problem,
    encode_name,
    join_entries,
    normalize_name,
    pack_entry,
    split_entries,
)

Overwrite = bool | Literal["only-files"]
ONLY_FILES: Literal["only-files"] = "only-files"


def check_overwrite(overwrite: object) -> Overwrite:
    if overwrite is True or overwrite is False or overwrite == ONLY_FILES:
        return overwrite  # type: ignore[return-value]
    raise ValueError(f"overwrite must be True, False or {ONLY_FILES!r}, not {overwrite!r}")


def _text(raw: bytes | None, entry: PackedEntry, what: str) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptDirectoryError(
            f"malformed directory: entry {entry.index} ({entry.name!r}): {what} is not UTF-8 text"
        ) from None


class Contents:
    """The parsed contents of one version of a directory.

    `writekey` is the directory's (None when read-only or immutable): with it
    write caps are decrypted and written. `mutable` False is an immutable
    directory (deep-immutable children, empty write slots).
    """

    def __init__(self, data: bytes, *, writekey: bytes | None, mutable: bool) -> None:
        self.writekey = writekey
        self.mutable = mutable
        try:
            self.packed = split_entries(data, mutable=mutable)
        except DirectoryFormatError as e:
            raise CorruptDirectoryError(str(e)) from None

    def __len__(self) -> int:
        return len(self.packed)

    def child(self, name: str) -> tuple[Child, dict[str, Any]] | None:
        """The child at NFC `name` and its metadata; None if absent or if Tahoe would
        leave it out (caps that break the directory's constraints)."""
        entry = self.packed.get(name)
        if entry is None:
            return None
        read = _text(entry.read_cap(), entry, "read cap")
        write = None
        if self.writekey is not None and self.mutable:
            write = _text(entry.write_cap(self.writekey), entry, "decrypted write cap")
        try:
            child = resolve_child(write, read, deep_immutable=not self.mutable, name=name)
        except BadChildCapError as e:
            raise CorruptDirectoryError(f"malformed directory: entry {entry.index} ({name!r}): {e.problem}") from None
        except ChildCapError:
            return None  # Tahoe logs and skips a child that breaks a constraint
        if not self.mutable and not child.allowed_in_immutable_directory():
            return None
        try:
            metadata = entry.metadata()
        except DirectoryFormatError as e:
            raise CorruptDirectoryError(str(e)) from None
        return child, metadata

    def entry(self, name: str) -> Entry | None:
        found = self.child(name)
        if found is None:
            return None
        child, metadata = found
        return Entry(name, child.write, child.read, metadata)

    def entries(self) -> dict[str, Entry]:
        """Every child Tahoe would list, by name, in name order."""
        out: dict[str, Entry] = {}
        for name in sorted(self.packed):
            entry = self.entry(name)
            if entry is not None:
                out[name] = entry
        return out

    def pack_child(self, name: str, child: Child, metadata: Mapping[str, Any]) -> bytes:
        """One entry's bytes in this directory."""
        if not self.mutable and not child.allowed_in_immutable_directory():
            raise MustBeImmutableError(name, "is not allowed in an immutable directory")
        try:
            encode_name(name)
        except ValueError as e:
            raise ChildNameError(str(e)) from None
        if not isinstance(metadata, Mapping):
            raise BadMetadataError(name, f"metadata is a {type(metadata).__name__}, not a dict")
        try:
            return pack_entry(
                name,
                child.write.encode("utf-8") if child.write else None,
                child.read.encode("utf-8") if child.read else None,
                metadata,
                writekey=self.writekey if self.mutable else None,
                deep_immutable=not self.mutable,
            )
        except (TypeError, ValueError, RecursionError) as e:
            raise BadMetadataError(name, f"metadata is not JSON-serialisable: {e}") from None

    def rewrite(self, changes: Mapping[str, bytes | None]) -> bytes:
        """New contents: `changes` maps NFC names to a new entry's bytes or None (remove);
        every other entry is written back from its original bytes."""
        entries = {name: packed.packed for name, packed in self.packed.items()}
        for name, packed in changes.items():
            if packed is None:
                entries.pop(name, None)
            else:
                entries[name] = packed
        return join_entries(entries)


# --- edits (each returns new contents, or None for "no change") ----------------------


def check_new_name(raw_name: str) -> str:
    """The NFC form of a name a child is about to be linked under; ChildNameError when
    it is not one path component (see formats.dirnode.child_name_problem). Existing
    entries with such names (Tahoe allows them) can still be read, re-tagged and unlinked."""
    name = normalize_name(raw_name)
    problem = child_name_problem(name)
    if problem is not None:
        raise ChildNameError(f"bad child name: {problem}")
    return name


def add_children(
    contents: Contents,
    additions: Mapping[str, tuple[Child, Mapping[str, Any] | None]],
    *,
    overwrite: Overwrite,
    now: float,
    retry: bool = False,
) -> bytes | None:
    """Tahoe's Adder: link each child under its (normalised) name. An existing link
    keeps its metadata's ``tahoe`` dict and is refused unless `overwrite` allows it
    (``"only-files"``: not over a directory). Given metadata replaces the rest;
    a truthy ``no-write`` makes the link read-only.

    `retry` (a later attempt of the same edit after an uncoordinated write): an
    existing link that already holds exactly the child being added is not an
    ExistingChildError (our earlier attempt may have landed).
    """
    changes: dict[str, bytes | None] = {}
    current: dict[str, tuple[Child, dict[str, Any]] | None] = {}
    names = {raw_name: check_new_name(raw_name) for raw_name in additions}  # every name, before any edit
    for raw_name, (child, new_metadata) in additions.items():
        name = names[raw_name]
        old = current[name] if name in current else contents.child(name)
        old_metadata = None
        if old is not None:
            old_child, old_md = old
            if retry and old_child == child and overwrite is not True:
                continue
            if overwrite is False:
                raise ExistingChildError(name)
            if overwrite == ONLY_FILES and old_child.is_directory:
                raise ExistingChildError(name, "already exists as a directory")
            old_metadata = old_md
        metadata = update_metadata(old_metadata, new_metadata, now)
        if metadata.get("no-write", False):
            child = readonly_child(child, deep_immutable=not contents.mutable, name=name)
        current[name] = (child, metadata)
        changes[name] = contents.pack_child(name, child, metadata)
    return contents.rewrite(changes) if changes else None


def remove_child(contents: Contents, name: str, *, must_exist: bool) -> tuple[bytes | None, Entry | None]:
    """Tahoe's Deleter: (new contents or None, the entry removed or None).

    An entry that cannot be decoded is still removed (that is how one repairs a
    directory); it is then reported with no caps and no metadata.
    """
    name = normalize_name(name)
    if name not in contents.packed:
        if must_exist:
            raise NoSuchChildError(name)
        return None, None
    try:
        removed = contents.entry(name) or Entry(name, None, None, {})
    except CorruptDirectoryError:
        removed = Entry(name, None, None, {})
    return contents.rewrite({name: None}), removed


def set_metadata(contents: Contents, name: str, metadata: Mapping[str, Any], *, now: float) -> bytes:
    """Tahoe's MetadataSetter: replace a link's metadata (its ``tahoe`` dict kept)."""
    name = normalize_name(name)
    found = contents.child(name)
    if found is None:
        raise NoSuchChildError(name)
    child, old = found
    new = update_metadata(old, metadata, now)
    if new.get("no-write", False):
        child = readonly_child(child, deep_immutable=not contents.mutable, name=name)
    return contents.rewrite({name: contents.pack_child(name, child, new)})


def pack_new_directory(
    children: Mapping[str, tuple[Child, Mapping[str, Any]]], *, writekey: bytes | None, mutable: bool
) -> bytes:
    """Contents of a new directory: metadata exactly as given (no timestamps, as
    Tahoe's ``pack_children``); an immutable one refuses children that may change."""
    empty = Contents(b"", writekey=writekey, mutable=mutable)
    packed: dict[str, bytes] = {}
    for raw_name, (child, metadata) in children.items():
        name = check_new_name(raw_name)
        packed[name] = empty.pack_child(name, child, metadata)
    return join_entries(packed)
