"""Times and sizes as Tahoe-LAFS 1.20 writes them for people (its util/abbreviate.py):
"119 seconds", "179 minutes", "3 hours", "2 days", "3 months", "5 years"; "1.02 kB"
(SI) or "1.00 kiB" (binary, Tahoe's spelling); "unknown" for a missing figure. Pages and the CLI that
show Tahoe's texts use these, so a script reading either implementation sees the same."""

from datetime import timedelta

MINUTE = 60
HOUR = 3600
DAY = 24 * HOUR
MONTH = 30 * DAY
YEAR = 365 * DAY


def _plural(count: float, unit: str, postfix: str) -> str:
    n = int(count)
    return f"{n} {unit}{'' if n == 1 else 's'}{postfix}"


def abbreviate_time(value: float | timedelta | None) -> str:
    """Seconds as English; a timedelta reads as a distance from now ("... ago" when
    positive, "... in the future" when negative), as Tahoe's does."""
    if value is None:
        return "unknown"
    postfix = ""
    if isinstance(value, timedelta):
        s = value.total_seconds()
        postfix = " ago" if s >= 0 else " in the future"
        s = abs(s)
    else:
        s = float(value)
    if s < 120:
        return _plural(s, "second", postfix)
    if s < 3 * HOUR:
        return _plural(s / MINUTE, "minute", postfix)
    if s < 2 * DAY:
        return _plural(s / HOUR, "hour", postfix)
    if s < 2 * MONTH:
        return _plural(s / DAY, "day", postfix)
    if s < 4 * YEAR:
        return _plural(s / MONTH, "month", postfix)
    return _plural(s / YEAR, "year", postfix)


def abbreviate_space(n: float | None, si: bool = True) -> str:
    """Bytes as "999 B", "1.02 kB" (si) or "1.00 kiB"; sizes up to 1023 stay in bytes."""
    if n is None:
        return "unknown"
    unit, suffix = (1000.0, "B") if si else (1024.0, "iB")
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for prefix in ("k", "M", "G", "T", "P"):
        value /= unit
        if value < unit:
            return f"{value:.2f} {prefix}{suffix}"
    return f"{value / unit:.2f} E{suffix}"
