"""The HTML frame of the node's pages: one inline style sheet, a navigation bar,
no scripts and no external assets (the pages work offline and under a strict CSP)."""

import html
import time

CSS = """
:root { --fg: #1d2330; --muted: #5b6474; --line: #d8dde6; --bg: #f6f7f9; --accent: #2457a6;
        --ok: #1f7a3a; --bad: #a8321e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
header { background: #1d2330; color: #fff; padding: .6em 1.5em; display: flex; gap: 1.5em;
         align-items: baseline; flex-wrap: wrap; }
header b { font-size: 1.15em; letter-spacing: .02em; }
header a { color: #cfd8ea; text-decoration: none; }
header a:hover { color: #fff; }
main { max-width: 72em; margin: 0 auto; padding: 1em 1.5em 3em; }
h1 { font-size: 1.5em; margin: .6em 0 .3em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; }
.muted { color: var(--muted); }
.cards { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .7em 1em;
        min-width: 11em; }
.card .v { font-size: 1.4em; font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35em .7em; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 13px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.bar { background: #e3e7ee; border-radius: 3px; height: .7em; width: 8em; display: inline-block;
       vertical-align: middle; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--accent); }
form { margin: .5em 0; }
"""

NAV = (("Welcome", "/"), ("Status", "/status/"), ("Statistics", "/statistics"))


def page(title: str, body: str, *, refresh: int | None = None) -> str:
    """A whole HTML document around `body` (already escaped HTML)."""
    nav = "".join(f'<a href="{href}">{html.escape(name)}</a>' for name, href in NAV)
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{meta}'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} - shoal</title><style>{CSS}</style></head>"
        f"<body><header><b>shoal</b>{nav}</header><main>{body}</main></body></html>\n"
    )


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


def progress_bar(fraction: float) -> str:
    pct = max(0.0, min(1.0, fraction)) * 100
    return f'<span class="bar" title="{pct:.0f}%"><span style="width:{pct:.0f}%"></span></span> {pct:.0f}%'
