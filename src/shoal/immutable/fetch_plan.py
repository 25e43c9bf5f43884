"""Which shares of an immutable file to open and read: one pure state machine.

Every reader of a CHK file (download, verify, repair, the synchronous
`decode_segments`) drives a `FetchPlanner`: it tells the planner what happened
(`handle(event)`: a server answered with its shares, a share opened or failed,
the blocks of a segment passed their checks, the grace period is over) and
carries out the actions it gets back (open this share, start a timer, report
this share as corrupt, give up). The planner does no I/O and has no clock:
time comes in with the finding events (`now`), so its waiting is testable
without a reactor. Shells own the sockets, the reads and the CPU pool.

Its policy, in the `want=k` mode of a download:

- a share is known from its server's listing (`SharesFound`) or, for a
  download's guessed read that found it first, from `ShareSeen`;
- nothing is opened before k distinct share numbers are known; then k are
  opened: primary shares (0..k-1, decoding them is a join) first, then by
  how early their server answered, one share per server while that is
  possible;
- when those picks are a poor choice (check shares, or two on one server) and
  servers are still to answer, it waits a little (`Grace`): as long as the
  first answers took, at least `minimum`, at most what the better choice
  could save on this read (`wanted_bytes` at `rate`) or `maximum`;
- a share that fails is never opened again; a replacement of another share
  number is opened at once, and the readers of a segment (`readers`) are the
  open shares whose blocks it still lacks, so only missing blocks are fetched;
- it gives up (once, with every rejected share and why) as soon as fewer than
  k distinct usable share numbers remain and every server has answered.

`want=None` (verify) opens every share found, as soon as it is found, and
never gives up; `want=1` (finding a file's shape) opens one share at a time
until one opens; `want=0` only keeps the book on what was found.
"""

from collections.abc import Collection, Mapping
from typing import Final

import attrs

NEW: Final = "new"
OPENING: Final = "opening"
OPEN: Final = "open"
FAILED: Final = "failed"


@attrs.frozen(order=True)
class ShareKey:
    """One share on one server (a server holds at most one copy of a share number)."""

    server: bytes
    shnum: int


@attrs.frozen
class Grace:
    """How long a download may wait for answers that allow a better choice of shares."""

    minimum: float
    maximum: float
    rate: float  # bytes per second a better choice is assumed to save
    wanted_bytes: int


# -- events ---------------------------------------------------------------------


@attrs.frozen
class FindingStarted:
    servers: int  # how many servers were asked
    now: float


@attrs.frozen
class SharesFound:
    """One server's answer: the share numbers it holds (perhaps none)."""

    server: bytes
    shnums: tuple[int, ...]
    now: float


@attrs.frozen
class ShareSeen:
    """A share read before its server listed its shares (a download's guess that hit):
    one more share found, while that server's answer is still awaited."""

    share: ShareKey
    now: float


@attrs.frozen
class QueryFailed:
    """A server did not answer which shares it holds."""

    server: bytes
    now: float


@attrs.frozen
class ShareOpened:
    share: ShareKey


@attrs.frozen
class ShareFailed:
    share: ShareKey
    kind: str  # "corrupt", "timeout", "unreachable" or "error"
    reason: str

    @property
    def corrupt(self) -> bool:
        return self.kind == "corrupt"


@attrs.frozen
class BlocksValidated:
    """The blocks of segment `segnum` from these shares passed every check."""

    segnum: int
    shares: tuple[ShareKey, ...]


@attrs.frozen
class GraceOver:
    """The timer of a StartTimer action fired."""


Event = FindingStarted | SharesFound | ShareSeen | QueryFailed | ShareOpened | ShareFailed | BlocksValidated | GraceOver


# -- actions --------------------------------------------------------------------


@attrs.frozen
class Open:
    share: ShareKey


@attrs.frozen
class StartTimer:
    """Feed GraceOver back after this many seconds."""

    seconds: float


@attrs.frozen
class ReportCorrupt:
    share: ShareKey
    reason: str


@attrs.frozen
class Rejected:
    """A share given up on, and why."""

    share: ShareKey
    kind: str
    reason: str


@attrs.frozen
class GiveUp:
    """Fewer than `need` distinct usable shares remain; `have` were open."""

    have: int
    need: int
    rejected: tuple[Rejected, ...]


Action = Open | StartTimer | ReportCorrupt | GiveUp


class FetchPlanner:
    """The shares of one file: found, opening, open (in use) or failed; see the module docstring."""

    def __init__(self, k: int, n: int, *, want: int | None, grace: Grace | None = None) -> None:
        if not 1 <= k <= n:
            raise ValueError(f"bad encoding {k}-of-{n}")
        self.k = k
        self.n = n
        self.want = want
        self.grace = grace
        self.asked: int | None = None  # None until FindingStarted
        self.answered = 0
        self.started = 0.0
        self.now = 0.0
        self.enough_at: float | None = None  # when k distinct shares were first known
        self.gave_up: GiveUp | None = None
        self.rejected: list[Rejected] = []
        self._state: dict[ShareKey, str] = {}  # in the order found
        self._rank: dict[ShareKey, int] = {}  # the order in which its server answered
        self._active: dict[int, ShareKey] = {}  # open shares in use, by share number
        self._used: dict[int, list[bytes]] = {}  # shnum -> servers whose blocks were used
        self._grace_over = False
        self._timer_started = False

    # -- what the shells ask --------------------------------------------------

    @property
    def waiting(self) -> bool:
        """Some servers have not answered yet."""
        return self.asked is None or self.answered < self.asked

    @property
    def active(self) -> Mapping[int, ShareKey]:
        """The open shares in use, by share number (want=k and want=1 modes)."""
        return self._active

    @property
    def ready(self) -> bool:
        return self.want is not None and len(self._active) >= self.want

    @property
    def used(self) -> dict[int, tuple[bytes, ...]]:
        return {sh: tuple(ids) for sh, ids in sorted(self._used.items())}

    def found(self) -> list[ShareKey]:
        return list(self._state)

    def readers(self, have: Collection[int]) -> list[ShareKey]:
        """The open shares to read a segment's blocks from, given the share numbers
        whose blocks it already has: enough for k blocks, in share-number order."""
        missing = self.k - len(have)
        return [key for sh, key in sorted(self._active.items()) if sh not in have][: max(missing, 0)]

    def hash_sources(self) -> list[ShareKey]:
        """Open shares to ask for file-wide hash tree nodes, fastest server first."""
        return sorted(self._active.values(), key=lambda s: (self._rank[s], s.shnum))

    def good(self) -> dict[int, tuple[bytes, ...]]:
        """shnum -> servers whose copy opened (and, for verify, was checked) and never failed."""
        out: dict[int, list[bytes]] = {}
        for key, st in self._state.items():
            if st == OPEN:
                out.setdefault(key.shnum, []).append(key.server)
        return {sh: tuple(ids) for sh, ids in sorted(out.items())}

    # -- events ---------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Take in one event; return what to do now."""
        actions: list[Action] = []
        if isinstance(event, FindingStarted):
            self.asked = event.servers
            self.started = self.now = event.now
        elif isinstance(event, SharesFound):
            self.answered += 1
            self.now = event.now
            for shnum in sorted(set(event.shnums)):
                self._found(ShareKey(event.server, shnum), self.answered)
            self._enough(event.now)
        elif isinstance(event, ShareSeen):
            self.now = event.now
            self._found(event.share, self.answered + 1)
            self._enough(event.now)
        elif isinstance(event, QueryFailed):
            self.answered += 1
            self.now = event.now
        elif isinstance(event, ShareOpened):
            if self._state.get(event.share) != OPENING:
                return []  # failed (or never asked for) meanwhile
            self._state[event.share] = OPEN
            if self.want is not None:
                self._active[event.share.shnum] = event.share
        elif isinstance(event, ShareFailed):
            key = event.share
            if self._state.get(key) in (None, FAILED):
                return []
            self._state[key] = FAILED
            if self._active.get(key.shnum) == key:
                del self._active[key.shnum]
            self.rejected.append(Rejected(key, event.kind, event.reason))
            if event.corrupt:
                actions.append(ReportCorrupt(key, event.reason))
        elif isinstance(event, BlocksValidated):
            for key in event.shares:
                servers = self._used.setdefault(key.shnum, [])
                if key.server not in servers:
                    servers.append(key.server)
            return []
        elif isinstance(event, GraceOver):
            self._grace_over = True
        else:
            raise TypeError(f"not a fetch event: {event!r}")
        return actions + self._plan()

    # -- policy ---------------------------------------------------------------

    def _found(self, key: ShareKey, rank: int) -> None:
        if 0 <= key.shnum < self.n and key not in self._state:
            self._state[key] = NEW
            self._rank[key] = rank

    def _enough(self, now: float) -> None:
        if self.enough_at is None and len(self._distinct(NEW)) >= self.k:
            self.enough_at = now

    def _distinct(self, *states: str) -> set[int]:
        return {key.shnum for key, st in self._state.items() if st in states}

    def _start(self, key: ShareKey) -> Open:
        self._state[key] = OPENING
        return Open(key)

    def _plan(self) -> list[Action]:
        want = self.want
        if self.gave_up is not None or want == 0:
            return []
        if want is None:  # verify: every share found
            return [self._start(key) for key, st in list(self._state.items()) if st == NEW]
        if len(self._active) >= want:
            return []
        if len(self._distinct(NEW, OPENING, OPEN)) < want:
            if self.waiting:
                return []
            self.gave_up = GiveUp(len(self._active), want, tuple(self.rejected))
            return [self.gave_up]
        short = want - len(self._active) - len(self._distinct(OPENING))
        if short <= 0:
            return []
        picks = self._pick(short)
        delay = self._grace_left(picks)
        if delay > 0:
            if self._timer_started:
                return []
            self._timer_started = True
            return [StartTimer(delay)]
        return [self._start(key) for key in picks]

    def _pick(self, count: int) -> list[ShareKey]:
        """Up to `count` unopened shares of new share numbers: primaries first, then
        by server speed, at most one share per server while that is possible."""
        taken = self._distinct(OPENING, OPEN)
        busy = {key.server for key, st in self._state.items() if st in (OPENING, OPEN)}
        candidates = sorted(
            (key for key, st in self._state.items() if st == NEW and key.shnum not in taken),
            key=lambda s: (s.shnum >= self.k, self._rank[s], s.shnum),
        )
        picks: list[ShareKey] = []
        for spread in (True, False):
            for key in candidates:
                if len(picks) == count:
                    return picks
                if key.shnum in taken or (spread and key.server in busy):
                    continue
                picks.append(key)
                taken.add(key.shnum)
                busy.add(key.server)
        return picks

    def _grace_left(self, picks: list[ShareKey]) -> float:
        """Seconds still to wait, before the first opens, for answers that may give
        a better choice than `picks` (primary shares, one share per server)."""
        grace = self.grace
        if grace is None or self._grace_over or not self.waiting or self.enough_at is None:
            return 0.0
        if len({key.server for key in picks}) == len(picks) and all(key.shnum < self.k for key in picks):
            return 0.0
        if any(st != NEW for st in self._state.values()):
            return 0.0  # already under way
        worth = min(grace.wanted_bytes / grace.rate, grace.maximum)
        wait = min(max(self.enough_at - self.started, grace.minimum), worth)
        return self.enough_at + wait - self.now
