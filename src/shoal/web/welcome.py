"""The welcome page `/`: HTML for people, `?t=json` in Tahoe-LAFS 1.20's shape.

JSON: {"introducers": {"statuses": [summary, ...]}, "servers": [{"nodeid",
"connection_status", "available_space", "nickname", "version",
"last_received_data"}, ...]}, indented by one space as Tahoe writes it, so
scripts that wait for a Tahoe grid to connect work against shoal.
"""

import html
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.web import resource
from twisted.web.server import Request

# Tahoe's JSON carries exactly these keys per server.
SERVER_KEYS = ("nodeid", "connection_status", "available_space", "nickname", "version", "last_received_data")


class WelcomeSource:
    """What the page shows, supplied by the node (keeps web free of node imports)."""

    def __init__(
        self,
        nodeid: str,
        nickname: str,
        introducer_statuses: Callable[[], Sequence[dict[str, Any]]],
        server_statuses: Callable[[], Sequence[dict[str, Any]]],
        version: str,
    ) -> None:
        self.nodeid = nodeid
        self.nickname = nickname
        self.introducer_statuses = introducer_statuses
        self.server_statuses = server_statuses
        self.version = version


def welcome_json(source: WelcomeSource) -> dict[str, Any]:
    return {
        "introducers": {"statuses": [s["summary"] for s in source.introducer_statuses()]},
        "servers": [{k: s.get(k) for k in SERVER_KEYS} for s in source.server_statuses()],
    }


def _when(t: float | None) -> str:
    if t is None:
        return "N/A"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def welcome_html(source: WelcomeSource) -> str:
    e = html.escape
    intros = source.introducer_statuses()
    servers = source.server_statuses()
    connected = sum(1 for s in servers if s.get("connected"))
    rows = "".join(
        f"<tr><td>{e(str(s.get('nickname') or ''))}</td><td><code>{e(str(s['nodeid']))}</code></td>"
        f"<td>{e(str(s['connection_status']))}</td><td>{e(str(s.get('available_space')))}</td>"
        f"<td>{e(str(s.get('version') or ''))}</td><td>{e(_when(s.get('last_received_data')))}</td></tr>"
        for s in servers
    )
    intro_rows = "".join(
        f"<tr><td><code>{e(str(i.get('furl', '')))}</code></td><td>{e(str(i['summary']))}</td>"
        f"<td>{e(_when(i.get('last_received_data')))}</td></tr>"
        for i in intros
    )
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>shoal - {e(source.nickname)}</title></head>
<body>
<h1>shoal node {e(source.nickname)}</h1>
<p>Node ID <code>{e(source.nodeid)}</code>, {e(source.version)}</p>
<h2>Introducers ({sum(1 for i in intros if i.get('connected'))} of {len(intros)} connected)</h2>
<table border="1"><tr><th>Introducer</th><th>Status</th><th>Last received</th></tr>{intro_rows}</table>
<h2>Storage servers ({connected} of {len(servers)} connected)</h2>
<table border="1"><tr><th>Nickname</th><th>Node ID</th><th>Connection</th><th>Available space</th>
<th>Version</th><th>Last received</th></tr>{rows}</table>
</body></html>
"""


class WelcomePage(resource.Resource):
    def __init__(self, source: WelcomeSource) -> None:
        super().__init__()
        self._source = source

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            return self
        return resource.NoResource("no such page")

    def render_GET(self, request: Request) -> bytes:
        t = (request.args or {}).get(b"t", [b""])[0]
        if t == b"json":
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            return (json.dumps(welcome_json(self._source), indent=1) + "\n").encode("utf-8")
        if t not in (b"", b"html"):
            request.setResponseCode(400)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"bad t= value for the welcome page\n"
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return welcome_html(self._source).encode("utf-8")
