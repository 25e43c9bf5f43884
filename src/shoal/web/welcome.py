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

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.web import resource
from twisted.web.server import Request

from shoal.web.common import WebError, render_sync, t_arg
from shoal.web.history import History
from shoal.web.page import size_text
from shoal.web.templating import render

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


def server_view(s: Mapping[str, Any]) -> dict[str, Any]:
    """One server row of the page, every key present."""
    return {"nickname": s.get("nickname") or "", "nodeid": str(s.get("nodeid", "")),
            "connected": bool(s.get("connected")), "connection_status": str(s.get("connection_status", "")),
            "protocol": s.get("protocol") or "", "available_space": s.get("available_space"),
            "last_received_data": s.get("last_received_data"), "version": s.get("version") or ""}


def introducer_view(i: Mapping[str, Any]) -> dict[str, Any]:
    return {"furl": str(i.get("furl", "")), "connected": bool(i.get("connected")),
            "summary": str(i.get("summary", "")), "last_received_data": i.get("last_received_data")}


def welcome_html(source: WelcomeSource, history: History | None = None, tools: bool = False) -> str:
    """The page; `tools`: show the forms that open a cap, create a directory and upload a file."""
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
    ops = ([op.view() for op in [*history.active(), *history.recent()][:RECENT_SHOWN]]
           if history is not None else None)
    return render("welcome.html", title=source.nickname or "Welcome", nickname=source.nickname,
                  nodeid=source.nodeid, version=source.version, cards=cards,
                  servers=[server_view(s) for s in servers], introducers=[introducer_view(i) for i in intros],
                  ops=ops, storage=source.storage_stats is not None, tools=tools)


class WelcomePage(resource.Resource):
    def __init__(self, source: WelcomeSource, history: History | None = None, tools: bool = False) -> None:
        super().__init__()
        self._source = source
        self._history = history
        self._tools = tools

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
        return welcome_html(self._source, self._history, self._tools)
