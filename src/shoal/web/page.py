"""What the node's pages share beyond their templates (shoal/web/templates/): the
navigation bar, and sizes and times as people read them. The pages load nothing
from outside the node (their style sheet and script come from /static)."""

import time

NAV = (("Welcome", "/"), ("Status", "/status/"), ("Storage", "/storage"), ("Statistics", "/statistics"))


def size_text(n: int | float | None) -> str:
    """1536 -> '1.5 KiB'; None -> '?'."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def ago_text(when: float | None, now: float | None = None) -> str:
    """A past moment as '12s ago', '3m ago', '2h ago'; None -> 'never'."""
    if when is None:
        return "never"
    delta = max(0.0, (now if now is not None else time.time()) - when)
    if delta < 60:
        return f"{delta:.0f}s ago"
    if delta < 3600:
        return f"{delta / 60:.0f}m ago"
    if delta < 86400:
        return f"{delta / 3600:.1f}h ago"
    return f"{delta / 86400:.1f}d ago"
