"""`/status/`: what the client node is doing and did lately (see shoal.web.history),
with Tahoe-LAFS 1.20's page names and wording (its web/status.py and *-status.xhtml).

`/status/` (HTML: "Recent and Active Operations", and `?t=json`:
{"active": [...], "recent": [...]}, the items in Tahoe's shape plus shoal's fields;
"checker-job" when the node's [checker] job runs). One operation is
`/status/up-N` ("File Upload Status"), `/status/down-N` ("File Download Status"),
`/status/publish-N` ("Mutable File Publish Status"), `/status/retrieve-N`
("Mutable File Retrieve Status") or `/status/mapupdate-N` ("Mutable File
Servermap Update Status"), each with `?t=json` too; shoal's older `/status/N`
still answers.
"""

import json
from collections.abc import Callable
from typing import Any

from twisted.web import http, resource
from twisted.web.server import Request

from shoal.encoding import digits
from shoal.web.common import WebError, render_sync, t_arg
from shoal.web.history import LINK_PREFIX, History, OperationStatus
from shoal.web.page import size_text
from shoal.web.templating import render

HEADINGS = {
    "up": ("File Upload Status", "Upload Results"),
    "down": ("File Download Status", "Download Results"),
    "publish": ("Mutable File Publish Status", "Publish Results"),
    "retrieve": ("Mutable File Retrieve Status", "Retrieve Results"),
    "mapupdate": ("Mutable File Servermap Update Status", "Servermap Update Results"),
}
MAX_NAME = 40  # bytes of a /status/ child name worth parsing


def list_view(op: OperationStatus) -> dict[str, Any]:
    """A row of Tahoe's status table: its Type, Total Size and Progress texts, and shoal's timings."""
    view = op.view()
    data = op.as_json()
    view["type"] = op.kind
    view["total_size"] = "(unknown)" if op.size is None else size_text(op.size)
    if op.kind == "upload":
        view["progress_text"] = "hash: {:.1f}%, ciphertext: {:.1f}%, encode: {:.1f}%".format(
            *(100.0 * data[k] for k in ("progress-hash", "progress-ciphertext", "progress-encode-push")))
    else:
        view["progress_text"] = f"{100.0 * op.progress():.1f}%"
    view["timings"] = ", ".join(f"{k} {v:.2f}s" for k, v in op.timings.items())
    return view


def status_html(history: History, checker: dict[str, Any] | None) -> str:
    active = history.active()
    return render("status.html", title="Recent and Active Operations", refresh=5 if active else None,
                  active=[list_view(op) for op in active], recent=[list_view(op) for op in history.recent()],
                  checker=checker)


def operation_html(op: OperationStatus) -> str:
    page = LINK_PREFIX.get(op.kind, "publish")
    heading, results = HEADINGS.get(page, HEADINGS["publish"])
    return render("op_status.html", title=heading, refresh=5 if op.active else None, heading=heading,
                  results_heading=results, page=page, op=op.view(), progress=op.as_json())


def find_operation(history: History, name: bytes) -> OperationStatus | None:
    """The operation a /status/ child names: up-N, down-N, ... (its kind must match), or N."""
    if len(name) > MAX_NAME:
        return None
    prefix, dash, number = name.decode("ascii", "replace").rpartition("-")
    if not number.isascii() or not number.isdigit():
        return None
    wanted = digits.clamped(number)
    if str(wanted) != number:  # one name per page: no leading zeros
        return None
    op = next((o for o in [*history.active(), *history.recent()] if o.id == wanted), None)
    if op is None or (dash and LINK_PREFIX.get(op.kind, op.kind) != prefix):
        return None
    return op


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
        checker = self._checker_status() if self._checker_status is not None else None
        if t == "json":
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            data = self._history.as_json()
            if checker is not None:
                data["checker-job"] = checker
            return json.dumps(data, indent=1) + "\n"
        if t not in ("", "html"):
            raise WebError(f"bad t={t} for /status (json or none)")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return status_html(self._history, checker)


class _OnePage(resource.Resource):
    isLeaf = True

    def __init__(self, history: History, name: bytes) -> None:
        super().__init__()
        self._history = history
        self._name = name

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._render(request))

    def _render(self, request: Request) -> str:
        op = find_operation(self._history, self._name)
        if op is None:
            raise WebError("no such operation (it may have been forgotten)", http.NOT_FOUND)
        if t_arg(request) == "json":
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            return json.dumps(op.as_json(), indent=1) + "\n"
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return operation_html(op)
