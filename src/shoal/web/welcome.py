"""The welcome page `/`: HTML for people, `?t=json` in Tahoe-LAFS 1.20's shape.

JSON: {"introducers": {"statuses": [summary, ...]}, "servers": [{"nodeid",
"connection_status", "available_space", "nickname", "version",
"last_received_data"}, ...]}, indented by one space as Tahoe writes it, so
scripts that wait for a Tahoe grid to connect work against shoal. Each server
also says which protocol carries its connection ("protocol": "HTTP" or
"Foolscap"; null before connecting), which Tahoe 1.20's JSON does not say, and
"helper" gives the upload helper connection as Tahoe's HTML does ({"furl": the
FURL without its swissnum or null, "connected": "yes", "no" or
"not-configured", "active_uploads" of this node's own helper or null}).

HTML: the node (nickname, id, version), a summary (servers connected, space
they offer, this node's own storage if it runs a server, operations under
way), the introducers, the storage servers (connection, available space,
last contact) and the recent operations with their progress.
"""

import html
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.web import resource
from twisted.web.server import Request

from shoal.web.common import WebError, render_sync, t_arg
from shoal.web.history import History, OperationStatus
from shoal.web.page import ago_text, page, progress_bar, size_text

# Tahoe's JSON carries exactly these keys per server; shoal adds "protocol".
SERVER_KEYS = ("nodeid", "connection_status", "available_space", "nickname", "version", "last_received_data")
SHOAL_SERVER_KEYS = ("protocol",)
RECENT_SHOWN = 10


class WelcomeSource:
    """What the page shows, supplied by the node (keeps web free of node imports)."""

    def __init__(
        self,
        nodeid: str,
        nickname: str,
        introducer_statuses: Callable[[], Sequence[dict[str, Any]]],
        server_statuses: Callable[[], Sequence[dict[str, Any]]],
        version: str,
        storage_stats: Callable[[], Mapping[str, Any]] | None = None,
        helper_status: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.nodeid = nodeid
        self.nickname = nickname
        self.introducer_statuses = introducer_statuses
        self.server_statuses = server_statuses
        self.version = version
        self.storage_stats = storage_stats
        # {"furl": censored FURL or None, "connected": "yes"/"no"/"not-configured", "active_uploads": int|None}
        self.helper_status = helper_status or (lambda: {"furl": None, "connected": "not-configured"})


def welcome_json(source: WelcomeSource) -> dict[str, Any]:
    return {
        "introducers": {"statuses": [s["summary"] for s in source.introducer_statuses()]},
        "servers": [{k: s.get(k) for k in (*SERVER_KEYS, *SHOAL_SERVER_KEYS)} for s in source.server_statuses()],
        "helper": dict(source.helper_status()),
    }


def _status_class(connected: Any) -> str:
    return "ok" if connected else "bad"


def operations_table(ops: Sequence[OperationStatus], empty: str = "No uploads or downloads yet.") -> str:
    e = html.escape
    if not ops:
        return f"<p class=muted>{html.escape(empty)}</p>"
    rows = []
    now = time.time()
    for op in ops:
        took = op.timings.get("total")
        rows.append(
            f"<tr><td>{e(op.kind)}</td><td class=num>{e(size_text(op.size))}</td>"
            f"<td>{progress_bar(op.progress())}</td><td>{e(op.status)}</td>"
            f"<td>{e(ago_text(op.started, now))}</td>"
            f"<td class=num>{'' if took is None else f'{took:.2f}s'}</td>"
            f"<td>{e(', '.join(op.servers[:6]))}{' ...' if len(op.servers) > 6 else ''}</td></tr>"
        )
    return (
        "<table><tr><th>Operation</th><th class=num>Size</th><th>Progress</th><th>Status</th>"
        "<th>Started</th><th class=num>Took</th><th>Servers</th></tr>" + "".join(rows) + "</table>"
    )


def welcome_html(source: WelcomeSource, history: History | None = None) -> str:
    e = html.escape
    now = time.time()
    intros = source.introducer_statuses()
    servers = source.server_statuses()
    connected = [s for s in servers if s.get("connected")]
    offered = sum(s.get("available_space") or 0 for s in connected)
    cards = [
        ("Storage servers", f"{len(connected)} of {len(servers)} connected"),
        ("Space offered", size_text(offered) if connected else "-"),
        ("Introducers", f"{sum(1 for i in intros if i.get('connected'))} of {len(intros)} connected"),
    ]
    own = source.storage_stats() if source.storage_stats else None
    if own:
        cards.append(("This node stores", size_text(own.get("storage_server.used_space"))))
        cards.append(("Disk available here", size_text(own.get("storage_server.disk_avail"))))
    helper = source.helper_status()
    cards.append(("Helper", {"yes": "connected", "no": "not connected"}.get(helper["connected"], "not configured")))
    if helper.get("active_uploads") is not None:
        cards.append(("This node's helper", f"{helper['active_uploads']} active uploads"))
    if history is not None:
        cards.append(("Operations under way", str(len(history.active()))))
    card_html = "".join(f"<div class=card><div class=muted>{e(k)}</div><div class=v>{e(v)}</div></div>"
                        for k, v in cards)
    server_rows = "".join(
        f"<tr><td>{e(str(s.get('nickname') or ''))}</td><td><code>{e(str(s['nodeid']))}</code></td>"
        f"<td class={_status_class(s.get('connected'))}>{e(str(s['connection_status']))}</td>"
        f"<td>{e(str(s.get('protocol') or ''))}</td>"
        f"<td class=num>{e(size_text(s.get('available_space')))}</td>"
        f"<td>{e(ago_text(s.get('last_received_data'), now))}</td>"
        f"<td>{e(str(s.get('version') or ''))}</td></tr>"
        for s in servers
    ) or "<tr><td colspan=7 class=muted>No storage servers known yet.</td></tr>"
    intro_rows = "".join(
        f"<tr><td><code>{e(str(i.get('furl', ''))[:60])}</code></td>"
        f"<td class={_status_class(i.get('connected'))}>{e(str(i['summary']))}</td>"
        f"<td>{e(ago_text(i.get('last_received_data'), now))}</td></tr>"
        for i in intros
    ) or "<tr><td colspan=3 class=muted>No introducers configured.</td></tr>"
    ops = operations_table([*history.active(), *history.recent()][:RECENT_SHOWN]) if history is not None else ""
    body = f"""<h1>{e(source.nickname or 'shoal node')}</h1>
<p class=muted>Node ID <code>{e(source.nodeid)}</code> &middot; {e(source.version)}
&middot; JSON: <a href="?t=json">?t=json</a></p>
<div class=cards>{card_html}</div>
<h2>Storage servers</h2>
<table><tr><th>Nickname</th><th>Node ID</th><th>Connection</th><th>Protocol</th><th class=num>Available space</th>
<th>Last contact</th><th>Version</th></tr>{server_rows}</table>
<h2>Introducers</h2>
<table><tr><th>Introducer</th><th>Status</th><th>Last received</th></tr>{intro_rows}</table>
<h2>Recent operations</h2>
{ops}
<p class=muted>More on the <a href="/status/">status page</a>.</p>"""
    return page(source.nickname or "Welcome", body)


class WelcomePage(resource.Resource):
    def __init__(self, source: WelcomeSource, history: History | None = None) -> None:
        super().__init__()
        self._source = source
        self._history = history

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            return self
        return resource.NoResource("no such page")

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._render(request))

    def _render(self, request: Request) -> str:
        t = t_arg(request)
        if t == "json":
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            return json.dumps(welcome_json(self._source), indent=1) + "\n"
        if t not in ("", "html"):
            raise WebError("bad t= value for the welcome page")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return welcome_html(self._source, self._history)
