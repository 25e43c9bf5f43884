"""The introducer's web port (`[node] web.port` on an introducer), as Tahoe-LAFS
1.20's web/introweb.py: `/` is "Welcome to the Tahoe-LAFS Introducer" (this
node, the announcement and subscription summaries, the service announcements
and the subscribed clients) and `/?t=json` is {"subscription_summary":
{service: count}, "announcement_summary": {service: count}}; `/static/` serves
the pages' style sheet. Anything else is 404."""

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from twisted.web import http, resource
from twisted.web.server import Request

from shoal.web.common import WebError, render_sync, t_arg
from shoal.web.staticfiles import StaticFiles
from shoal.web.templating import render
from shoal.web.uri import ErrorResource

NAV = (("Welcome", "/"),)


@attrs.frozen
class IntroducerSource:
    """What the page shows, from the node: its id and version, and the introducer
    service's status() ({"announcements": [...], "subscribers": [...]})."""

    nodeid: str
    version: str
    status: Callable[[], Mapping[str, Any]]


def _summary(items: list[Mapping[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(i.get("service_name", "")) for i in items).items()))


def introducer_json(source: IntroducerSource) -> dict[str, Any]:
    status = source.status()
    return {"subscription_summary": _summary(list(status.get("subscribers", []))),
            "announcement_summary": _summary(list(status.get("announcements", [])))}


def introducer_html(source: IntroducerSource, now: float) -> str:
    status = source.status()
    announcements = sorted(status.get("announcements", []),
                           key=lambda a: (str(a.get("service_name", "")), str(a.get("nickname", ""))))
    services = [{"nickname": str(a.get("nickname", "")), "serverid": str(a.get("server_id", "")),
                 "hints": "connection hints: " + " ".join(str(h) for h in a.get("connection_hints", [])),
                 "announced": a.get("announced_at"), "version": str(a.get("version", "")),
                 "service_name": str(a.get("service_name", ""))} for a in announcements]
    subscribers = [{"nickname": str(s.get("nickname", "")), "tubid": str(s.get("tubid", "")),
                    "connected": str(s.get("remote_address", "")), "since": s.get("subscribed_at"),
                    "version": str(s.get("version", "")), "service_name": str(s.get("service_name", ""))}
                   for s in status.get("subscribers", [])]
    summary = introducer_json(source)
    return render("introducer.html", title="Introducer", nav=NAV, nodeid=source.nodeid, version=source.version,
                  announcement_summary=", ".join(f"{k}: {v}" for k, v in summary["announcement_summary"].items()),
                  subscription_summary=", ".join(f"{k}: {v}" for k, v in summary["subscription_summary"].items()),
                  services=services, subscribers=subscribers, now=now)


class IntroducerRoot(resource.Resource):
    def __init__(self, source: IntroducerSource) -> None:
        super().__init__()
        self._source = source
        self.putChild(b"static", StaticFiles())  # type: ignore[arg-type]  # zope interface typing

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            return self
        return ErrorResource(WebError("no such page", http.NOT_FOUND))

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._render(request))

    def _render(self, request: Request) -> str:
        t = t_arg(request)
        if t == "json":
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return json.dumps(introducer_json(self._source), indent=1) + "\n"
        if t not in ("", "html"):
            raise WebError(f"bad t={t} for the introducer's page (json or none)")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return introducer_html(self._source, time.time())
