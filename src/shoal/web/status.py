"""`/status/`: what the client node is doing and did lately (see shoal.web.history).

HTML for people (active and recent operations with progress, sizes, timings,
servers used; reloads itself while something runs) and `?t=json`:
{"active": [...], "recent": [...]}, the items in Tahoe-LAFS 1.20's shape
plus shoal's fields. `/status/N` is one operation (`?t=json` too).
"""

import html
import json
import time
from collections.abc import Callable
from typing import Any

from twisted.web import http, resource
from twisted.web.server import Request

from shoal.encoding import digits
from shoal.web.common import WebError, render_sync, t_arg
from shoal.web.history import History, OperationStatus
from shoal.web.page import ago_text, page, progress_bar, size_text
from shoal.web.welcome import operations_table


class StatusPage(resource.Resource):
    def __init__(self, history: History, checker_status: Callable[[], dict[str, Any]] | None = None) -> None:
        super().__init__()
        self._history = history
        self._checker_status = checker_status

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            return self
        return _OnePage(self._history, path)

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._render(request))

    render_POST = render_GET  # `tahoe status` POSTs its t=json (and the API token)

    def _render(self, request: Request) -> str:
        t = t_arg(request)
        if t == "json":
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            data = self._history.as_json()
            if self._checker_status is not None:
                data["checker-job"] = self._checker_status()
            return json.dumps(data, indent=1) + "\n"
        if t not in ("", "html"):
            raise WebError(f"bad t={t} for /status (json or none)")
        active = self._history.active()
        body = (
            "<h1>Recent and active operations</h1>"
            "<p class=muted>Also as <a href='?t=json'>JSON</a>.</p>"
            f"<h2>Active ({len(active)})</h2>{operations_table(active, 'Nothing running right now.')}"
            f"<h2>Recent</h2>{_detail_table(self._history.recent())}"
            + _checker_section(self._checker_status)
        )
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return page("Status", body, refresh=5 if active else None)


def _checker_section(status: Callable[[], dict[str, Any]] | None) -> str:
    """The node's checker job ([checker] in tahoe.cfg): this round's progress, the last report."""
    if status is None:
        return "<h2>Checker job</h2><p class=muted>Not enabled ([checker] enabled = true in tahoe.cfg).</p>"
    st = status()
    e = html.escape
    now = "running" if st["round-in-progress"] else "idle"
    text = (f"<h2>Checker job</h2><p>Round {st['round']}: {now}, root {st['root-index'] + 1} of {st['roots']}, "
            f"{st['objects-done-in-root']} objects done in this root.</p>")
    report = st.get("last-report")
    if report:
        rows = "".join(f"<tr><td>{e(str(k))}</td><td class=num>{e(str(v))}</td></tr>"
                       for k, v in report.items() if k not in ("started", "finished", "round"))
        finished = ago_text(float(report["finished"]))
        text += f"<p>Last round ({report['round']}) finished {e(finished)}.</p><table>{rows}</table>"
    else:
        text += "<p class=muted>No round has finished yet.</p>"
    return text


def _detail_table(ops: list[OperationStatus]) -> str:
    if not ops:
        return "<p class=muted>Nothing finished yet.</p>"
    e = html.escape
    now = time.time()
    rows = []
    for op in ops:
        timings = ", ".join(f"{k} {v:.2f}s" for k, v in op.timings.items())
        si = json.dumps(op.as_json()["storage-index-string"]).strip('"')
        rows.append(
            f"<tr><td><a href='/status/{op.id}'>{e(op.kind)} #{op.id}</a></td>"
            f"<td class=num>{e(size_text(op.size))}</td><td>{progress_bar(op.progress())}</td>"
            f"<td>{e(op.status)}</td><td>{e(ago_text(op.started, now))}</td><td>{e(timings)}</td>"
            f"<td>{e(', '.join(op.servers))}</td><td><code>{e(si[:12])}</code></td></tr>"
        )
    return (
        "<table><tr><th>Operation</th><th class=num>Size</th><th>Progress</th><th>Status</th>"
        "<th>Started</th><th>Timings</th><th>Servers used</th><th>Storage index</th></tr>"
        + "".join(rows) + "</table>"
    )


class _OnePage(resource.Resource):
    isLeaf = True

    def __init__(self, history: History, name: bytes) -> None:
        super().__init__()
        self._history = history
        self._name = name

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._render(request))

    def _render(self, request: Request) -> str:
        op = None
        if self._name.isdigit():  # ASCII digits (bytes)
            wanted = digits.clamped(self._name.decode("ascii"))
            op = next((o for o in [*self._history.active(), *self._history.recent()] if o.id == wanted), None)
        if op is None:
            raise WebError("no such operation (it may have been forgotten)", http.NOT_FOUND)
        data = op.as_json()
        if t_arg(request) == "json":
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            return json.dumps(data, indent=1) + "\n"
        e = html.escape
        rows = "".join(f"<tr><th>{e(k)}</th><td><code>{e(json.dumps(v))}</code></td></tr>" for k, v in data.items())
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return page(f"{op.kind} #{op.id}", f"<h1>{e(op.kind)} #{op.id}</h1><table>{rows}</table>")
