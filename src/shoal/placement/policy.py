"""Placement policies: what an immutable upload or repair must reach, and what to do
about a share lost while it is being written.

A **fresh upload** places all n shares and needs shares.happy servers of
happiness (Tahoe 1.20). A **repair** places only what the grid lacks: every
good share already stored counts toward happiness and is relied upon, the
(server, share) pairs known to be corrupt count for nothing, and it keeps
whatever it can place (happy=1: the check that follows judges the result).
Both are the same `Planner`, fed the same answers; the policy only says how
it is configured.

**A share lost mid-push** (its server failed, vanished or timed out) is judged
the same way for both, from what the planner knows once the loss is recorded
(`after_loss`):

1. *re-place* it when the servers still usable could give more happiness
   than the shares held and being written now (a writable server holds
   nothing yet), provided the share data can be produced again;
2. else *continue* while happiness still reaches the policy's target;
3. else *fail*.

**A straggler** (a share whose writes lag far behind the others',
shoal.placement.straggler) may be given up only when `after_loss` would say
*continue* were it lost (`can_spare`): happiness still met without it and
nothing to re-place, so dropping it changes where shares are, never whether
the upload succeeds.

A re-placement that would still fall short of the target is a failure at
once: there is no point pushing more. Pure: no I/O.
"""

import copy
import enum
from collections.abc import Collection, Hashable, Sequence
from typing import Generic, TypeVar

import attrs

from shoal.placement.happiness import Planner

S = TypeVar("S", bound=Hashable)


class LossDecision(enum.Enum):
    REPLACE = "replace"  # allocate the lost share on another server and push it there
    CONTINUE = "continue"  # happiness still holds: carry on without it
    FAIL = "fail"  # below the target and no server can bring it back


@attrs.frozen
class PlacementPolicy(Generic[S]):
    """How a placement is judged: the happiness it must reach and the shares that do not count."""

    happy: int
    corrupt: frozenset[tuple[S, int]] = frozenset()  # (server, share) never relied upon

    @classmethod
    def upload(cls, happy: int) -> "PlacementPolicy[S]":
        """A fresh upload: all n shares, at least `happy` servers of happiness."""
        if happy < 1:
            raise ValueError(f"shares.happy must be at least 1, not {happy}")
        return cls(happy)

    @classmethod
    def repair(cls, corrupt: Collection[tuple[S, int]] = ()) -> "PlacementPolicy[S]":
        """A repair: the missing shares, the good existing ones counted, whatever can be placed."""
        return cls(1, frozenset(corrupt))

    def planner(self, servers: Sequence[S], n: int, writable: Collection[S]) -> Planner[S]:
        """The planner for one placement over `servers` (permuted order)."""
        return Planner(servers, n, self.happy, writable, ignore=self.corrupt)

    def after_loss(self, planner: Planner[S], can_replace: bool) -> LossDecision:
        """What to do once a lost share has been recorded (`planner.drop`); see the module docstring.

        can_replace: whether the share data can be produced again and pushed to another server.
        """
        now = planner.happiness()
        best = planner.plan().happiness if can_replace else now
        if best < self.happy:
            return LossDecision.FAIL
        if best > now:
            return LossDecision.REPLACE
        return LossDecision.CONTINUE

    def can_spare(self, planner: Planner[S], server: S, shnum: int, can_replace: bool) -> bool:
        """Whether the share being written to `server` may be given up (a straggler):
        `after_loss` would say CONTINUE were it lost. The planner is not changed."""
        trial = copy.deepcopy(planner)
        trial.drop(server, shnum, "straggler")
        return self.after_loss(trial, can_replace) is LossDecision.CONTINUE
