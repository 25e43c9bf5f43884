"""The model of bench/durability.py: the chain against closed forms, the ring against chance."""

import importlib.util
import math
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

_PATH = pathlib.Path(__file__).resolve().parents[3] / "bench" / "durability.py"
_spec = importlib.util.spec_from_file_location("durability", _PATH)
assert _spec and _spec.loader
durability = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(durability)


@given(st.floats(0.001, 3), st.floats(0.1, 5))
def test_without_repair_one_share_is_an_exponential_lifetime(lam, years):
    assert durability.loss_probability(1, 1, lam, 0.0, years) == pytest.approx(1 - math.exp(-lam * years), rel=1e-9)


@given(st.integers(1, 6), st.floats(0.01, 2))
def test_without_repair_1_of_n_is_losing_every_share(n, lam):
    expected = (1 - math.exp(-lam)) ** n
    assert durability.loss_probability(1, n, lam, 0.0) == pytest.approx(expected, rel=1e-6, abs=1e-300)


@given(st.integers(1, 5), st.integers(0, 5), st.floats(0.01, 1), st.floats(0.1, 200))
def test_repair_and_more_shares_only_help(k, extra, lam, mu):
    n = k + extra
    p = durability.loss_probability(k, n, lam, mu)
    assert 0 <= p <= 1
    assert durability.loss_probability(k, n, lam, 2 * mu) <= p * (1 + 1e-9)
    assert durability.loss_probability(k, n + 1, lam, mu) <= p * (1 + 1e-9)


def test_bad_code_is_refused():
    with pytest.raises(ValueError):
        durability.loss_probability(3, 2, 0.1, 1)


def test_monte_carlo_with_the_real_ring_agrees_with_the_chain():
    observed, expected = durability.monte_carlo(60, 600, 1, 2, lam=1.0, mu=12.0, years=3.0, seed=5)
    assert expected > 50
    assert abs(observed - expected) < 4 * math.sqrt(expected) + 0.1 * expected


def test_the_ring_is_as_even_as_chance():
    ev = durability.ring_evenness(100, 1500, 10)
    assert ev["mean shares per server"] == pytest.approx(150)
    assert 0.7 < ev["variance / binomial variance"] < 1.4


def test_capacity_weighting_fills_every_class_alike_and_the_ring_does_not():
    ring = durability.fill(400, 8000, 4, weighted=False, marks=(0.5,))[0.5]
    weighted = durability.fill(400, 8000, 4, weighted=True, marks=(0.5,))[0.5]
    assert ring["1 TB fill p50"] > 0.95 and ring["16 TB fill p50"] < 0.3
    assert all(0.4 < weighted[f"{c} TB fill p50"] < 0.6 for c in (1, 4, 8, 16))
