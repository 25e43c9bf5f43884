"""Nodes from caps, and new directories (Tahoe-LAFS 1.20's ``NodeMaker``).

A new mutable directory's children are packed before the file exists, so their
write caps need the directory's writekey first: when there are children the
RSA key is made here (in the CPU pool) and handed to the mutable file's
creation. An immutable directory is packed without a writekey, every child
deep-immutable, and uploaded as an immutable file with the node's convergence
secret: 55 bytes or fewer become ``URI:DIR2-LIT:``, anything larger ``URI:DIR2-CHK:``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from shoal import cpu
from shoal.caps import (
    CHKCap,
    CHKDirectoryCap,
    CHKVerifierCap,
    DirectoryReadCap,
    DirectoryWriteCap,
    LiteralCap,
    LiteralDirectoryCap,
    MDMFDirectoryReadCap,
    MDMFDirectoryWriteCap,
    parse_cap,
    wrap_directory,
    writekey_and_fingerprint,
)
from shoal.caps.base import CapBase
from shoal.caps.parse import Cap
from shoal.crypto import rsa
from shoal.dirnode.children import Child, Entry
from shoal.dirnode.contents import pack_new_directory
from shoal.dirnode.nodes import (
    ChildSpec,
    DirectoryNode,
    ImmutableFile,
    ImmutableFiles,
    MutableFile,
    UnknownNode,
    resolve_spec,
)
from shoal.formats.dirnode import normalize_name

FORMATS = ("SDMF", "MDMF")


class MutableFiles(Protocol):
    """What directories need of shoal.mutable.MutableClient."""

    async def create(self, contents: bytes = b"", *, format: str = "SDMF",
                     private_key: rsa.PrivateKey | None = None) -> Any: ...
    def node_for(self, cap: Any) -> Any: ...


Node = DirectoryNode | ImmutableFile | UnknownNode | MutableFile


def _format(format: str) -> str:
    upper = format.upper() if isinstance(format, str) else ""
    if upper not in FORMATS:
        raise ValueError(f"a mutable directory's format is SDMF or MDMF, not {format!r}")
    return upper


class NodeMaker:
    """Built once per client from its immutable file service and mutable client."""

    def __init__(self, files: ImmutableFiles, mutable: MutableFiles, *,
                 clock: Callable[[], float] = time.time) -> None:
        """`clock` gives the link timestamps (seconds since the epoch, as a float)."""
        self.files = files
        self.mutable = mutable
        self.clock = clock

    def node_for(self, cap: Cap | str) -> Node:
        """The node for a cap (no network). Directory write and read caps give a
        DirectoryNode, CHK/LIT (and CHK verify) caps an ImmutableFile, mutable file
        caps (verify caps too) the mutable client's node; directory verify caps and
        unknown caps an UnknownNode (use ``cap.file_cap`` to check a directory)."""
        if isinstance(cap, str):
            cap = parse_cap(cap)
        if isinstance(cap, (LiteralCap, CHKCap, CHKVerifierCap)):
            return ImmutableFile(self.files, cap)
        if isinstance(cap, CapBase) and cap.is_mutable_file:
            node: MutableFile = self.mutable.node_for(cap)
            return node
        if isinstance(cap, (DirectoryWriteCap, DirectoryReadCap, MDMFDirectoryWriteCap, MDMFDirectoryReadCap)):
            return DirectoryNode(self, cap, self.mutable.node_for(cap.file_cap))
        if isinstance(cap, (CHKDirectoryCap, LiteralDirectoryCap)):
            return DirectoryNode(self, cap, ImmutableFile(self.files, cap.file_cap))
        return UnknownNode(cap)

    def node_for_entry(self, entry: Entry) -> Node:
        """The node of a listed child (its write cap if it has one, else its read cap)."""
        cap = entry.cap
        if cap is None:
            return UnknownNode(parse_cap(""))
        return self.node_for(cap)

    @staticmethod
    def _children(children: Mapping[str, ChildSpec] | None) -> dict[str, tuple[Child, Mapping[str, Any]]]:
        latest = {normalize_name(name): (name, spec) for name, spec in (children or {}).items()}
        out: dict[str, tuple[Child, Mapping[str, Any]]] = {}
        for name, spec in latest.values():  # of names equal once normalised, the last wins
            child, metadata = resolve_spec(name, spec)
            out[name] = (child, {} if metadata is None else metadata)
        return out

    async def create_directory(self, children: Mapping[str, ChildSpec] | None = None, *,
                               format: str = "SDMF", private_key: rsa.PrivateKey | None = None) -> DirectoryNode:
        """A new mutable directory holding `children` (their metadata as given)."""
        fmt = _format(format)
        resolved = self._children(children)
        if resolved:
            key = private_key if private_key is not None else await cpu.run(rsa.generate_private_key)
            writekey, _ = writekey_and_fingerprint(key)
            packed = pack_new_directory(resolved, writekey=writekey, mutable=True)
            file = await self.mutable.create(packed, format=fmt, private_key=key)
        else:
            file = await self.mutable.create(b"", format=fmt, private_key=private_key)
        cap = wrap_directory(file.cap)
        assert isinstance(cap, (DirectoryWriteCap, MDMFDirectoryWriteCap))
        return DirectoryNode(self, cap, file)

    async def create_immutable_directory(self, children: Mapping[str, ChildSpec]) -> DirectoryNode:
        """A new immutable directory; MustBeImmutableError names a child that may change."""
        packed = pack_new_directory(self._children(children), writekey=None, mutable=False)
        result = await self.files.upload(io.BytesIO(packed), len(packed))
        file_cap = parse_cap(result.cap)
        assert isinstance(file_cap, (CHKCap, LiteralCap))
        cap = wrap_directory(file_cap)
        assert isinstance(cap, (CHKDirectoryCap, LiteralDirectoryCap))
        return DirectoryNode(self, cap, ImmutableFile(self.files, file_cap))
