"""One account's view of the grid: its root directory and the paths below it.

Every method is a coroutine run on the reactor thread (shoal.sftp.server, on
twisted.conch, awaits them). Paths arrive as tuples of names already checked by
shoal.sftp.paths, so nothing here can reach above the account's root. Errors are
SFTPFSError subclasses whose messages hold names, never caps.
"""

from collections.abc import Sequence
from typing import Any, BinaryIO

import attrs

from shoal.caps import CHKCap, LiteralCap
from shoal.dirnode import (
    DirectoryNode,
    DirnodeError,
    ExistingChildError,
    ImmutableFileNode,
    NodeMaker,
    NoSuchChildError,
    ReadOnlyDirectoryError,
)
from shoal.dirnode.children import Entry
from shoal.errors import CallerError, NotFoundError, NotWritableError
from shoal.formats.dirnode import normalize_name
from shoal.mutable.filenode import MutableFileNode

MAX_MUTABLE_SIZE = 16 * 1024 * 1024  # a mutable file is published from memory


class SFTPFSError(CallerError):
    pass


class NoSuchFile(SFTPFSError, NotFoundError):
    pass


class PermissionDenied(SFTPFSError, NotWritableError):
    pass


class Failure(SFTPFSError):
    pass


@attrs.frozen
class Attrs:
    is_dir: bool
    size: int
    mtime: int
    readonly: bool


def _mtime(metadata: dict[str, Any]) -> int:
    tahoe = metadata.get("tahoe") if isinstance(metadata, dict) else None
    for value in ((tahoe or {}).get("linkmotime"), metadata.get("mtime") if isinstance(metadata, dict) else None):
        if isinstance(value, (int, float)) and 0 <= value < 2**32:
            return int(value)
    return 0


def entry_attrs(entry: Entry) -> Attrs:
    """Attributes from a listing alone (no network): a mutable file's size is 0 here."""
    cap = entry.cap
    mtime = _mtime(entry.metadata)
    no_write = bool(entry.metadata.get("no-write", False))
    if entry.is_directory:
        return Attrs(True, 0, mtime, no_write or entry.rw_cap is None)
    size = cap.size if isinstance(cap, (CHKCap, LiteralCap)) else 0
    return Attrs(False, size, mtime, no_write or (entry.rw_cap is None and not isinstance(cap, (CHKCap, LiteralCap))))


def _where(names: Sequence[str]) -> str:
    return "/" + "/".join(names)


class AccountFS:
    def __init__(self, nodemaker: NodeMaker, files: Any, rootcap: str) -> None:
        self._maker = nodemaker
        self._files = files
        self._rootcap = rootcap

    def root(self) -> DirectoryNode:
        try:
            node = self._maker.node_for(self._rootcap)
        except Exception:
            raise Failure("the account's root is not a directory") from None
        if not isinstance(node, DirectoryNode):
            raise Failure("the account's root is not a directory")
        return node

    async def directory(self, names: Sequence[str]) -> DirectoryNode:
        node = self.root()
        for depth, name in enumerate(names):
            try:
                entry = await node.get(name)
            except NoSuchChildError:
                raise NoSuchFile(f"{_where(names[:depth + 1])}: no such directory") from None
            child = self._maker.node_for_entry(entry)
            if not isinstance(child, DirectoryNode):
                raise NoSuchFile(f"{_where(names[:depth + 1])}: not a directory")
            node = child
        return node

    async def direntry(self, names: Sequence[str]) -> str:
        """Which link `names` is, the same for every account that reaches it (Tahoe's
        direntry: the parent's cap and the name); kept in memory, never shown."""
        parent = await self.directory(names[:-1])
        return parent.cap.to_string() + "/" + normalize_name(names[-1])

    async def entry(self, names: Sequence[str]) -> Entry:
        parent = await self.directory(names[:-1])
        try:
            return await parent.get(names[-1])
        except NoSuchChildError:
            raise NoSuchFile(f"{_where(names)}: no such file") from None

    async def stat(self, names: Sequence[str]) -> Attrs:
        if not names:
            return Attrs(True, 0, 0, self.root().is_readonly())
        entry = await self.entry(names)
        attrs_ = entry_attrs(entry)
        if not attrs_.is_dir and not isinstance(entry.cap, (CHKCap, LiteralCap)):
            node = self._maker.node_for_entry(entry)
            if hasattr(node, "get_current_size"):
                attrs_ = attrs.evolve(attrs_, size=int(await node.get_current_size()))
        return attrs_

    async def listdir(self, names: Sequence[str]) -> list[tuple[str, Attrs]]:
        node = await self.directory(names)
        return [(name, entry_attrs(entry)) for name, entry in (await node.list()).items()]

    async def file_node(self, names: Sequence[str]) -> Any:
        """The readable file node at `names` (not a directory)."""
        if not names:
            raise Failure("/: is a directory")
        entry = await self.entry(names)
        if entry.is_directory:
            raise Failure(f"{_where(names)}: is a directory")
        node = self._maker.node_for_entry(entry)
        if not hasattr(node, "read"):
            raise PermissionDenied(f"{_where(names)}: not a readable file")
        return node

    async def read(self, node: Any, offset: int, length: int) -> bytes:
        if isinstance(node, ImmutableFileNode) and offset >= node.get_size():
            return b""
        parts: list[bytes] = []
        try:
            await node.read(parts.append, offset, length)
        except DirnodeError:
            raise Failure("read failed") from None
        return b"".join(parts)

    async def _writable(self, names: Sequence[str]) -> DirectoryNode:
        parent = await self.directory(names)
        if parent.is_readonly() or not parent.is_mutable():
            raise PermissionDenied(f"{_where(names)}: read-only directory")
        return parent

    async def upload(self, names: Sequence[str], source: BinaryIO, size: int) -> None:
        """Upload `size` bytes of `source` as an immutable file and link it at `names`."""
        if not names:
            raise Failure("/: is a directory")
        parent = await self._writable(names[:-1])
        try:
            existing = await parent.get(names[-1])
        except NoSuchChildError:
            existing = None
        if existing is not None and existing.is_directory:
            raise Failure(f"{_where(names)}: is a directory")
        if existing is not None and existing.metadata.get("no-write", False):
            raise PermissionDenied(f"{_where(names)}: the link is no-write")
        source.seek(0)
        node = self._maker.node_for_entry(existing) if existing is not None else None
        if isinstance(node, MutableFileNode) and not node.is_readonly():
            # as Tahoe: writing an existing mutable file publishes a new version of it
            if size > MAX_MUTABLE_SIZE:
                raise Failure(f"{_where(names)}: a mutable file here is at most {MAX_MUTABLE_SIZE} bytes")
            await node.overwrite(source.read(size))
            return
        result = await self._files.upload(source, size)
        try:
            await parent.set_child(names[-1], result.cap, overwrite=True)
        except ReadOnlyDirectoryError:
            raise PermissionDenied(f"{_where(names[:-1])}: read-only directory") from None

    async def mkdir(self, names: Sequence[str]) -> None:
        if not names:
            raise Failure("/: exists")
        parent = await self._writable(names[:-1])
        try:
            await parent.create_subdirectory(names[-1], overwrite=False)
        except ExistingChildError:
            raise Failure(f"{_where(names)}: exists") from None

    async def rmdir(self, names: Sequence[str]) -> None:
        if not names:
            raise PermissionDenied("/: the root cannot be removed")
        parent = await self._writable(names[:-1])
        entry = await self.entry(names)
        if not entry.is_directory:
            raise Failure(f"{_where(names)}: not a directory")
        child = self._maker.node_for_entry(entry)
        assert isinstance(child, DirectoryNode)
        if await child.list():
            raise Failure(f"{_where(names)}: directory not empty")
        await parent.unlink(names[-1])

    async def remove(self, names: Sequence[str]) -> None:
        if not names:
            raise PermissionDenied("/: the root cannot be removed")
        parent = await self._writable(names[:-1])
        entry = await self.entry(names)
        if entry.is_directory:
            raise Failure(f"{_where(names)}: is a directory (use rmdir)")
        await parent.unlink(names[-1])

    async def rename(self, old: Sequence[str], new: Sequence[str], *, overwrite: bool) -> None:
        if not old or not new:
            raise PermissionDenied("/: the root cannot be renamed")
        if tuple(old) == tuple(new):
            await self.entry(old)
            return
        if tuple(new[:len(old)]) == tuple(old) and len(new) > len(old):
            raise Failure(f"{_where(new)}: cannot move a directory into itself")
        source = await self._writable(old[:-1])
        target = await self._writable(new[:-1])
        await self.entry(old)  # NoSuchFile
        if not overwrite:
            try:
                await target.get(new[-1])
                raise Failure(f"{_where(new)}: exists")
            except NoSuchChildError:
                pass
        try:
            await source.move_child_to(old[-1], target, new[-1], overwrite=overwrite)
        except ExistingChildError:
            raise Failure(f"{_where(new)}: exists") from None
        except NoSuchChildError:
            raise NoSuchFile(f"{_where(old)}: no such file") from None
