"""Repair an immutable (CHK) file: regenerate missing and corrupt shares, spread them out.

Tahoe-LAFS 1.20's repairer downloads the file's ciphertext, encodes it again
and uploads the shares that are missing. It cannot heal a corrupt share (the
server keeps serving it and refuses a new one with that number) and it never
moves shares onto servers that hold none. shoal's repair:

1. reads the file's shape (segment size) from the UEB of one good share and
   downloads the validated ciphertext into a temporary file (a verify cap is
   enough: nothing is decrypted; a share that fails a check is reported to
   its server, which quarantines it if it can prove the damage);
2. places and pushes with the uploader's `ShareUpload`
   (shoal.immutable.share_upload) under the repair placement policy
   (shoal.placement.policy): every server's holdings count *minus the shares
   known to be corrupt*, so that happiness is made as large as these servers
   allow: shares missing or corrupt are regenerated, and shares crowded onto
   one server are copied to servers that hold none (servers that quarantined
   a corrupt share take a good one again); a share lost while pushing is
   re-placed, dropped or fails the repair exactly as in an upload;
3. encodes the ciphertext again (an encoder whose cipher passes ciphertext
   through) and writes only the shares the plan needs. Encoding is
   deterministic, so the new shares are byte-identical to the lost ones; the
   UEB they produce must hash to the cap's UEB hash or every new share is
   aborted before it is closed.

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
from shoal.immutable.encoder import AlreadyEncrypted, EncodeResult, ImmutableEncoder
from shoal.immutable.fetch_plan import FetchPlanner
from shoal.immutable.params import FileShape
from shoal.immutable.remote_share import LayoutGuess
from shoal.immutable.share_finder import ShareFinder
from shoal.immutable.share_upload import ShareSource, ShareUpload
from shoal.placement.policy import PlacementPolicy

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


class CiphertextEncoder(ImmutableEncoder):
    """The immutable encoder fed with ciphertext (a repairer holds no key).

    ``finish`` refuses a result whose UEB does not hash to the cap's: the
    shares would not belong to the file.
    """

    def __init__(self, shape: FileShape, ueb_hash: bytes) -> None:
        super().__init__(bytes(16), shape, cipher=AlreadyEncrypted())  # the key is never used
        self._ueb_hash = ueb_hash

    def finish(self) -> EncodeResult:
        result = super().finish()
        if result.ueb_hash != self._ueb_hash:
            raise RepairError(
                "the re-encoded file's URI extension block does not match the cap: "
                "the shares found belong to a file encoded differently; nothing was written"
            )
        return result


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
        shares = ShareUpload(
            broker, cap.storage_index, shape, lease_secret, PlacementPolicy.repair(bad),
            ShareSource(spool, 0, lambda: CiphertextEncoder(shape, cap.ueb_hash), inline=shape.size <= INLINE_LIMIT),
        )
        plan = await shares.place()
        if not plan.keep:
            return RepairResult({}, 0, plan.happiness, time.monotonic() - started)
        pushed = await shares.push(plan)  # aborts every unclosed writer if it fails
    return RepairResult(
        shares_placed=dict(sorted(pushed.shares_pushed.items())),
        bytes_pushed=pushed.bytes_pushed,
        happiness_planned=plan.happiness,
        elapsed=time.monotonic() - started,
    )


__all__ = ["CiphertextEncoder", "NotEnoughSharesError", "RepairError", "RepairResult", "file_shape",
           "repair_immutable"]
