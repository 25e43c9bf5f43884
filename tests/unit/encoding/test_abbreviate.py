"""shoal.encoding.abbreviate against the texts Tahoe-LAFS 1.20 writes (its own
test_abbreviate.py's table of cases)."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.encoding.abbreviate import (
    DAY,
    HOUR,
    MINUTE,
    MONTH,
    YEAR,
    abbreviate_space,
    abbreviate_time,
)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "unknown"), (0, "0 seconds"), (1, "1 second"), (2, "2 seconds"), (119, "119 seconds"),
    (2 * MINUTE, "2 minutes"), (60 * MINUTE, "60 minutes"), (179 * MINUTE, "179 minutes"),
    (180 * MINUTE, "3 hours"), (4 * HOUR, "4 hours"), (2 * DAY, "2 days"), (2 * MONTH, "2 months"),
    (5 * YEAR, "5 years"), (119.9, "119 seconds"),
])
def test_time_as_tahoe_writes_it(seconds, text):
    assert abbreviate_time(seconds) == text


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=1), "1 second ago"), (timedelta(seconds=25), "25 seconds ago"),
    (timedelta(minutes=-5), "5 minutes in the future"), (timedelta(hours=4), "4 hours ago"),
    (timedelta(hours=49), "2 days ago"), (timedelta(days=91), "3 months ago"),
    (timedelta(weeks=5 * 52 + 1), "5 years ago"),
])
def test_a_timedelta_reads_as_a_distance_from_now(delta, text):
    assert abbreviate_time(delta) == text


@pytest.mark.parametrize(("n", "si", "binary"), [
    (None, "unknown", "unknown"), (0, "0 B", "0 B"), (1, "1 B", "1 B"), (999, "999 B", "999 B"),
    (1000, "1000 B", "1000 B"), (1023, "1023 B", "1023 B"), (1024, "1.02 kB", "1.00 kiB"),
    (20 * 1000, "20.00 kB", None), (20 * 1024, None, "20.00 kiB"), (1000 * 1000, "1.00 MB", "976.56 kiB"),
    (1024 * 1024, "1.05 MB", "1.00 MiB"), (10**9, "1.00 GB", None), (1024**3, None, "1.00 GiB"),
    (10**12, "1.00 TB", None), (1024**4, None, "1.00 TiB"), (10**15, "1.00 PB", "909.49 TiB"),
    (1024**5, None, "1.00 PiB"), (10**18, "1.00 EB", None), (1024**6, None, "1.00 EiB"),
    (1234567890123456789, "1.23 EB", "1.07 EiB"), (1234567, "1.23 MB", "1.18 MiB"),
])
def test_space_as_tahoe_writes_it(n, si, binary):
    if si is not None:
        assert abbreviate_space(n, si=True) == si
    if binary is not None:
        assert abbreviate_space(n, si=False) == binary


@given(st.integers(min_value=0, max_value=2**70), st.booleans())
def test_space_is_one_number_and_a_unit(n, si):
    number, unit = abbreviate_space(n, si=si).split(" ")
    assert float(number) >= 0 and unit.endswith("B")
    if n >= 1024:
        # two decimals, as Tahoe prints them: a value just under the next unit rounds up to 1000.00 (1024.00)
        assert 0.99 <= float(number) <= (1000 if si else 1024) or unit.startswith("E")


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_time_never_grows_a_smaller_unit_past_its_range(s):
    count, unit = abbreviate_time(s).split(" ")
    assert int(count) >= 0 and unit.rstrip("s") in {"second", "minute", "hour", "day", "month", "year"}
