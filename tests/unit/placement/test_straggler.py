"""The straggler rule (shoal.placement.straggler): simulated pushes, times in, verdicts out."""

import heapq

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shoal.placement.straggler import LagRule, StragglerWatch

RULE = LagRule(floor=2.0, factor=4.0, confirm=0.5)

latency = st.floats(min_value=0.0, max_value=30.0, allow_nan=False)


def simulate(rule, latencies, writes=1, gap=0.1, remove=True):
    """Every writer sends write j at j * gap; writer w's write j is acknowledged
    latencies[w] later. Looks as a pusher does: after every acknowledgement and
    whenever the verdict asks. Returns writer -> time it was found a straggler."""
    writers = range(len(latencies))
    watch = StragglerWatch(rule, writers)
    events = []
    for j in range(writes):
        for w in writers:
            events.append((j * gap, 0, w, j))
            events.append((j * gap + latencies[w], 1, w, j))
    heapq.heapify(events)
    found = {}
    timer = None

    def look(now):
        nonlocal timer
        verdict = watch.check(now)
        for w, lag in verdict.stragglers.items():
            assert lag.lag >= rule.floor - 1e-9  # now - m, where now >= m + threshold was the test
            found.setdefault(w, now)
            if remove:
                watch.remove(w)
        timer = verdict.next_check
        assert timer is None or timer > now or verdict.stragglers

    while events:
        t, kind, w, j = heapq.heappop(events)
        while timer is not None and timer <= t:
            look(timer)
        if kind == 0:
            watch.sent(w, j, t)
        else:
            watch.acked(w, j, t)
            look(t)
    while timer is not None:
        look(timer)
    return found


@given(st.lists(latency, min_size=1, max_size=9), st.integers(1, 4), st.booleans())
def test_a_straggler_is_found_only_while_it_still_lags_and_never_near_the_fastest(lats, writes, remove):
    found = simulate(RULE, lats, writes, remove=remove)
    for w, when in found.items():
        assert lats[w] - min(lats) >= RULE.floor  # within the floor of the fastest: never
        assert when < (writes - 1) * 0.1 + lats[w]  # before its last write was acknowledged
    assert len(found) <= len(lats) - (len(lats) + 1) // 2 or remove  # not the median's half


@given(st.lists(latency, min_size=1, max_size=9), st.integers(1, 4))
def test_writers_within_the_floor_of_each_other_are_never_stragglers(lats, writes):
    base = min(lats)
    close = [base + (x % RULE.floor) * 0.999 for x in lats]
    assert simulate(RULE, close, writes) == {}


@given(
    st.lists(st.floats(min_value=0.0, max_value=RULE.floor * 0.99), min_size=1, max_size=8),
    st.floats(min_value=0.0, max_value=60.0),
    st.integers(1, 3),
)
@example(fast=[1.5509986318650257], extra=0.0, writes=1)  # the confirming look lands on a float sum exactly
def test_one_slow_writer_is_found_in_bounded_time(fast, extra, writes):
    worst = max(fast)
    bound = worst + RULE.threshold(worst) + RULE.confirm  # after the first write was sent
    slow = bound + 0.01 + extra
    found = simulate(RULE, [*fast, slow], writes)
    assert set(found) == {len(fast)}
    assert found[len(fast)] <= bound + 1e-9


@given(
    st.floats(min_value=0.01, max_value=3.0),
    st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=4),
    st.lists(st.floats(min_value=1.0, max_value=RULE.factor * 0.99), max_size=5),
    st.floats(1.0, 50.0),
)
def test_a_grid_slowed_down_as_a_whole_drops_no_one(median, below, above, scale):
    """The threshold moves with the median: writers at most factor x the median
    writer's time drop no one, however slow the whole grid is (a loaded machine)."""
    above = above[: len(below) + 1]
    below = below[: len(above)]
    lats = [median * x * scale for x in [*below, 1.0, *above]]
    assert simulate(RULE, lats, 2) == {}


def test_a_lagging_writer_whose_answer_arrives_before_the_second_look_is_not_dropped():
    """A process that was not scheduled for 3 s: the first look finds a writer
    lagging, its answer is read before the confirmation look."""
    watch = StragglerWatch(RULE, ["a", "b", "c"])
    for w in "abc":
        watch.sent(w, 0, 0.0)
    watch.acked("a", 0, 0.01)
    watch.acked("b", 0, 0.01)
    verdict = watch.check(3.0)  # the timer, run late
    assert verdict.stragglers == {} and verdict.next_check == 3.5
    watch.acked("c", 0, 3.01)
    assert watch.check(3.5).stragglers == {}


def test_a_lone_writer_or_an_idle_push_is_never_judged():
    watch = StragglerWatch(RULE, ["a"])
    watch.sent("a", 0, 0.0)
    assert watch.check(100.0).stragglers == {} and watch.check(100.0).next_check is None
    watch = StragglerWatch(RULE, ["a", "b"])
    assert watch.check(100.0).next_check is None


def test_the_verdict_names_the_lag_and_the_median_time():
    watch = StragglerWatch(RULE, ["a", "b", "c"])
    for w in "abc":
        watch.sent(w, 0, 1.0)
    watch.acked("a", 0, 1.5)
    watch.acked("b", 0, 2.0)
    # median-done at 2.0 after 1.0 s: threshold max(2, 4 x 1.0) = 4 s
    assert watch.check(5.9).stragglers == {} and watch.check(5.9).next_check == 6.0
    assert watch.check(6.0).stragglers == {}  # seen lagging: confirmed half a second later
    lag = watch.check(6.5).stragglers["c"]
    assert (lag.lag, lag.median_time, lag.write) == (4.5, 1.0, 0)


@pytest.mark.parametrize("kwargs", [{"floor": 0}, {"factor": 0.5}, {"confirm": -1}])
def test_a_rule_out_of_range_is_refused(kwargs):
    with pytest.raises(ValueError):
        LagRule(**kwargs)
