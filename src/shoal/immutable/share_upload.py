"""Placing and pushing the shares of one immutable file: allocate -> push -> close.

`ShareUpload` is what an upload and a repair have in common. It is built from
explicit inputs: the storage index, the file's shape, the lease secret, the
broker's servers, a placement policy (shoal.placement.policy: a fresh
upload's or a repair's) and a `ShareSource` (the stream the share data is
coded from and how to make an encoder for it). Then

1. `place()` consults the servers (shoal.immutable.placer) and returns the
   plan; it fails with the grid's error when the policy's happiness cannot
   be reached;
2. `push(plan)` writes every share the plan keeps a writer for through the
   push pipeline (shoal.immutable.push), closes nothing until every write is
   in, then closes them all.

**A share lost while pushing** (a write or close failed: the server failed,
vanished or timed out) is judged by the policy (`PlacementPolicy.after_loss`),
the same for upload and repair:

- *re-place*: when another server could raise happiness and the source can
  be read again, the push goes on; once its writes are in, the lost shares
  are allocated where the planner now puts them and pushed there by a second
  pass over the source (encoding is deterministic: the same bytes), before
  anything is closed. At most `MAX_PASSES` passes;
- *continue* while happiness still reaches the target;
- *fail* otherwise: every unclosed writer is aborted (abort, not close: the
  servers discard the partial shares) and the error names every server and
  what it answered: UploadFullError (507) when servers said they were full,
  else UploadUnhappinessError. A share lost while closing is never re-placed
  (the others may be closed already).

**A straggler** (given `stragglers`, a LagRule): a share whose writes lag
far behind the others' is given up by the push when the policy can spare it
(`PlacementPolicy.can_spare`: happiness holds without it and it would not be
re-placed), and then counts as a share lost while pushing.

Without losses the calls on the wire are those of one pass: the writes of
the pipeline, then one close per share.
"""

from collections.abc import Callable
from typing import BinaryIO

import attrs
from twisted.internet import defer

from shoal.grid.storage_broker import StorageBroker
from shoal.grid.storage_client import BucketWriter
from shoal.immutable.encoder import EncodeResult, ImmutableEncoder
from shoal.immutable.params import FileShape
from shoal.immutable.placer import ServerReport, SharePlacement
from shoal.immutable.push import PIPELINE_SEGMENTS, Pusher, PushResult, gather
from shoal.placement.happiness import Plan
from shoal.placement.policy import LossDecision, PlacementPolicy
from shoal.placement.straggler import LagRule

MAX_PASSES = 3  # passes over the source: the first, and re-placements of lost shares


@attrs.frozen
class ShareSource:
    """Where the share data comes from: `stream` from `position`, coded by a
    fresh `new_encoder()` on every pass (an encoder is used once)."""

    stream: BinaryIO
    position: int
    new_encoder: Callable[[], ImmutableEncoder]
    inline: bool = False  # tiny files: the CPU work on the calling thread

    def rereadable(self) -> bool:
        """Whether a second pass can read the data again (lost shares can be re-placed)."""
        return self.stream.seekable()


class ShareUpload:
    """One file's shares: place them, push them, with one policy for lost shares."""

    def __init__(
        self,
        broker: StorageBroker,
        storage_index: bytes,
        shape: FileShape,
        lease_secret: bytes,
        policy: PlacementPolicy[bytes],
        source: ShareSource,
        stragglers: LagRule | None = None,
    ) -> None:
        self.policy = policy
        self.stragglers = stragglers
        self.source = source
        self.encoder = source.new_encoder()  # the first pass's
        self.placement = SharePlacement(
            broker, storage_index, shape, self.encoder.share_size(), lease_secret, policy
        )
        self._pushers: list[Pusher] = []
        self._lost: set[int] = set()
        self._closing = False
        self._error: BaseException | None = None

    # -- what the caller reads --

    def happiness(self) -> int:
        return self.placement.planner.happiness()

    def preexisting_shares(self) -> int:
        """Distinct shares found already on the grid."""
        return len(self.placement.planner.existing_shares())

    def reports(self) -> list[ServerReport]:
        return self.placement.reports()

    # -- the steps --

    async def place(self) -> Plan[bytes]:
        """Consult the servers; raises the grid's error when the policy's happiness is out of reach."""
        return await self.placement.place()

    async def abort(self) -> None:
        """Abort every writer not closed yet (a no-op for closed buckets)."""
        await self.placement.abort_all()

    async def push(
        self, plan: Plan[bytes], *, write_size: int | None = None, pipeline_segments: int = PIPELINE_SEGMENTS
    ) -> PushResult:
        """Push and close every share the plan keeps a writer for (see the module docstring).

        On failure every unclosed writer is aborted before the error is raised.
        """
        if not plan.keep:
            raise ValueError("the plan keeps no writer: nothing to push")
        try:
            return await self._push(plan, write_size, pipeline_segments)
        except BaseException:
            await self.abort()
            raise

    async def _push(self, plan: Plan[bytes], write_size: int | None, pipeline_segments: int) -> PushResult:
        writers: dict[int, tuple[bytes, BucketWriter]] = {
            sh: (sid, self.placement.writers[(sid, sh)]) for sid, shares in plan.keep.items() for sh in shares
        }
        encoded: EncodeResult | None = None
        while writers:
            encoder = self.encoder if not self._pushers else self.source.new_encoder()
            pusher = Pusher(
                encoder, self.source.stream, self.source.position, writers, self._on_lost,
                write_size=write_size, pipeline_segments=pipeline_segments, inline=self.source.inline,
                stragglers=self.stragglers, spare=self._can_spare,
            )
            self._pushers.append(pusher)
            result = await pusher.write_all()
            encoded = encoded or result
            writers = await self._replace_lost()
        assert encoded is not None  # the first pass had writers
        self._closing = True
        closed = await gather([defer.ensureDeferred(p.close_all()) for p in self._pushers])
        shares: dict[int, bytes] = {}
        for one in closed:
            shares.update(one)
        return PushResult(
            encoded=encoded,
            bytes_pushed=sum(p.bytes_pushed for p in self._pushers),
            shares_pushed=shares,
        )

    async def _replace_lost(self) -> dict[int, tuple[bytes, BucketWriter]]:
        """After a pass's writes: new writers for the lost shares, if the policy re-places them."""
        lost = frozenset(self._lost)
        if not lost:
            return {}
        decision = self.policy.after_loss(self.placement.planner, self._can_replace())
        if decision is LossDecision.FAIL:
            raise self.placement.lost_error()
        if decision is LossDecision.CONTINUE:
            return {}
        self._lost.clear()
        return await self.placement.replace(lost)

    def _can_replace(self) -> bool:
        return not self._closing and len(self._pushers) < MAX_PASSES and self.source.rereadable()

    def _can_spare(self, sid: bytes, shnum: int) -> bool:
        return self.policy.can_spare(self.placement.planner, sid, shnum, self._can_replace())

    def _on_lost(self, sid: bytes, shnum: int, why: str, full: bool = False) -> None:
        """A pusher lost a share (`full`: the server said it had no room): record it;
        stop every pass if the policy says the upload failed."""
        self.placement.drop(sid, shnum, why, full)
        self._lost.add(shnum)
        if self.policy.after_loss(self.placement.planner, self._can_replace()) is LossDecision.FAIL:
            self._fail(self.placement.lost_error())

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        for pusher in self._pushers:
            pusher.stop(self._error)
