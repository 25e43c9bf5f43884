"""Which share writers of an upload are stragglers: times in, decisions out.

All the writers of one push send their writes in step (every bucket gets the
same blocks in the same turn, so write i of every bucket leaves at about the
same moment). Write i is *median-done* at m_i, when half the live writers
(rounded up) have had it acknowledged; the median writer took m_i - s_i for
it, s_i being when write i was first sent. A writer that has not had write i
acknowledged by `now` lags by now - m_i, and it is *lagging* when that lag
exceeds the rule's threshold, max(floor, factor x (m_i - s_i)): a whole grid
slowed down (a loaded machine) moves the median too, and a short hiccup stays
under the floor.

A lagging writer is a *straggler* only once it has been seen lagging at two
looks at least `confirm` seconds apart, with nothing acknowledging its
laggard write in between. That guards against a process that was not
scheduled for a while: when it runs again, the first look may find a writer
lagging only because its answer is still waiting to be read; by the second
look the answer has arrived.

Whether a straggler may be given up (happiness still met without it) is not
decided here (shoal.placement.policy); nor is what to do with it. Pure: no
clock, no reactor; the caller passes `now` and arms its own timer for
`Verdict.next_check`.
"""

from collections.abc import Collection, Hashable
from typing import Generic, TypeVar

import attrs

B = TypeVar("B", bound=Hashable)


@attrs.frozen
class LagRule:
    """How far behind the median a writer may fall (seconds)."""

    floor: float = attrs.field(default=2.0)
    factor: float = attrs.field(default=4.0)
    confirm: float = attrs.field(default=0.5)

    @floor.validator
    def _positive_floor(self, _attribute: object, value: float) -> None:
        if not value > 0:
            raise ValueError(f"the lag floor must be positive, not {value}")

    @factor.validator
    def _factor_at_least_one(self, _attribute: object, value: float) -> None:
        if not value >= 1:
            raise ValueError(f"the lag factor must be at least 1, not {value}")

    @confirm.validator
    def _confirm_not_negative(self, _attribute: object, value: float) -> None:
        if not value >= 0:
            raise ValueError(f"the confirmation delay must not be negative, not {value}")

    def threshold(self, median_time: float) -> float:
        """How long after the median a writer may still be waiting for a write."""
        return max(self.floor, self.factor * max(0.0, median_time))


@attrs.frozen
class Lag:
    """One straggler: how far it lags and what the median writer took for that write."""

    lag: float
    median_time: float
    write: int


@attrs.frozen
class Verdict(Generic[B]):
    stragglers: dict[B, Lag]  # writers to give up now (confirmed)
    next_check: float | None  # when a look could find something new without any event; None: never


class _Write:
    """One write index: when it was first sent, who has had it acknowledged and when."""

    __slots__ = ("sent", "acked")

    def __init__(self, sent: float) -> None:
        self.sent = sent
        self.acked: dict[object, float] = {}


class StragglerWatch(Generic[B]):
    """The writes of one push's writers, fed as events; `check(now)` says who is a straggler."""

    def __init__(self, rule: LagRule, writers: Collection[B]) -> None:
        self.rule = rule
        self.live: set[B] = set(writers)
        self._writes: dict[int, _Write] = {}
        self._sent: dict[B, int] = {w: 0 for w in self.live}  # writes sent so far
        self._suspects: dict[B, tuple[float, int]] = {}  # writer -> (first seen lagging, on which write)

    # -- events --

    def sent(self, writer: B, write: int, now: float) -> None:
        """`writer` sent its write number `write` (0, 1, 2...) at `now`."""
        if writer not in self.live:
            return
        if write < 0:
            raise ValueError(f"write numbers start at 0, not {write}")
        record = self._writes.get(write)
        if record is None:
            self._writes[write] = _Write(now)
        elif now < record.sent:
            record.sent = now
        self._sent[writer] = max(self._sent[writer], write + 1)

    def acked(self, writer: B, write: int, now: float) -> None:
        """The server acknowledged `writer`'s write number `write` at `now`."""
        record = self._writes.get(write)
        if writer not in self.live or record is None:
            return
        record.acked[writer] = now
        suspect = self._suspects.get(writer)
        if suspect is not None and suspect[1] == write:
            del self._suspects[writer]
        self._forget_done()

    def remove(self, writer: B) -> None:
        """The writer is gone (failed, dropped or closed): it no longer counts."""
        self.live.discard(writer)
        self._suspects.pop(writer, None)
        self._forget_done()

    def _forget_done(self) -> None:
        for i in [i for i, r in self._writes.items() if self.live.issubset(r.acked)]:
            del self._writes[i]

    # -- the look --

    def _median_done(self, record: _Write) -> float | None:
        needed = (len(self.live) + 1) // 2
        times = sorted(t for w, t in record.acked.items() if w in self.live)
        return times[needed - 1] if needed and len(times) >= needed else None

    def _lag(self, writer: B, now: float) -> tuple[float, Lag | None]:
        """(when this writer's worst pending write starts lagging, that lag if it has started)."""
        soonest = float("inf")
        found: Lag | None = None
        for i, record in sorted(self._writes.items()):
            if i >= self._sent[writer] or writer in record.acked:
                continue
            m = self._median_done(record)
            if m is None:
                continue
            median_time = m - record.sent
            starts = m + self.rule.threshold(median_time)
            soonest = min(soonest, starts)
            if now >= starts and found is None:
                found = Lag(now - m, median_time, i)
        return soonest, found

    def check(self, now: float) -> Verdict[B]:
        """Who is a straggler at `now`, and when to look again."""
        stragglers: dict[B, Lag] = {}
        next_check = float("inf")
        if len(self.live) < 2:
            self._suspects.clear()
            return Verdict({}, None)
        for writer in sorted(self.live, key=repr):
            soonest, lag = self._lag(writer, now)
            if lag is None:
                self._suspects.pop(writer, None)
                next_check = min(next_check, soonest)
                continue
            suspect = self._suspects.get(writer)
            if suspect is None or suspect[1] != lag.write:
                suspect = self._suspects[writer] = (now, lag.write)
            if now >= suspect[0] + self.rule.confirm:  # the very sum next_check names (floats)
                stragglers[writer] = lag
            else:
                next_check = min(next_check, suspect[0] + self.rule.confirm)
        return Verdict(stragglers, None if next_check == float("inf") else next_check)
