"""Repair an immutable (CHK) file: regenerate missing and corrupt shares, spread them out.

Tahoe-LAFS 1.20's repairer downloads the file's ciphertext, encodes it again
and uploads the shares that are missing. It cannot heal a corrupt share (the
server keeps serving it and refuses a new one with that number) and it never
moves shares onto servers that hold none. shoal's repair:

1. reads the file's shape (segment size) from the UEB of one good share and
   downloads the validated ciphertext into a temporary file (a verify cap is
   enough: nothing is decrypted; a share that fails a check is reported to
   its server, which quarantines it if it can prove the damage);
2. plans placement with the uploader's planner (shoal.placement), feeding it
   every server's holdings *minus the shares known to be corrupt*, so that
   happiness is made as large as these servers allow: shares missing or
   corrupt are regenerated, and shares crowded onto one server are copied to
   servers that hold none (servers that quarantined a corrupt share take a
   good one again);
3. encodes the ciphertext again with the uploader's push pipeline and writes
   only the shares the plan needs. Encoding is deterministic, so the new
   shares are byte-identical to the lost ones; the UEB they produce must hash
   to the cap's UEB hash or every new share is aborted before it is closed.

Relied-upon holders are sent allocate_buckets, which renews this client's
lease on their shares, as Tahoe's repairer does.
"""

import tempfile
import time
from typing import Any

import attrs

from shoal.caps import CHKCap, CHKVerifierCap
from shoal.errors import Fault, ShoalError
from shoal.immutable.decoder import FileIdentity, FileValidator, NotEnoughSharesError
from shoal.immutable.download import download
from shoal.immutable.encoder import EncodeResult, ImmutableEncoder
from shoal.immutable.fetch_plan import FetchPlanner
from shoal.immutable.params import FileShape
from shoal.immutable.placer import SharePlacement
from shoal.immutable.push import Pusher
from shoal.immutable.remote_share import LayoutGuess
from shoal.immutable.share_finder import ShareFinder
from shoal.placement.happiness import Planner

INLINE_LIMIT = 32 * 1024  # files this small are encoded on the calling thread


class RepairError(ShoalError):
    """A repair could not be done (the message says why): mostly the grid's, too few good
    shares or servers."""

    fault = Fault.GRID


@attrs.frozen
class RepairResult:
    shares_placed: dict[int, bytes]  # shnum -> server id, written by this repair
    bytes_pushed: int
    happiness_planned: int
    elapsed: float


class _AsIs:
    """Stands in for AES: the repairer's input is already ciphertext."""

    @staticmethod
    def process(data: bytes) -> bytes:
        return data


class CiphertextEncoder(ImmutableEncoder):
    """The immutable encoder fed with ciphertext (a repairer holds no key).

    ``finish`` refuses a result whose UEB does not hash to the cap's: the
    shares would not belong to the file.
    """

    def __init__(self, shape: FileShape, ueb_hash: bytes) -> None:
        super().__init__(bytes(16), shape)  # the key is never used
        self._aes = _AsIs()  # type: ignore[assignment]
        self._ueb_hash = ueb_hash

    def finish(self) -> EncodeResult:
        result = super().finish()
        if result.ueb_hash != self._ueb_hash:
            raise RepairError(
                "the re-encoded file's URI extension block does not match the cap: "
                "the shares found belong to a file encoded differently; nothing was written"
            )
        return result


class _RepairPlanner(Planner[bytes]):
    """The upload planner, blind to shares known to be corrupt."""

    def __init__(self, servers: list[bytes], n: int, happy: int, writable: set[bytes],
                 bad: set[tuple[bytes, int]]) -> None:
        super().__init__(servers, n, happy, writable)
        self.bad = bad

    def got_allocate(self, server: bytes, asked: Any, already: Any, allocated: Any) -> None:
        super().got_allocate(server, asked, [sh for sh in already if (server, sh) not in self.bad], allocated)

    def got_buckets(self, server: bytes, shares: Any) -> None:
        super().got_buckets(server, [sh for sh in shares if (server, sh) not in self.bad])


class RepairPlacement(SharePlacement):
    """SharePlacement whose planner ignores the known-corrupt (server, share) pairs."""

    def __init__(self, broker: Any, storage_index: bytes, shape: FileShape, allocated_size: int,
                 lease_secret: bytes, bad: set[tuple[bytes, int]]) -> None:
        # happy=1: a repair keeps whatever it can place; the check afterwards judges it
        super().__init__(broker, storage_index, shape, allocated_size, lease_secret, 1)
        writable = {s for s, answer in self.planner.answers.items() if not answer.readonly}
        self.planner = _RepairPlanner(self.order, shape.n, 1, writable, bad)


async def file_shape(broker: Any, cap: CHKCap | CHKVerifierCap) -> FileShape:
    """The file's shape, from the UEB of the first share that opens (proven against the cap)."""
    identity = FileIdentity(cap.ueb_hash, cap.needed, cap.total, cap.size, None)
    file = FileValidator(identity)
    guess = LayoutGuess.from_cap(cap.size, cap.needed, cap.total)
    planner = FetchPlanner(cap.needed, cap.total, want=1)  # one share at a time until one opens
    finder = ShareFinder(broker, cap.storage_index, file, report_corruption=True, planner=planner,
                         opener=lambda share: share.open(guess))
    try:
        finder.start()
        await finder.until_ready()
        assert file.shape is not None
        return file.shape
    finally:
        await finder.finish()


async def repair_immutable(
    broker: Any,
    cap: CHKCap | CHKVerifierCap,
    *,
    lease_secret: bytes,
    bad: set[tuple[bytes, int]] = frozenset(),  # type: ignore[assignment]
) -> RepairResult:
    """Regenerate and place the shares the grid lacks (see the module docstring).

    Raises NotEnoughSharesError when fewer than k good shares can be read,
    RepairError, or an upload error (no servers, none writable).
    """
    started = time.monotonic()
    shape = await file_shape(broker, cap)
    verifier = cap.verifier() if isinstance(cap, CHKCap) else cap
    with tempfile.TemporaryFile(prefix="shoal-repair-") as spool:
        def write(data: bytes) -> None:
            spool.write(data)

        await download(broker, verifier, write)
        if spool.tell() != shape.size:
            raise RepairError(f"downloaded {spool.tell()} bytes of ciphertext, the cap says {shape.size}")
        spool.seek(0)
        encoder = CiphertextEncoder(shape, cap.ueb_hash)
        placement = RepairPlacement(broker, cap.storage_index, shape, encoder.share_size(), lease_secret,
                                    set(bad))
        plan = await placement.place()
        writers = {sh: (sid, placement.writers[(sid, sh)]) for sid, shares in plan.keep.items() for sh in shares}
        if not writers:
            return RepairResult({}, 0, plan.happiness, time.monotonic() - started)
        pusher = Pusher(encoder, spool, 0, writers, placement.dropped, inline=shape.size <= INLINE_LIMIT)
        placement.pusher = pusher
        try:
            pushed = await pusher.run()
        except BaseException:
            await placement.abort_all()
            raise
    return RepairResult(
        shares_placed=dict(sorted(pushed.shares_pushed.items())),
        bytes_pushed=pushed.bytes_pushed,
        happiness_planned=plan.happiness,
        elapsed=time.monotonic() - started,
    )


__all__ = ["CiphertextEncoder", "NotEnoughSharesError", "RepairError", "RepairResult", "file_shape",
           "repair_immutable"]
