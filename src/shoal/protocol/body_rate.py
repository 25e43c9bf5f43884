"""The minimum body rate of an HTTP request (slowloris on the body): a pure meter.

Twisted's idle timeout is reset by every byte, so a body sent one byte every
59 s was bounded only by its size limit. The policy: a request body must
deliver at least ``min_rate`` bytes per second in every window of
``window`` seconds, counted from the end of its headers; a window in which
the server itself paused the sender (back-pressure from a spool) does not
count. The first window is the grace period (a connection warming up).

The meter knows no sockets or clocks: the caller passes ``now`` and calls
:meth:`BodyRateMeter.check` at least once a window (``policy.check_every``);
a non-None answer is the reason to close the connection.
"""

import attrs

__all__ = ["DEFAULT_MIN_RATE", "DEFAULT_WINDOW", "BodyRateMeter", "BodyRatePolicy"]

DEFAULT_MIN_RATE = 1024  # bytes per second: a poor mobile link sends 10x that
DEFAULT_WINDOW = 30  # seconds


@attrs.frozen
class BodyRatePolicy:
    """``min_rate`` bytes/s in every ``window`` s of a body; ``min_rate`` 0 turns the check off."""

    min_rate: int = attrs.field(default=DEFAULT_MIN_RATE, validator=attrs.validators.ge(0))
    window: float = attrs.field(default=DEFAULT_WINDOW, validator=attrs.validators.gt(0))

    @property
    def enabled(self) -> bool:
        return self.min_rate > 0

    @property
    def check_every(self) -> float:
        """How often the caller should call check (a window end is then missed by at most this)."""
        return min(self.window, 1.0)


class BodyRateMeter:
    """Counts one request body's bytes per window; see the module doc."""

    def __init__(self, policy: BodyRatePolicy, now: float) -> None:
        self.policy = policy
        self._window_start = now
        self._in_window = 0
        self.total = 0

    def received(self, n: int) -> None:
        self._in_window += n
        self.total += n

    def excuse(self, now: float) -> None:
        """The server paused the sender: the current window starts again from now."""
        self._window_start = now
        self._in_window = 0

    def check(self, now: float) -> str | None:
        """None while the body keeps the rate; the reason (no secrets in it) once a window fell short."""
        if not self.policy.enabled:
            return None
        elapsed = now - self._window_start
        if elapsed < self.policy.window:
            return None
        needed = self.policy.min_rate * elapsed
        if self._in_window < needed:
            return (f"request body too slow: {self._in_window} bytes in {elapsed:.0f} s "
                    f"(at least {self.policy.min_rate} bytes/s needed)")
        self._window_start = now
        self._in_window = 0
        return None
