"""One immutable share on one storage server, read over the storage protocol.

A share is read through its BucketReader (`read(offset, length)`, answers
cut at the end of the share; the StorageClient's deadlines apply). Nothing read is
believed until the pure validators (shoal.immutable.decoder) have proven it.

Opening a share costs one round trip when the layout can be predicted: the
header, one read covering the hash trees, the share hash chain, the UEB
length and the UEB (servers tolerate reading past the end, so the unknown UEB
length costs nothing) and, if asked, the block of the first segment wanted
are all requested at once, at offsets predicted from the cap and Tahoe's
default segment size, or from a share of the same file already opened; a
share predicted to be small (a file up to ~384 KiB at 3-of-n) is read whole
in one go. A wrong prediction costs one more round trip. Whole hash trees
are fetched when small (the usual case: 64 bytes per segment) and checked in
one go; for huge files only the nodes each block needs are read with the
block. Later blocks may come several segments per read (`fetch_block`).

Failures are classified for the driver from the storage client's ServerError
family: `CorruptShare` (the data failed a check, or the server answered
nonsense: report it to the server), `ShareTimeout`, `ShareUnreachable`.
"""

from typing import Any, ClassVar

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from shoal import cpu
from shoal.crypto.hashes import HASH_LENGTH
from shoal.errors import Fault
from shoal.formats.errors import FormatError
from shoal.formats.share_layout import (
    MAX_UEB_LENGTH,
    SHARE_HASH_ENTRY_SIZE,
    V2_HEADER_SIZE,
    ShareLayout,
)
from shoal.grid.storage_client import (
    BucketReader,
    ServerError,
    ServerProtocolError,
    ServerTimeout,
)
from shoal.hashtree import HashTreeError
from shoal.immutable.decoder import (
    DownloadError,
    FileValidator,
    ShareValidator,
    TrustedLeaves,
    UEBMismatchError,
    verify_flat_tree,
)
from shoal.immutable.fetch_plan import ShareKey
from shoal.immutable.params import EncodingParams, FileShape, ParameterError

_log = Logger()

SMALL_TREE = 256 * 1024  # fetch a hash tree whole, up front, when it is at most this big
WHOLE_SHARE = 128 * 1024  # open a share this small (as predicted) with one read of all of it
IN_THREAD_TREE = 64  # check whole trees over this many leaves in the CPU pool
MAX_CHAIN_REGION = 64 * SHARE_HASH_ENTRY_SIZE  # far more than any n <= 256 needs


class ShareProblem(DownloadError):
    """Why one share cannot be used (its server's fault); `kind` says how."""

    fault = Fault.SERVER

    kind: ClassVar[str] = "error"


class CorruptShare(ShareProblem):
    kind = "corrupt"


class ShareTimeout(ShareProblem):
    kind = "timeout"


class ShareUnreachable(ShareProblem):
    kind = "unreachable"


@attrs.frozen
class LayoutGuess:
    """Where a share's parts probably are, before its header has been read."""

    shape: FileShape
    layout: ShareLayout

    @classmethod
    def from_cap(cls, size: int, k: int, n: int) -> "LayoutGuess | None":
        """Tahoe's default encoding of a file of this size (its 1 MiB segments)."""
        try:
            shape = FileShape(size, k, n, EncodingParams(k, 1, n).segment_size_for(size))
        except ParameterError:
            return None
        return cls(shape, _layout_for(shape))


def _layout_for(shape: FileShape) -> ShareLayout:
    return ShareLayout.compute(
        shape.block_size, shape.share_data_size, shape.num_segments, shape.num_share_hashes
    )


def trailer_span(layout: ShareLayout, whole_trees: bool | None = None) -> tuple[int, int]:
    """[start, end) of the read that covers the trees (when fetched whole), the
    share hash chain, the UEB length and the longest UEB a share may have."""
    trees = layout.share_hashes - layout.crypttext_hash_tree
    if whole_trees is None:
        whole_trees = trees <= 2 * SMALL_TREE
    start = layout.crypttext_hash_tree if whole_trees else layout.share_hashes
    return start, layout.uri_extension + layout.field_size + MAX_UEB_LENGTH


def tolerates_overrun(server: Any) -> bool:
    """The server answers a read past the end of a share with what there is (not an error)."""
    version = server.version
    return bool(version is not None and version.tolerates_immutable_read_overrun)


def whole_share_read(guess: "LayoutGuess | None") -> int | None:
    """How many bytes from 0 `RemoteShare.open` (not strict) reads first when `guess`
    predicts a share small enough to read whole; None when it predicts a bigger one."""
    if guess is None:
        return None
    _, end = trailer_span(guess.layout)
    return end if end <= WHOLE_SHARE else None


def _discard(d: "defer.Deferred[Any] | None") -> None:
    """Drop a read nobody will wait for (its failure must not be logged as unhandled)."""
    if d is None:
        return
    d.addErrback(lambda _: None)
    if not d.called:
        d.cancel()


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class RemoteShare:
    """Share `shnum` of one file as held by one server: a reader. Which shares are
    in use or failed is the fetch planner's (shoal.immutable.fetch_plan) to know."""

    def __init__(
        self,
        server: Any,
        shnum: int,
        reader: BucketReader,
        file: FileValidator,
        storage_index: bytes,
        prefetched: "tuple[int, defer.Deferred[bytes]] | None" = None,
    ) -> None:
        """prefetched: (length, read) of the share's first bytes, already asked for (a download's
        guessed first round); `open` uses it when it would read just that much first."""
        self.server = server
        self.shnum = shnum
        self.reader = reader
        self.file = file
        self.storage_index = storage_index
        self.validator = ShareValidator(file, shnum)
        self.bytes_read = 0
        self._early: dict[int, defer.Deferred[Any]] = {}  # block reads sent before the header came
        self._prefetched = prefetched

    def __repr__(self) -> str:
        return f"<RemoteShare {self.label}>"

    @property
    def server_id(self) -> bytes:
        return bytes(self.server.server_id)

    @property
    def key(self) -> ShareKey:
        return ShareKey(self.server_id, self.shnum)

    @property
    def server_label(self) -> str:
        nick = getattr(self.server, "nickname", "") or "?"
        return f"{nick} ({self.server.name})"

    @property
    def label(self) -> str:
        return f"share {self.shnum} on {self.server_label}"

    @property
    def layout(self) -> ShareLayout | None:
        return self.validator.layout

    # -- reads -----------------------------------------------------------

    def _request(self, offset: int, length: int) -> "defer.Deferred[Any]":
        return self.reader.read(offset, length)

    async def _read(self, what: str, d: "defer.Deferred[Any]") -> bytes:
        try:
            data = await d
        except ServerTimeout as e:
            raise ShareTimeout(f"{self.label}: {e.reason} reading {what}") from None
        except ServerProtocolError as e:
            raise CorruptShare(f"{self.label}: reading {what}: {e.reason}") from None
        except ServerError as e:
            raise ShareUnreachable(f"{self.label}: reading {what} failed: {e.reason}") from None
        self.bytes_read += len(data)
        return data

    def _tolerates_overrun(self) -> bool:
        return tolerates_overrun(self.server)

    def discard_early(self) -> None:
        for d in self._early.values():
            _discard(d)
        self._early.clear()
        self._take_prefetched(None)

    def _take_prefetched(self, length: int | None) -> "defer.Deferred[Any] | None":
        """The prefetched read if it is of `length` bytes from 0 (it is then used); else drop it."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is None:
            return None
        if prefetched[0] == length:
            return prefetched[1]
        prefetched[1].addErrback(lambda _: None)  # not cancelled: that would drop an HTTP connection
        return None

    # -- opening ---------------------------------------------------------

    async def open(
        self,
        guess: LayoutGuess | None,
        first_segment: int | None = None,
        strict: bool = False,
    ) -> None:
        """Read and prove the header, UEB (against the cap), share hash chain
        and, when fetched whole, the hash trees. `strict` (for verifying):
        fetch both trees whole, whatever their size, and check this share's own
        copy of the crypttext tree too. Raises ShareProblem, or
        UEBMismatchError (fatal to the whole file)."""
        whole_trees = True if strict else None
        overrun = self._tolerates_overrun()
        prefix_len = V2_HEADER_SIZE  # the header, or the whole share when it is small
        gstart = gend = 0
        if guess is not None and overrun:
            gstart, gend = trailer_span(guess.layout, whole_trees)
            if gend <= WHOLE_SHARE:
                prefix_len = gend
        prefix_d = self._take_prefetched(prefix_len) or self._request(0, prefix_len)
        guessed_d = None
        if guess is not None and overrun and prefix_len < gend:
            guessed_d = self._request(gstart, gend - gstart)
            if first_segment is not None and 0 <= first_segment < guess.shape.num_segments:
                off, length = guess.layout.block_range(
                    first_segment, guess.shape.block_size, guess.shape.block_length(first_segment)
                )
                self._early[first_segment] = self._request(off, length)
        try:
            prefix = await self._read("the header", prefix_d)
            try:
                layout = self.validator.accept_layout(prefix[:V2_HEADER_SIZE])
            except FormatError as e:
                raise CorruptShare(f"{self.label}: {e}") from None
            chain = layout.uri_extension - layout.share_hashes
            if chain > MAX_CHAIN_REGION:
                raise CorruptShare(f"{self.label}: share hash chain region of {chain} bytes")
            start, end = trailer_span(layout, whole_trees)
            if end <= prefix_len:  # a read cut short there met the end of the share
                region = prefix[start:end]
            elif guess is not None and guessed_d is not None and gstart <= start and end <= gend:
                region = (await self._read("the hash trees and UEB", guessed_d))[start - gstart :]
            else:
                _discard(guessed_d)
                region = await self._read_trailer(layout, start, end, overrun)
            guessed_d = None
            await self._accept_trailer(layout, start, region, strict)
        except BaseException:
            _discard(guessed_d)
            self.discard_early()
            raise
        shape = self.file.shape
        assert shape is not None
        if guess is None or guess.shape != shape or guess.layout.data != layout.data:
            self.discard_early()
        if first_segment is not None and 0 <= first_segment < shape.num_segments and first_segment not in self._early:
            length = shape.block_length(first_segment)
            off, _ = layout.block_range(first_segment, shape.block_size, length)
            if off + length <= prefix_len:  # the block came with the small share
                self.bytes_read -= length  # counted once, in the prefix
                self._early[first_segment] = defer.succeed(prefix[off : off + length])

    async def _read_trailer(self, layout: ShareLayout, start: int, end: int, overrun: bool) -> bytes:
        if overrun:
            return await self._read("the hash trees and UEB", self._request(start, end - start))
        # an old server that refuses reads past the end: length first, then the UEB
        upto = layout.uri_extension + layout.field_size
        body = await self._read("the hash trees and UEB length", self._request(start, upto - start))
        try:
            ueb_len = layout.parse_ueb_length(body[-layout.field_size :])
        except FormatError as e:
            raise CorruptShare(f"{self.label}: {e}") from None
        return body + await self._read("the UEB", self._request(upto, ueb_len))

    async def _accept_trailer(self, layout: ShareLayout, start: int, region: bytes, strict: bool) -> None:
        def piece(offset: int, length: int, what: str) -> bytes:
            data = region[offset - start : offset - start + length]
            if len(data) != length:
                raise CorruptShare(f"{self.label}: share truncated in the {what}")
            return data

        file, v = self.file, self.validator
        field = layout.field_size
        try:
            ueb_len = layout.parse_ueb_length(piece(layout.uri_extension, field, "UEB length"))
            ueb = piece(layout.uri_extension + field, ueb_len, "UEB")
            file.accept_ueb(ueb)
            chain = piece(layout.share_hashes, layout.uri_extension - layout.share_hashes, "share hash chain")
            v.accept_share_chain(chain)
        except UEBMismatchError:
            raise
        except (HashTreeError, FormatError, DownloadError) as e:
            if isinstance(e, ShareProblem):
                raise
            raise CorruptShare(f"{self.label}: {describe(e)}") from None
        if start > layout.crypttext_hash_tree:
            return  # trees too big to fetch whole: nodes come with each block
        shape = file.shape
        assert shape is not None and v.block_leaves is not None and file.crypttext_leaves is not None
        size = layout.block_hashes - layout.crypttext_hash_tree
        block_flat = piece(layout.block_hashes, size, "block hash tree")
        await self._install(v.block_leaves, block_flat, "block hash tree")
        if strict or not file.crypttext_leaves.complete:
            crypttext_flat = piece(layout.crypttext_hash_tree, size, "crypttext hash tree")
            await self._install(file.crypttext_leaves, crypttext_flat, "crypttext hash tree")

    async def _install(self, leaves: TrustedLeaves, flat: bytes, what: str) -> None:
        try:
            if leaves.num_leaves > IN_THREAD_TREE:
                proven = await cpu.run(verify_flat_tree, flat, leaves.num_leaves, leaves.root)
            else:
                proven = verify_flat_tree(flat, leaves.num_leaves, leaves.root)
        except (HashTreeError, FormatError) as e:
            raise CorruptShare(f"{self.label}: {what}: {describe(e)}") from None
        if not leaves.complete:
            leaves.install(proven)

    # -- blocks ----------------------------------------------------------

    def _nodes(self, base: int, needed: set[int]) -> dict[int, "defer.Deferred[Any]"]:
        return {i: self._request(base + i * HASH_LENGTH, HASH_LENGTH) for i in sorted(needed)}

    async def _read_nodes(self, reads: dict[int, "defer.Deferred[Any]"], what: str) -> dict[int, bytes]:
        out = {}
        try:
            for i, d in reads.items():
                out[i] = await self._read(f"{what} node {i}", d)
        finally:
            for d in reads.values():
                _discard(d)
        return out

    def _span(self, segnum: int, count: int) -> "defer.Deferred[Any]":
        """One read for the blocks of `count` segments from `segnum` (they are
        contiguous); the later blocks wait in _early for their segments."""
        shape, layout = self.file.shape, self.layout
        assert shape is not None and layout is not None
        lengths = [shape.block_length(segnum + i) for i in range(count)]
        offset, _ = layout.block_range(segnum, shape.block_size, lengths[0])
        whole = self._request(offset, sum(lengths))
        parts: list[defer.Deferred[Any]] = [defer.Deferred() for _ in lengths]

        def split(data: bytes) -> None:
            pos = 0
            for part, length in zip(parts, lengths, strict=True):
                part.callback(data[pos : pos + length])
                pos += length

        def failed(f: Any) -> None:
            for part in parts:
                part.errback(f)

        whole.addCallbacks(split, failed)
        for i, part in enumerate(parts[1:], 1):
            _discard(self._early.pop(segnum + i, None))
            self._early[segnum + i] = part
        return parts[0]

    async def fetch_block(self, segnum: int, count: int = 1) -> tuple[bytes, bytes]:
        """The block of segment `segnum` (unchecked) and its proven leaf hash;
        with `count` > 1 the blocks of the next segments come in the same read."""
        shape, layout, leaves = self.file.shape, self.layout, self.validator.block_leaves
        assert shape is not None and layout is not None and leaves is not None
        length = shape.block_length(segnum)
        block_d = self._early.pop(segnum, None)
        if block_d is None:
            count = min(count, shape.num_segments - segnum)
            if count > 1:
                block_d = self._span(segnum, count)
            else:
                block_d = self._request(layout.block_range(segnum, shape.block_size, length)[0], length)
        node_reads = self._nodes(layout.block_hashes, leaves.needed_nodes(segnum))
        try:
            block = await self._read(f"block {segnum}", block_d)
        except BaseException:
            for d in node_reads.values():
                _discard(d)
            raise
        nodes = await self._read_nodes(node_reads, "block hash tree")
        try:
            leaf = leaves.prove_leaf(segnum, nodes)
        except HashTreeError as e:
            raise CorruptShare(f"{self.label}: block hash tree for block {segnum}: {describe(e)}") from None
        if len(block) != length:
            raise CorruptShare(f"{self.label}: block {segnum} is {len(block)} bytes, expected {length}")
        return block, leaf

    async def fetch_crypttext_leaf(self, segnum: int) -> bytes:
        """Prove segment `segnum`'s crypttext leaf with this share's copy of the tree."""
        leaves, layout = self.file.crypttext_leaves, self.layout
        assert leaves is not None and layout is not None
        nodes = await self._read_nodes(
            self._nodes(layout.crypttext_hash_tree, leaves.needed_nodes(segnum)), "crypttext hash tree"
        )
        try:
            return leaves.prove_leaf(segnum, nodes)
        except HashTreeError as e:
            raise CorruptShare(f"{self.label}: crypttext hash tree for segment {segnum}: {describe(e)}") from None

    async def read_span(self, offset: int, length: int, what: str) -> bytes:
        return await self._read(what, self._request(offset, length))

    # -- reports ---------------------------------------------------------

    def advise_corrupt(self, reason: str) -> "defer.Deferred[None]":
        """Tell the server (best effort) that this share failed a check."""

        def sent(_: Any) -> None:
            return None

        def failed(f: Any) -> None:
            _log.info("{share}: corruption advisory not delivered: {e}", share=self.label, e=f.getErrorMessage())

        try:
            client = self.server.connected_storage("advise_corrupt_share")
        except ServerError as e:
            return defer.fail(e).addCallbacks(sent, failed)
        d = client.advise_corrupt_share(b"immutable", self.storage_index, self.shnum, reason.encode("utf-8", "replace"))
        d.addCallbacks(sent, failed)
        return d

