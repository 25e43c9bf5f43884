"""The fetch planner (shoal.immutable.fetch_plan), pure: no reactor, no clock.

Examples of each policy (when to open, primaries and one share per server, the
grace period, replacements, giving up, the verify and one-share modes), then a
hypothesis state machine that throws answers, failures, opens and timers at it
in any order and checks the promises of the module docstring after each step."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from shoal.immutable.fetch_plan import (
    BlocksValidated,
    FetchPlanner,
    FindingStarted,
    GiveUp,
    Grace,
    GraceOver,
    Open,
    QueryFailed,
    ReportCorrupt,
    ShareFailed,
    ShareKey,
    ShareOpened,
    SharesFound,
    StartTimer,
)

A, B, C, D, E = b"A", b"B", b"C", b"D", b"E"
BIG = Grace(minimum=0.005, maximum=0.25, rate=500e6, wanted_bytes=10**9)  # always worth waiting


def opens(actions: list) -> list[ShareKey]:
    return [a.share for a in actions if isinstance(a, Open)]


def started(k: int = 3, n: int = 10, servers: int = 5, want: int | None = 3, grace: Grace | None = None,
            now: float = 0.0) -> FetchPlanner:
    planner = FetchPlanner(k, n, want=want, grace=grace)
    assert planner.handle(FindingStarted(servers, now)) == []
    return planner


# -- examples ---------------------------------------------------------------------


def test_nothing_is_opened_before_k_distinct_shares_are_known():
    p = started()
    assert p.handle(SharesFound(A, (0,), 0.01)) == []
    assert p.handle(SharesFound(B, (0,), 0.02)) == []  # the same share number again
    assert p.handle(QueryFailed(C, 0.03)) == []
    assert opens(p.handle(SharesFound(D, (1, 2), 0.04))) == [ShareKey(A, 0), ShareKey(D, 1), ShareKey(D, 2)]


def test_primaries_first_then_by_answer_order_one_share_per_server():
    p = started(servers=3, grace=BIG)
    p.handle(SharesFound(A, (5, 7), 0.01))
    p.handle(SharesFound(B, (0, 1, 2), 0.02))
    picked = opens(p.handle(SharesFound(C, (8,), 0.03)))  # all answered: no waiting
    # one per server: primary 0 from B, then A's 5 (answered first), then C's 8
    assert picked == [ShareKey(B, 0), ShareKey(A, 5), ShareKey(C, 8)]


def test_two_shares_on_one_server_only_when_there_is_no_other_way():
    p = started(servers=2, grace=BIG)
    p.handle(SharesFound(A, (0, 1, 2), 0.01))
    assert opens(p.handle(SharesFound(B, (1,), 0.02))) == [ShareKey(A, 0), ShareKey(B, 1), ShareKey(A, 2)]


def test_grace_waits_for_a_better_choice_then_takes_it():
    p = started(servers=7, grace=BIG, now=10.0)
    p.handle(SharesFound(A, (7,), 10.01))
    p.handle(SharesFound(B, (8,), 10.02))
    # k shares known after 0.03 s, but all check shares: wait as long again
    assert p.handle(SharesFound(C, (9,), 10.03)) == [StartTimer(pytest.approx(0.03))]
    assert p.handle(SharesFound(D, (0,), 10.04)) == []  # better, not yet perfect
    assert p.handle(SharesFound(E, (1,), 10.045)) == []
    picked = opens(p.handle(SharesFound(b"F", (2,), 10.05)))  # 0, 1, 2 on three servers: at once
    assert picked == [ShareKey(D, 0), ShareKey(E, 1), ShareKey(b"F", 2)]
    assert p.handle(GraceOver()) == []  # the timer fires late: nothing more


def test_grace_over_opens_what_is_there():
    p = started(grace=BIG)
    assert isinstance(p.handle(SharesFound(A, (7, 8, 9), 0.01))[0], StartTimer)
    assert p.handle(SharesFound(B, (), 0.015)) == []  # the timer is already asked for
    assert opens(p.handle(GraceOver())) == [ShareKey(A, 7), ShareKey(A, 8), ShareKey(A, 9)]


def test_grace_is_bounded_by_what_the_read_is_worth_and_by_time():
    small = Grace(minimum=0.005, maximum=0.25, rate=500e6, wanted_bytes=100)  # worth 0.2 us
    p = started(grace=small)
    p.handle(SharesFound(A, (7, 8), 0.01))
    (timer,) = p.handle(SharesFound(B, (9,), 0.02))
    assert isinstance(timer, StartTimer) and timer.seconds == pytest.approx(2e-7)
    p = started(grace=BIG)
    p.handle(SharesFound(A, (7, 8), 0.01))
    (timer,) = p.handle(SharesFound(B, (9,), 0.02))
    assert timer == StartTimer(pytest.approx(0.02))  # as long as the first answers took
    # an answer after the deadline opens at once, whether the timer fired or not
    assert len(opens(p.handle(SharesFound(C, (), 0.05)))) == 3
    # every server answered: no reason to wait
    p = started(servers=1, grace=BIG)
    assert len(opens(p.handle(SharesFound(A, (7, 8, 9), 0.01)))) == 3


def test_a_failed_share_is_replaced_by_a_new_share_number_and_never_reopened():
    p = started(servers=3, grace=BIG)
    p.handle(SharesFound(A, (0, 3), 0.01))
    p.handle(SharesFound(B, (1, 0), 0.02))
    first = opens(p.handle(SharesFound(C, (2,), 0.03)))
    assert first == [ShareKey(A, 0), ShareKey(B, 1), ShareKey(C, 2)]
    for key in first:
        assert p.handle(ShareOpened(key)) == []
    assert p.ready and sorted(p.active) == [0, 1, 2]
    actions = p.handle(ShareFailed(ShareKey(A, 0), "corrupt", "block 4 is bad"))
    # a free server beats a primary share on a server in use
    assert actions == [ReportCorrupt(ShareKey(A, 0), "block 4 is bad"), Open(ShareKey(A, 3))]
    assert not p.ready and sorted(p.active) == [1, 2]
    assert p.handle(ShareFailed(ShareKey(A, 0), "corrupt", "again")) == []  # once
    assert p.handle(ShareFailed(ShareKey(A, 3), "timeout", "slow")) == [Open(ShareKey(B, 0))]
    assert p.handle(ShareOpened(ShareKey(A, 3))) == []  # it failed meanwhile: not used
    assert p.handle(ShareOpened(ShareKey(B, 0))) == []
    assert p.active == {0: ShareKey(B, 0), 1: ShareKey(B, 1), 2: ShareKey(C, 2)}


def test_readers_fetch_only_the_missing_blocks():
    p = started(servers=1)
    for key in opens(p.handle(SharesFound(A, (0, 1, 2, 3), 0.01))):
        p.handle(ShareOpened(key))
    assert p.readers(set()) == [ShareKey(A, 0), ShareKey(A, 1), ShareKey(A, 2)]
    p.handle(ShareFailed(ShareKey(A, 1), "error", "lost"))
    p.handle(ShareOpened(ShareKey(A, 3)))
    assert p.readers({0, 2}) == [ShareKey(A, 3)]
    p.handle(BlocksValidated(0, (ShareKey(A, 0), ShareKey(A, 2), ShareKey(A, 3))))
    assert p.used == {0: (A,), 2: (A,), 3: (A,)}


def test_gives_up_once_with_every_reason_when_too_few_remain():
    p = started(servers=2)
    picked = opens(p.handle(SharesFound(A, (0, 1, 2), 0.01)))
    p.handle(ShareOpened(picked[0]))
    assert p.handle(ShareFailed(picked[1], "timeout", "slow")) == []  # B has not answered: wait
    assert p.gave_up is None
    (gave_up,) = p.handle(QueryFailed(B, 0.02))
    assert isinstance(gave_up, GiveUp) and (gave_up.have, gave_up.need) == (1, 3)
    assert [(r.share, r.kind, r.reason) for r in gave_up.rejected] == [(picked[1], "timeout", "slow")]
    p.handle(ShareFailed(picked[2], "corrupt", "bad"))  # reported, but no second GiveUp
    assert p.gave_up is gave_up


def test_verify_mode_opens_every_share_found_and_never_gives_up():
    p = started(servers=2, want=None)
    assert opens(p.handle(SharesFound(A, (0, 4), 0.01))) == [ShareKey(A, 0), ShareKey(A, 4)]
    assert opens(p.handle(SharesFound(B, (4,), 0.02))) == [ShareKey(B, 4)]
    p.handle(ShareOpened(ShareKey(A, 4)))
    p.handle(ShareOpened(ShareKey(B, 4)))
    assert p.handle(ShareFailed(ShareKey(A, 0), "corrupt", "block 6")) == [
        ReportCorrupt(ShareKey(A, 0), "block 6")]
    assert p.good() == {4: (A, B)} and p.gave_up is None


def test_one_share_mode_tries_one_at_a_time():
    p = started(servers=1, want=1)
    assert opens(p.handle(SharesFound(A, (5, 6), 0.01))) == [ShareKey(A, 5)]
    assert opens(p.handle(ShareFailed(ShareKey(A, 5), "corrupt", "x"))) == [ShareKey(A, 6)]
    assert isinstance(p.handle(ShareFailed(ShareKey(A, 6), "error", "y"))[-1], GiveUp)


def test_find_only_mode_opens_nothing():
    p = started(servers=1, want=0)
    assert p.handle(SharesFound(A, (0, 1, 2), 0.01)) == [] and p.found() == [
        ShareKey(A, 0), ShareKey(A, 1), ShareKey(A, 2)]


def test_shares_out_of_range_are_ignored():
    p = started(k=1, n=2, servers=1, want=1)
    assert opens(p.handle(SharesFound(A, (2, -1, 1), 0.01))) == [ShareKey(A, 1)]


# -- any order of events ------------------------------------------------------------


@st.composite
def event_scripts(draw):
    """Servers' answers (share numbers, or None for no answer) and, between them, which
    of the shares being opened succeed or fail."""
    n = draw(st.integers(1, 6))
    answers = draw(st.lists(st.one_of(st.none(), st.lists(st.integers(0, n - 1), unique=True)),
                            min_size=1, max_size=5))
    outcomes = draw(st.lists(st.sampled_from(["open", "corrupt", "timeout"]), max_size=30))
    return n, answers, outcomes


def play(planner: FetchPlanner, answers, outcomes):
    """Run a script; return every Open asked for, every share failed, and the GiveUps."""
    asked, failed, give_ups = [], set(), []
    opening: list[ShareKey] = []
    outcomes = list(outcomes)

    def take(actions):
        for a in actions:
            if isinstance(a, Open):
                assert a.share not in failed and a.share not in asked
                asked.append(a.share)
                opening.append(a.share)
            elif isinstance(a, GiveUp):
                give_ups.append(a)

    def settle_one():
        if opening and outcomes:
            key, outcome = opening.pop(0), outcomes.pop(0)
            if outcome == "open":
                take(planner.handle(ShareOpened(key)))
            else:
                failed.add(key)
                take(planner.handle(ShareFailed(key, outcome, outcome)))

    take(planner.handle(FindingStarted(len(answers), 0.0)))
    for i, shnums in enumerate(answers):
        server = bytes([65 + i])
        take(planner.handle(QueryFailed(server, i) if shnums is None else SharesFound(server, tuple(shnums), i)))
        settle_one()
    while opening and outcomes:
        settle_one()
    return asked, failed, give_ups, opening


@settings(max_examples=200)
@given(event_scripts())
def test_verify_mode_opens_every_share_found_once_and_never_gives_up(script):
    n, answers, outcomes = script
    planner = FetchPlanner(1, n, want=None)
    asked, failed, give_ups, _ = play(planner, answers, outcomes)
    found = [ShareKey(bytes([65 + i]), sh) for i, shnums in enumerate(answers) if shnums for sh in sorted(shnums)]
    assert asked == found and give_ups == [] and planner.gave_up is None
    good = {ShareKey(server, sh) for sh, servers in planner.good().items() for server in servers}
    assert good <= set(asked) - failed


@settings(max_examples=200)
@given(event_scripts())
def test_one_share_mode_tries_one_at_a_time_until_one_opens(script):
    n, answers, outcomes = script
    planner = FetchPlanner(1, n, want=1)
    asked, failed, give_ups, opening = play(planner, answers, outcomes)
    assert len(opening) <= 1 and len(planner.active) <= 1
    found = {ShareKey(bytes([65 + i]), sh) for i, shnums in enumerate(answers) if shnums for sh in shnums}
    if planner.active:
        assert give_ups == [] and set(asked) - failed == set(planner.active.values())
    elif give_ups:
        assert set(asked) == failed == found and len(give_ups) == 1
    else:
        assert opening  # still trying when the script ran out


class PlannerMachine(RuleBasedStateMachine):
    """A download's planner (want=k, with grace) under random events, against a model."""

    @initialize(
        k=st.integers(1, 4),
        extra=st.integers(0, 4),
        servers=st.integers(1, 6),
        wanted=st.sampled_from([10, 10**6, 10**9]),
    )
    def setup(self, k: int, extra: int, servers: int, wanted: int) -> None:
        self.k, self.n = k, k + extra
        self.servers = [bytes([65 + i]) for i in range(servers)]
        self.grace = Grace(minimum=0.005, maximum=0.25, rate=500e6, wanted_bytes=wanted)
        self.p = FetchPlanner(self.k, self.n, want=self.k, grace=self.grace)
        self.clock = 100.0
        self.started = self.clock
        self.answered: set[bytes] = set()
        self.found: list[ShareKey] = []
        self.failed: set[ShareKey] = set()
        self.opening: set[ShareKey] = set()
        self.open: set[ShareKey] = set()
        self.ever_opened: set[ShareKey] = set()
        self.reported: list[ShareKey] = []
        self.give_ups: list[GiveUp] = []
        self.timer = False
        self.grace_fired = False
        self.enough_at: float | None = None
        self.take(self.p.handle(FindingStarted(servers, self.clock)))

    # -- the model's view ---------------------------------------------------

    @property
    def waiting(self) -> bool:
        return len(self.answered) < len(self.servers)

    def usable(self) -> set[int]:
        return {key.shnum for key in self.found if key not in self.failed}

    def fresh(self) -> list[ShareKey]:
        return [key for key in self.found if key not in self.failed and key not in self.ever_opened]

    def take(self, actions: list) -> None:
        """Check one batch of actions against the promises and apply it to the model."""
        picks = opens(actions)
        busy_before = {key.server for key in self.opening | self.open}
        for key in picks:
            assert key in self.found, "opened a share nobody found"
            assert key not in self.failed, "opened a share it was told failed"
            assert key not in self.ever_opened, "opened a share twice"
            assert not self.give_ups, "opened after giving up"
        if picks:
            assert len(self.usable()) >= self.k, "opened before k distinct shares were known"
            if not self.ever_opened and self.waiting and not self.grace_fired:
                perfect = len({key.server for key in picks}) == len(picks) and all(
                    key.shnum < self.k for key in picks)
                assert self.enough_at is not None
                wait = min(max(self.enough_at - self.started, self.grace.minimum),
                           self.grace.wanted_bytes / self.grace.rate, self.grace.maximum)
                assert perfect or self.clock >= self.enough_at + wait - 1e-9, "did not wait out the grace"
        for key in picks:
            self.opening.add(key)
            self.ever_opened.add(key)
        if picks:
            busy = busy_before | {key.server for key in picks}
            taken = {key.shnum for key in self.opening | self.open}
            left = [key for key in self.fresh() if key.shnum not in taken]
            servers = [key.server for key in picks]
            if len(set(servers)) < len(servers) or busy_before & set(servers):
                assert all(key.server in busy for key in left), "doubled up on a server needlessly"
            if any(key.shnum >= self.k for key in picks):
                assert all(key.server in busy for key in left if key.shnum < self.k), "passed over a primary"
        for action in actions:
            if isinstance(action, ReportCorrupt):
                self.reported.append(action.share)
            elif isinstance(action, GiveUp):
                assert {r.share for r in action.rejected} == self.failed, "reasons missing"
                self.give_ups.append(action)
            elif isinstance(action, StartTimer):
                assert not self.timer and action.seconds > 0
                self.timer = True

    # -- events ---------------------------------------------------------------

    @precondition(lambda self: self.waiting)
    @rule(data=st.data(), dt=st.floats(0, 0.1))
    def answer(self, data: st.DataObject, dt: float) -> None:
        server = data.draw(st.sampled_from([s for s in self.servers if s not in self.answered]))
        shnums = data.draw(st.lists(st.integers(0, self.n - 1), unique=True, max_size=self.n))
        self.clock += dt
        self.answered.add(server)
        self.found += [ShareKey(server, sh) for sh in sorted(shnums)]
        if self.enough_at is None and len({key.shnum for key in self.found}) >= self.k:
            self.enough_at = self.clock
        self.take(self.p.handle(SharesFound(server, tuple(shnums), self.clock)))

    @precondition(lambda self: self.waiting)
    @rule(data=st.data(), dt=st.floats(0, 0.1))
    def no_answer(self, data: st.DataObject, dt: float) -> None:
        server = data.draw(st.sampled_from([s for s in self.servers if s not in self.answered]))
        self.clock += dt
        self.answered.add(server)
        self.take(self.p.handle(QueryFailed(server, self.clock)))

    @precondition(lambda self: self.opening)
    @rule(data=st.data())
    def opened(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.opening)))
        self.opening.discard(key)
        self.open.add(key)
        self.take(self.p.handle(ShareOpened(key)))

    @precondition(lambda self: self.opening or self.open)
    @rule(data=st.data(), kind=st.sampled_from(["corrupt", "timeout", "unreachable", "error"]))
    def failed_share(self, data: st.DataObject, kind: str) -> None:
        key = data.draw(st.sampled_from(sorted(self.opening | self.open)))
        self.opening.discard(key)
        self.open.discard(key)
        self.failed.add(key)
        reported = len(self.reported)
        self.take(self.p.handle(ShareFailed(key, kind, f"{kind} {key.shnum}")))
        assert self.reported[reported:] == ([key] if kind == "corrupt" else [])

    @rule()
    def blocks_validated(self) -> None:
        if self.p.ready:
            keys = tuple(self.p.readers(()))
            assert set(keys) == self.open
            assert self.p.handle(BlocksValidated(0, keys)) == []

    @precondition(lambda self: self.timer and not self.grace_fired)
    @rule()
    def grace_over(self) -> None:
        self.grace_fired = True
        self.take(self.p.handle(GraceOver()))

    # -- what must always hold ------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        if not hasattr(self, "p"):
            return
        assert {key for key in self.p.active.values()} == self.open
        assert len({key.shnum for key in self.opening | self.open}) == len(self.opening | self.open) <= self.k

    @invariant()
    def gives_up_exactly_when_too_few_remain(self) -> None:
        if not hasattr(self, "p"):
            return
        assert len(self.give_ups) <= 1
        if self.give_ups:
            assert not self.waiting and len(self.usable()) < self.k, "gave up too early"
        elif not self.waiting:
            assert len(self.usable()) >= self.k, "should have given up"

    @invariant()
    def keeps_k_shares_going_once_all_have_answered_or_the_grace_is_over(self) -> None:
        if not hasattr(self, "p") or self.give_ups:
            return
        if (not self.waiting or self.grace_fired) and len(self.usable()) >= self.k:
            assert len(self.opening | self.open) == self.k


TestPlannerMachine = PlannerMachine.TestCase
TestPlannerMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
