"""The pure minimum-body-rate meter (protocol.body_rate): the storage HTTP port's
adapter can reuse these cases as they stand."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.protocol.body_rate import BodyRateMeter, BodyRatePolicy

POLICY = BodyRatePolicy(min_rate=1000, window=10)


def run(meter: BodyRateMeter, arrivals: list[tuple[float, int]], until: float, step: float = 1.0) -> float | None:
    """Feed (time, bytes) arrivals and check every `step`; the time of the cut, or None."""
    t = 0.0
    pending = sorted(arrivals)
    while t <= until:
        while pending and pending[0][0] <= t:
            meter.received(pending.pop(0)[1])
        if meter.check(t) is not None:
            return t
        t += step
    return None


def test_one_byte_every_59_seconds_is_cut_after_the_first_window():
    meter = BodyRateMeter(POLICY, 0.0)
    assert run(meter, [(59.0 * i, 1) for i in range(100)], until=1000) == 10.0


def test_a_burst_then_a_stall_is_cut_one_window_later():
    meter = BodyRateMeter(POLICY, 0.0)
    assert run(meter, [(0.5, 10_000_000)], until=100) == 20.0


@given(st.integers(1000, 10**6), st.integers(10, 300))
def test_a_body_at_or_above_the_rate_is_never_cut(rate, seconds):
    meter = BodyRateMeter(POLICY, 0.0)
    assert run(meter, [(t + 0.5, rate) for t in range(seconds)], until=seconds) is None


def test_a_paused_window_is_excused():
    meter = BodyRateMeter(POLICY, 0.0)
    meter.received(5)
    assert meter.check(9.0) is None
    meter.excuse(9.0)  # the server paused the sender
    assert meter.check(18.0) is None
    reason = meter.check(19.5)
    assert reason is not None and "at least 1000 bytes/s" in reason


def test_rate_zero_turns_it_off_and_bad_policies_are_refused():
    meter = BodyRateMeter(BodyRatePolicy(min_rate=0, window=1), 0.0)
    assert meter.check(1e9) is None
    with pytest.raises(ValueError):
        BodyRatePolicy(min_rate=-1)
    with pytest.raises(ValueError):
        BodyRatePolicy(window=0)
