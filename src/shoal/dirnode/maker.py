"""Nodes from caps, and new directories (Tahoe-LAFS 1.20's ``NodeMaker``).

``node_for`` is the one place a cap's kind picks its node (the table is in
shoal.dirnode.filenodes): callers then ask the node, never the cap's class.
A directory's child becomes a node by the same table, except that what Tahoe
keeps as an unknown child (shoal.dirnode.children) is an UnknownNode.

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

from shoal.caps import (
    CHKCap,
    CHKDirectoryCap,
    DirectoryReadCap,
    DirectoryWriteCap,
    LiteralCap,
    LiteralDirectoryCap,
    MDMFDirectoryReadCap,
    MDMFDirectoryWriteCap,
    MDMFReadCap,
    MDMFWriteCap,
    SSKReadCap,
    SSKWriteCap,
    UnknownCap,
    parse_cap,
    wrap_directory,
    writekey_and_fingerprint,
)
from shoal.caps.parse import Cap
from shoal.crypto import rsa
from shoal.dirnode.children import NODE_KINDS, Child, Entry
from shoal.dirnode.contents import pack_new_directory
from shoal.dirnode.filenodes import ImmutableFileNode, ImmutableFiles, UnknownNode, VerifierNode
from shoal.dirnode.nodes import ChildSpec, DirectoryNode, resolve_spec
from shoal.formats.dirnode import normalize_name
from shoal.mutable.filenode import MutableFileNode
from shoal.mutable.keypool import KeyPool

FORMATS = ("SDMF", "MDMF")


class MutableFiles(Protocol):
    """What directories need of shoal.mutable.MutableClient."""

    async def create(self, contents: bytes = b"", *, format: str = "SDMF",
                     private_key: rsa.PrivateKey | None = None) -> Any: ...
    def node_for(self, cap: Any) -> Any: ...

    @property
    def key_pool(self) -> KeyPool: ...


Node = DirectoryNode | ImmutableFileNode | MutableFileNode | VerifierNode | UnknownNode
FileNode = ImmutableFileNode | MutableFileNode


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
        """The node for a cap (no network): see the module docstring."""
        if isinstance(cap, str):
            cap = parse_cap(cap)
        match cap:
            case UnknownCap():
                return UnknownNode(cap)
            case _ if cap.is_verifier:
                return VerifierNode(cap)
            case CHKCap() | LiteralCap():
                return ImmutableFileNode(self.files, cap)
            case SSKWriteCap() | SSKReadCap() | MDMFWriteCap() | MDMFReadCap():
                node: MutableFileNode = self.mutable.node_for(cap)
                return node
            case DirectoryWriteCap() | DirectoryReadCap() | MDMFDirectoryWriteCap() | MDMFDirectoryReadCap():
                return DirectoryNode(self, cap, self.mutable.node_for(cap.file_cap))
            case CHKDirectoryCap() | LiteralDirectoryCap():
                return DirectoryNode(self, cap, ImmutableFileNode(self.files, cap.file_cap))
        raise TypeError(f"no node for {cap!r}")

    def node_for_entry(self, entry: Entry) -> Node:
        """The node of a listed child (its write cap if it has one, else its read cap);
        an UnknownNode for what a directory keeps as an unknown child."""
        cap = entry.cap
        if cap is None or not isinstance(cap, NODE_KINDS):
            return UnknownNode(cap)
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
            key = private_key if private_key is not None else await self.mutable.key_pool.get()
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
        return DirectoryNode(self, cap, ImmutableFileNode(self.files, file_cap))
