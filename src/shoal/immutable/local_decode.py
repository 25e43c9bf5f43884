"""Decode an immutable file from share sources in hand, synchronously.

For `shoal debug`, benchmarks and tests: each source is any callable
`read(offset, length) -> bytes` (a file, bytes in memory). Every piece is
proven by the pure validator (shoal.immutable.decoder) and the choice of
shares is the fetch planner's (shoal.immutable.fetch_plan), as in a download:
primary shares first, a bad share replaced by another and only its missing
blocks read again.
"""

from collections.abc import Callable, Iterator, Mapping

from shoal.crypto.hashes import HASH_LENGTH
from shoal.formats.errors import FormatError
from shoal.formats.share_layout import V2_HEADER_SIZE
from shoal.hashtree import HashTreeError
from shoal.immutable.decoder import (
    DownloadError,
    FileIdentity,
    FileValidator,
    NotEnoughSharesError,
    ShareValidator,
    UEBMismatchError,
)
from shoal.immutable.fetch_plan import (
    Event,
    FetchPlanner,
    FindingStarted,
    GiveUp,
    Open,
    ShareFailed,
    ShareKey,
    ShareOpened,
    SharesFound,
)

ReadFn = Callable[[int, int], bytes]


def _read_exact(read: ReadFn, offset: int, length: int, what: str) -> bytes:
    data = read(offset, length)
    if len(data) != length:
        raise FormatError(f"{what}: share truncated (wanted {length} bytes at {offset}, got {len(data)})")
    return data


class _ShareReader:
    def __init__(self, shnum: int, name: str, read: ReadFn, file: FileValidator) -> None:
        self.name = name
        self.read = read
        self.v = ShareValidator(file, shnum)

    def open(self) -> None:
        v, read = self.v, self.read
        layout = v.accept_layout(read(0, V2_HEADER_SIZE))
        off, size = layout.ueb_length_range()
        ueb_len = layout.parse_ueb_length(_read_exact(read, off, size, "UEB length"))
        v.file.accept_ueb(_read_exact(read, off + size, ueb_len, "UEB"))
        chain = _read_exact(read, layout.share_hashes, layout.uri_extension - layout.share_hashes, "share hash chain")
        v.accept_share_chain(chain)

    def crypttext_hashes(self, segnum: int) -> dict[int, bytes]:
        leaves = self.v.file.crypttext_leaves
        assert leaves is not None and self.v.layout is not None
        needed = leaves.needed_nodes(segnum, include_leaf=False)
        base = self.v.layout.crypttext_hash_tree
        return {i: _read_exact(self.read, base + i * HASH_LENGTH, HASH_LENGTH, "crypttext hash") for i in needed}

    def block(self, segnum: int) -> bytes:
        v = self.v
        assert v.layout is not None and v.file.shape is not None
        shape = v.file.shape
        off, length = v.layout.block_range(segnum, shape.block_size, shape.block_length(segnum))
        block = _read_exact(self.read, off, length, f"block {segnum}")
        base = v.layout.block_hashes
        hashes = {
            i: _read_exact(self.read, base + i * HASH_LENGTH, HASH_LENGTH, "block hash")
            for i in v.needed_block_hashes(segnum)
        }
        return v.accept_block(segnum, block, hashes)


def decode_segments(
    identity: FileIdentity,
    sources: Mapping[int, tuple[str, ReadFn]],
    decrypt: bool = True,
) -> Iterator[bytes]:
    """Yield the file's plaintext (or ciphertext) segment by segment.

    `sources` maps share numbers to (name, read). Which shares to use is the
    fetch planner's (shoal.immutable.fetch_plan): primary shares first; a
    share that fails any check is dropped and replaced by another, and only
    its missing blocks are read again; NotEnoughSharesError, listing what was
    found and why each rejected share failed, when fewer than k remain.
    """
    file = FileValidator(identity)
    readers = {sh: _ShareReader(sh, name, read, file) for sh, (name, read) in sources.items()}
    planner = FetchPlanner(identity.k, identity.n, want=identity.k)
    events: list[Event] = [FindingStarted(1, 0.0), SharesFound(b"", tuple(readers), 0.0)]

    def give_up() -> NotEnoughSharesError:
        found = ", ".join(f"share {sh} ({r.name})" for sh, r in sorted(readers.items())) or "none"
        why = "; ".join(
            f"share {x.share.shnum} ({readers[x.share.shnum].name}): {x.reason}" for x in planner.rejected
        ) or "no failures"
        return NotEnoughSharesError(
            f"need {identity.k} good shares, have {len(planner.active)}; found {len(readers)}: {found}; "
            f"rejected: {why}"
        )

    def failed(r: _ShareReader, err: Exception) -> ShareFailed:
        return ShareFailed(ShareKey(b"", r.v.shnum), "corrupt", f"{type(err).__name__}: {err}")

    def run() -> None:
        """Carry out the planner's actions until it has nothing more to do."""
        while events:
            for action in planner.handle(events.pop(0)):
                if isinstance(action, GiveUp):
                    raise give_up()
                if isinstance(action, Open):
                    r = readers[action.share.shnum]
                    try:
                        r.open()
                    except (HashTreeError, FormatError, DownloadError, OSError) as e:
                        if isinstance(e, UEBMismatchError):
                            raise
                        events.append(failed(r, e))
                        continue
                    events.append(ShareOpened(action.share))

    def fail(r: _ShareReader, err: Exception) -> None:
        events.append(failed(r, err))
        run()

    run()
    shape = file.shape
    assert shape is not None
    for segnum in range(shape.num_segments):
        blocks: dict[int, bytes] = {}
        while len(blocks) < identity.k:
            use = planner.readers(blocks)
            if not use:
                raise give_up()
            for key in use:
                r = readers[key.shnum]
                try:
                    blocks[key.shnum] = r.block(segnum)
                except (HashTreeError, FormatError, OSError) as e:
                    fail(r, e)
        crypttext = file.decode_segment(segnum, blocks)
        # Prove the ciphertext with crypttext-tree nodes from any good share.
        tried: set[int] = set()
        while True:
            untried = [key for key in planner.hash_sources() if key.shnum not in tried]
            if not untried:
                raise give_up()
            r = readers[untried[0].shnum]
            tried.add(r.v.shnum)
            try:
                file.check_segment(segnum, crypttext, r.crypttext_hashes(segnum))
                break
            except (HashTreeError, FormatError, OSError) as e:
                fail(r, e)
        yield file.decrypt_segment(segnum, crypttext) if decrypt else crypttext
