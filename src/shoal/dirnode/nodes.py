"""Directory nodes over the grid (Tahoe-LAFS 1.20's ``DirectoryNode``); the other
nodes are shoal.dirnode.filenodes and shoal.mutable.filenode.

A mutable directory (DIR2 over SDMF, DIR2-MDMF over MDMF) is read with the
mutable file's ``download_best_version`` and changed only through its
``modify``: each edit re-reads the current version and applies itself to it,
so a writer that loses a race retries on the winner's version and no other
writer's change is lost. An immutable directory (DIR2-CHK, DIR2-LIT) is an
immutable file; its node refuses every edit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from shoal import cpu
from shoal.caps import (
    CHKDirectoryCap,
    DirectoryReadCap,
    DirectoryWriteCap,
    LiteralDirectoryCap,
    MDMFDirectoryReadCap,
    MDMFDirectoryWriteCap,
)
from shoal.dirnode.children import Child, Entry, resolve_child
from shoal.dirnode.contents import (
    Contents,
    Overwrite,
    add_children,
    check_overwrite,
    remove_child,
    set_metadata,
)
from shoal.dirnode.errors import NoSuchChildError, NotDirectoryError, ReadOnlyDirectoryError
from shoal.dirnode.filenodes import ImmutableFileNode
from shoal.formats.dirnode import normalize_name

if TYPE_CHECKING:
    from shoal.dirnode.maker import Node, NodeMaker

MutableDirectoryCap = DirectoryWriteCap | DirectoryReadCap | MDMFDirectoryWriteCap | MDMFDirectoryReadCap
ImmutableDirectoryCap = CHKDirectoryCap | LiteralDirectoryCap
ReadableDirectoryCap = MutableDirectoryCap | ImmutableDirectoryCap
ChildSpec = str | Entry | tuple[str | None, str | None] | tuple[str | None, str | None, Mapping[str, Any] | None]
"""A child to link: a cap (as Tahoe's ``PUT /uri/$DIRCAP/name?t=uri``: a write cap,
or a read cap, or an unknown cap carrying ``ro.``/``imm.``), an Entry of a
listing, or (write cap, read cap[, metadata]) as in ``t=set-children``."""

_OFF_REACTOR = 64 * 1024  # decode directories larger than this in the CPU pool


class MutableFile(Protocol):
    """What a directory needs of a mutable file (shoal.mutable.MutableFileNode)."""

    cap: Any

    def is_readonly(self) -> bool: ...
    async def download_best_version(self) -> bytes: ...
    async def get_current_size(self) -> int: ...
    async def edit(self, edit: Callable[[bytes, bool], bytes | None]) -> None: ...


def _spec(name: str, spec: ChildSpec) -> tuple[str | None, str | None, Mapping[str, Any] | None]:
    if isinstance(spec, str):
        return spec, None, None
    if isinstance(spec, Entry):
        return spec.rw_cap, spec.ro_cap, spec.metadata
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        return spec[0], spec[1], spec[2] if len(spec) == 3 else None  # type: ignore[misc]
    raise TypeError(f"child {name!r}: a cap str, an Entry or (rw, ro[, metadata]), not {type(spec).__name__}")


def resolve_spec(name: str, spec: ChildSpec, *, deep_immutable: bool = False) -> tuple[Child, Mapping[str, Any] | None]:
    """The child and the metadata (None: not given) a ChildSpec describes."""
    write, read, metadata = _spec(name, spec)
    return resolve_child(write, read, deep_immutable=deep_immutable, name=name), metadata


class DirectoryNode:
    """A directory of any family. Read operations work on every one; edits need a
    mutable directory held through its write cap (else ReadOnlyDirectoryError)."""

    kind: ClassVar[str] = "directory"

    def __init__(self, maker: NodeMaker, cap: ReadableDirectoryCap, file: MutableFile | ImmutableFileNode) -> None:
        self._maker = maker
        self.cap = cap
        self._file = file
        file_cap = cap.file_cap
        self._writekey: bytes | None = getattr(file_cap, "writekey", None)

    # --- identity ------------------------------------------------------------------

    @property
    def readonly_cap(self) -> ReadableDirectoryCap:
        return self.cap.readonly()

    @property
    def verifier_cap(self) -> Any:
        return self.cap.verifier()

    @property
    def storage_index(self) -> bytes | None:
        return self.cap.storage_index

    @property
    def format(self) -> str:
        """The format of the file holding the entries: SDMF, MDMF, CHK or LIT."""
        return self.cap.format

    @property
    def file(self) -> MutableFile | ImmutableFileNode:
        """The file holding the packed entries (for the checker)."""
        return self._file

    def is_readonly(self) -> bool:
        return self.cap.is_readonly

    def is_mutable(self) -> bool:
        return self.cap.is_mutable

    def __repr__(self) -> str:
        return f"<DirectoryNode {self.cap!r}>"

    # --- reading -------------------------------------------------------------------

    async def _data(self) -> bytes:
        if isinstance(self._file, ImmutableFileNode):
            return await self._file.download()
        return await self._file.download_best_version()

    def _contents(self, data: bytes) -> Contents:
        return Contents(data, writekey=self._writekey, mutable=self.is_mutable())

    async def list(self) -> dict[str, Entry]:
        """Every child, by NFC name, in name order."""
        data = await self._data()
        if len(data) > _OFF_REACTOR:
            result: dict[str, Entry] = await cpu.run(lambda: self._contents(data).entries())
            return result
        return self._contents(data).entries()

    async def list_nodes(self) -> dict[str, tuple[Node, Entry]]:
        """Every child as (its node, its entry), by NFC name, in name order."""
        return {name: (self._maker.node_for_entry(entry), entry) for name, entry in (await self.list()).items()}

    async def get(self, name: str) -> Entry:
        name = normalize_name(name)
        entry = self._contents(await self._data()).entry(name)
        if entry is None:
            raise NoSuchChildError(name)
        return entry

    async def get_at_path(self, path: Sequence[str]) -> Entry | None:
        """The entry at a path of names below this directory (None for the empty
        path: this directory itself). NotDirectoryError if the path crosses a file."""
        if isinstance(path, str):
            raise TypeError("path is a sequence of names, not a str")
        node: DirectoryNode = self
        entry: Entry | None = None
        for depth, name in enumerate(path):
            if entry is not None:
                child = self._maker.node_for_entry(entry)
                if not isinstance(child, DirectoryNode):
                    raise NotDirectoryError("/".join(path[:depth]))
                node = child
            try:
                entry = await node.get(name)
            except NoSuchChildError:
                raise NoSuchChildError(name, "/".join(path[:depth]) or "the directory") from None
        return entry

    # --- editing -------------------------------------------------------------------

    def _writable(self) -> MutableFile:
        if self.is_readonly() or isinstance(self._file, ImmutableFileNode):
            raise ReadOnlyDirectoryError(f"{self.cap!r} is read-only: it cannot be changed")
        return self._file

    async def _modify(self, edit: Callable[[Contents, bool], bytes | None]) -> None:
        """Apply `edit(contents, retry)` to the current version, as often as the
        mutable file needs (after an uncoordinated write it calls us again, with
        retry true: our earlier attempt may have landed)."""
        file = self._writable()
        await file.edit(lambda old, retry: edit(self._contents(old), retry))

    async def set_child(self, name: str, cap: str, *, metadata: Mapping[str, Any] | None = None,
                        overwrite: Overwrite = True) -> None:
        """Link `cap` at `name` (a write cap, a read cap, or an unknown cap with an
        ``ro.``/``imm.`` prefix). Metadata None keeps an existing link's."""
        await self.set_children({name: (cap, None, metadata)}, overwrite=overwrite)

    async def set_children(self, entries: Mapping[str, ChildSpec], *, overwrite: Overwrite = True) -> None:
        """Link several children in one write (Tahoe's ``t=set-children``)."""
        overwrite = check_overwrite(overwrite)
        self._writable()
        additions = {name: resolve_spec(name, spec) for name, spec in entries.items()}
        await self._modify(lambda contents, retry: add_children(
            contents, additions, overwrite=overwrite, now=self._maker.clock(), retry=retry))

    async def set_metadata(self, name: str, metadata: Mapping[str, Any]) -> None:
        """Replace a link's metadata (its ``tahoe`` timestamps are kept and touched)."""
        self._writable()
        await self._modify(lambda contents, retry: set_metadata(contents, name, metadata, now=self._maker.clock()))

    async def unlink(self, name: str) -> Entry:
        """Remove the link at `name`; returns what it held."""
        self._writable()
        removed: list[Entry | None] = [None]

        def edit(contents: Contents, retry: bool) -> bytes | None:
            new, entry = remove_child(contents, name, must_exist=not retry)
            if entry is not None or not retry:
                removed[0] = entry
            return new

        await self._modify(edit)
        assert removed[0] is not None
        return removed[0]

    async def move_child_to(self, name: str, new_parent: DirectoryNode, new_name: str | None = None, *,
                            overwrite: Overwrite = True) -> None:
        """Rename (same directory: one atomic write) or relink into `new_parent`
        (link there first, then unlink here, as Tahoe). The link keeps its user
        metadata; its ``tahoe`` timestamps are those of a new link."""
        overwrite = check_overwrite(overwrite)
        self._writable()
        new_parent._writable()
        name = normalize_name(name)
        target = name if new_name is None else normalize_name(new_name)
        same_dir = new_parent.cap == self.cap
        if same_dir and target == name:
            return
        if not same_dir:
            entry = await self.get(name)
            child, metadata = resolve_spec(target, entry)
            await new_parent._modify(lambda contents, retry: add_children(
                contents, {target: (child, metadata)}, overwrite=overwrite, now=self._maker.clock(), retry=retry))
            await self.unlink(name)
            return

        def rename(contents: Contents, retry: bool) -> bytes | None:
            found = contents.child(name)
            if found is None:
                if retry and contents.child(target) is not None:
                    return None  # an earlier attempt landed
                raise NoSuchChildError(name)
            child, metadata = found
            added = add_children(contents, {target: (child, metadata)}, overwrite=overwrite, now=self._maker.clock())
            assert added is not None
            return remove_child(self._contents(added), name, must_exist=True)[0]

        await self._modify(rename)

    async def create_subdirectory(self, name: str, children: Mapping[str, ChildSpec] | None = None, *,
                                  overwrite: Overwrite = True, format: str = "SDMF",
                                  metadata: Mapping[str, Any] | None = None,
                                  private_key: Any = None) -> DirectoryNode:
        """Make a new mutable directory (with `children`) and link it at `name`."""
        overwrite = check_overwrite(overwrite)
        self._writable()
        node = await self._maker.create_directory(children, format=format, private_key=private_key)
        child = resolve_child(node.cap.to_string(), None, name=name)
        await self._modify(lambda contents, retry: add_children(
            contents, {name: (child, metadata)}, overwrite=overwrite, now=self._maker.clock(), retry=retry))
        return node

