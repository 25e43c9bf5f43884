"""Directories of Tahoe-LAFS 1.20: DIR2 (over SDMF), DIR2-MDMF, DIR2-CHK and DIR2-LIT.

``NodeMaker`` turns caps into typed nodes (shoal.dirnode.filenodes lists them) and
makes new directories; ``DirectoryNode`` lists, reads and edits one. The packed bytes are shoal.formats.dirnode; which
caps a child may hold is shoal.dirnode.children; edits are shoal.dirnode.contents.
"""

from shoal.dirnode.children import Child, Entry, update_metadata
from shoal.dirnode.contents import ONLY_FILES, Overwrite
from shoal.dirnode.errors import (
    BadChildCapError,
    BadMetadataError,
    ChildCapError,
    ChildNameError,
    CorruptDirectoryError,
    DirnodeError,
    ExistingChildError,
    MustBeImmutableError,
    MustBeReadonlyError,
    MustNotBeUnknownRWError,
    NoSuchChildError,
    NotDirectoryError,
    NotReadableError,
    ReadOnlyDirectoryError,
)
from shoal.dirnode.filenodes import ImmutableFileNode, ImmutableFiles, UnknownNode, VerifierNode
from shoal.dirnode.maker import FORMATS, FileNode, Node, NodeMaker
from shoal.dirnode.nodes import ChildSpec, DirectoryNode

__all__ = [
    "FORMATS",
    "ONLY_FILES",
    "BadChildCapError",
    "BadMetadataError",
    "Child",
    "ChildCapError",
    "ChildNameError",
    "ChildSpec",
    "CorruptDirectoryError",
    "DirectoryNode",
    "DirnodeError",
    "Entry",
    "ExistingChildError",
    "FileNode",
    "ImmutableFileNode",
    "ImmutableFiles",
    "MustBeImmutableError",
    "MustBeReadonlyError",
    "MustNotBeUnknownRWError",
    "NoSuchChildError",
    "Node",
    "NodeMaker",
    "NotDirectoryError",
    "NotReadableError",
    "Overwrite",
    "ReadOnlyDirectoryError",
    "UnknownNode",
    "VerifierNode",
    "update_metadata",
]
