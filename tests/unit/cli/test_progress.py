"""Progress bars: only on a terminal, only after a second, on the stream given (stderr)."""

import io

from shoal.cli.progress import Transfer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_bar_before_the_delay_then_a_bar_with_the_bytes():
    clock, out = Clock(), io.StringIO()
    with Transfer("put big.bin", 10 * 1024 * 1024, stream=out, clock=clock, force_terminal=True) as t:
        t(1024 * 1024)
        clock.now += 0.9
        t(1024 * 1024)
        assert not t.shown and out.getvalue() == ""
        clock.now += 0.2
        t(3 * 1024 * 1024)
        assert t.shown
    text = out.getvalue()
    assert "put big.bin" in text and "5.0/10.0 MiB" in text


def test_never_a_bar_when_not_a_terminal():
    clock, out = Clock(), io.StringIO()
    with Transfer("get x", None, stream=out, clock=clock) as t:
        clock.now += 5
        t(100)
        assert not t.shown
    assert out.getvalue() == "" and t.done == 100


def test_quick_transfers_show_nothing_even_on_a_terminal():
    out = io.StringIO()
    with Transfer("put small", 10, stream=out, force_terminal=True) as t:
        t(10)
    assert out.getvalue() == ""
