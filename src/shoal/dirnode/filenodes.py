"""The nodes a cap becomes besides directories and mutable files (Tahoe-LAFS 1.20's
``ImmutableFileNode``/``LiteralFileNode``, verifier nodes and ``UnknownNode``).

Every node shoal.dirnode.NodeMaker makes answers the same questions, so a
surface asks the node and never the cap's class:

=================  =============  ==========================================
node               ``kind``       made from
=================  =============  ==========================================
ImmutableFileNode  ``file``       ``URI:CHK:``, ``URI:LIT:``
MutableFileNode    ``file``       ``URI:SSK``/``URI:MDMF`` write and read caps
                                  (shoal.mutable.filenode)
DirectoryNode      ``directory``  directory write and read caps,
                                  ``URI:DIR2-CHK:``, ``URI:DIR2-LIT:``
                                  (shoal.dirnode.nodes)
VerifierNode       ``verifier``   every verify cap, of files and directories
UnknownNode        ``unknown``    caps of unknown kinds, and a directory's
                                  children that Tahoe keeps as unknown
=================  =============  ==========================================

Each has ``cap``, ``readonly_cap``, ``verifier_cap`` (None: LIT, unknown),
``storage_index`` (None: nothing is on the grid), ``format``, ``is_mutable()``
and ``is_readonly()``. File nodes (and verifier nodes, for their size) add
``get_size()`` (known without the network, else None: Tahoe's get_size),
``get_current_size()`` (asks the grid if it must) and
``read(write, offset, length)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from shoal.caps import CHKCap, CHKVerifierCap, LiteralCap
from shoal.caps.parse import Cap
from shoal.dirnode.errors import NotReadableError


class ImmutableFiles(Protocol):
    """What nodes need of immutable files (shoal.node.files.ClientFiles)."""

    async def upload(self, source: Any, size: int) -> Any: ...  # a result with .cap (str)
    async def download(self, cap: Any, write: Callable[[bytes], Any],
                       offset: int = 0, length: int | None = None) -> Any: ...


class ImmutableFileNode:
    """An immutable file: CHK (on the grid) or LIT (the bytes are in the cap)."""

    kind: ClassVar[str] = "file"

    def __init__(self, files: ImmutableFiles, cap: CHKCap | LiteralCap) -> None:
        self._files = files
        self.cap = cap
        self.readonly_cap = cap
        self.verifier_cap = cap.verifier()
        self.format = cap.format

    @property
    def storage_index(self) -> bytes | None:
        return self.cap.storage_index

    def get_size(self) -> int:
        return self.cap.size

    async def get_current_size(self) -> int:
        return self.cap.size

    def is_readonly(self) -> bool:
        return True

    def is_mutable(self) -> bool:
        return False

    async def read(self, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None) -> Any:
        """Write bytes [offset, offset+length) (to the end if None); the download's result."""
        return await self._files.download(self.cap, write, offset, length)

    async def download(self) -> bytes:
        """The whole file (for small files: a directory's contents)."""
        if isinstance(self.cap, LiteralCap):
            return self.cap.data
        parts: list[bytes] = []
        await self._files.download(self.cap, parts.append)
        return b"".join(parts)

    def __repr__(self) -> str:
        return f"<ImmutableFileNode {self.cap!r}>"


class VerifierNode:
    """A verify cap, of a file or a directory: it finds and checks the shares and
    cannot read them (read and get_current_size raise NotReadableError)."""

    kind: ClassVar[str] = "verifier"

    def __init__(self, cap: Any) -> None:
        self.cap = cap
        self.readonly_cap = cap
        self.verifier_cap = cap
        self.format: str = cap.format
        self.is_directory: bool = cap.is_directory

    @property
    def storage_index(self) -> bytes | None:
        si: bytes | None = self.cap.storage_index
        return si

    def get_size(self) -> int | None:
        """A CHK verify cap carries the file's size; a mutable one does not."""
        return self.cap.size if isinstance(self.cap, CHKVerifierCap) else None

    async def get_current_size(self) -> int:
        raise NotReadableError(self.cap)

    def is_readonly(self) -> bool:
        return True

    def is_mutable(self) -> bool:
        return False

    async def read(self, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None) -> Any:
        raise NotReadableError(self.cap)

    def __repr__(self) -> str:
        return f"<VerifierNode {self.cap!r}>"


class UnknownNode:
    """A cap shoal makes no node for (an unknown kind), or a directory child Tahoe
    keeps as unknown (verify caps of mutable files and directories); carried as its
    cap, None when neither of the child's caps parses."""

    kind: ClassVar[str] = "unknown"
    storage_index: ClassVar[None] = None

    def __init__(self, cap: Cap | None) -> None:
        self.cap = cap

    @property
    def verifier_cap(self) -> Any:
        return self.cap.verifier() if self.cap is not None else None

    def __repr__(self) -> str:
        return f"<UnknownNode {self.cap!r}>"
