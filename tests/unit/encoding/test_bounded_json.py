"""The bounded JSON loader and the clamped decimal reader (issue #15: 500s for
deeply nested JSON and for numbers past Python's 4,300-digit int limit)."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.encoding import bounded_json, digits
from shoal.encoding.bounded_json import BadJSONError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_ordinary_documents_load_as_json_does(value):
    text = json.dumps(value)
    assert bounded_json.loads(text) == json.loads(text) == bounded_json.loads(text.encode("utf-8"))


@given(st.binary(max_size=60) | st.text(max_size=60))
def test_anything_else_is_bad_json_and_never_another_error(data):
    try:
        bounded_json.loads(data)
    except BadJSONError:
        pass


@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 65 + "]" * 65, '{"a":' * 70 + "1" + "}" * 70,
                                  "1" * 5000, "[" + "9" * 101 + "]", "-" + "1" * 200, "\xff"])
def test_deep_nesting_and_long_numbers_are_refused(text):
    with pytest.raises(BadJSONError):
        bounded_json.loads(text)
    assert isinstance(BadJSONError("x"), ValueError)


def test_limits():
    assert bounded_json.loads("[" * 64 + "]" * 64) is not None
    assert bounded_json.loads("9" * 100) == int("9" * 100)
    with pytest.raises(BadJSONError, match="at most 10"):
        bounded_json.loads(b"[1, 2, 3, 4]", max_size=10)


@given(st.integers(0, 10**40))
def test_clamped_is_int_up_to_the_ceiling(n):
    assert digits.clamped(str(n)) == min(n, digits.CEILING)
    assert digits.clamped("0" * 50 + str(n)) == min(n, digits.CEILING)


@pytest.mark.parametrize("text", ["", "-1", "+1", "1_000", " 1", "\u0661", "1.0"])
def test_clamped_takes_ascii_digits_only(text):
    with pytest.raises(ValueError):
        digits.clamped(text)


def test_clamped_huge():
    assert digits.clamped("9" * 100_000) == digits.CEILING
