"""`/operations/$HANDLE`: long operations started with `ophandle=`, as Tahoe-LAFS 1.20 keeps them.

A request that carries `ophandle=HANDLE` starts its operation, answers at
once with a redirect (302) to /operations/HANDLE (plus `output=` if given),
and the operation runs on. GET /operations/HANDLE (t=status, the default)
shows its state: `output=json` gives {"finished": bool, ...the operation's
result fields...}, otherwise an HTML page that reloads itself while the
operation runs; a deep-stats operation answers its JSON whatever output=
says (text/plain), as Tahoe's does. `retain-for=SECONDS` sets how long the handle lives,
`release-after-complete=true` drops it once read after completion, and
POST ?t=cancel stops the operation and drops the handle. Unknown handles
answer 404 "unknown/expired handle". Handles live 4 days if never collected
after completion and 1 day after the first read of a finished result, as in
Tahoe.
"""

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from twisted.internet import defer, reactor
from twisted.python import log
from twisted.web import http, resource
from twisted.web.server import Request

from shoal.web.common import WebError, arg, bool_arg, humanize, render_sync, t_arg
from shoal.web.templating import render

DAY = 24 * 3600
UNCOLLECTED_LIFETIME = 4 * DAY
COLLECTED_LIFETIME = 1 * DAY

# an operation: given a progress dict to update, returns its result fields (JSON-ready)
Operation = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Monitor:
    """One operation under a handle: its progress, result or error, and cancellation."""

    def __init__(self, handle: str, kind: str) -> None:
        self.handle = handle
        self.kind = kind
        self.started = time.time()
        self.progress: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.finished: float | None = None
        self.deferred: defer.Deferred[None] | None = None

    @property
    def is_finished(self) -> bool:
        return self.finished is not None

    def cancel(self) -> None:
        if self.deferred is not None and not self.is_finished:
            self.deferred.cancel()

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"finished": self.is_finished, "operation": self.kind, "started": self.started}
        if self.result is not None:
            data.update(self.result)
        else:
            data.update(self.progress)
        if self.error is not None:
            text, code = humanize(self.error)
            data["error"] = text
            data["error-code"] = code
        return data


class OperationTable(resource.Resource):
    """Renders /operations/HANDLE; `start()` registers an operation under a handle."""

    def __init__(self, clock: Any = None) -> None:
        super().__init__()
        self._clock: Any = clock or reactor
        self.handles: dict[str, Monitor] = {}
        self._timers: dict[str, Any] = {}

    def start(self, request: Request, kind: str, operation: Operation) -> bytes:
        """Start `operation` under the request's ophandle=; answer with the redirect."""
        handle = arg(request, "ophandle") or ""
        if not handle:
            raise WebError("an ophandle= is needed")
        if handle in self.handles and not self.handles[handle].is_finished:
            raise WebError(f"ophandle {handle!r} is already in use", http.CONFLICT)
        retain = _retain_for(request)
        monitor = Monitor(handle, kind)
        self.handles[handle] = monitor

        async def run() -> None:
            try:
                monitor.result = await operation(monitor.progress)
            except defer.CancelledError as e:
                monitor.error = WebError("operation cancelled", http.GONE)
                del e
            except Exception as e:
                monitor.error = e
                if humanize(e)[1] == http.INTERNAL_SERVER_ERROR:
                    log.err(e, f"operation {handle} failed")
            finally:
                monitor.finished = time.time()
                if handle not in self._timers:
                    self._set_timer(handle, max(UNCOLLECTED_LIFETIME, monitor.finished - monitor.started))

        if retain is not None:
            self._set_timer(handle, retain)
        monitor.deferred = defer.ensureDeferred(run())
        target = "/operations/" + quote(handle, safe="")
        output = arg(request, "output")
        if output:
            target += "?output=" + quote(output, safe="")
        request.redirect(target.encode("ascii"))
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return f"operation started: {target}\n".encode()

    def _set_timer(self, handle: str, when: float) -> None:
        old = self._timers.pop(handle, None)
        if old is not None and old.active():
            old.cancel()
        self._timers[handle] = self._clock.callLater(when, self.release, handle)

    def release(self, handle: str) -> None:
        timer = self._timers.pop(handle, None)
        if timer is not None and timer.active():
            timer.cancel()
        self.handles.pop(handle, None)

    def stop(self) -> None:
        for handle in list(self._timers):
            self.release(handle)

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            return self
        return _HandlePage(self, path.decode("utf-8", "replace"))

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, self._listing)

    def _listing(self) -> bytes:
        raise WebError("/operations needs a handle: /operations/HANDLE", http.NOT_FOUND)


def _retain_for(request: Request) -> int | None:
    value = arg(request, "retain-for")
    if value is None:
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise WebError(f"invalid retain-for= argument: {value!r}") from None
    if seconds < 0:
        raise WebError(f"invalid retain-for= argument: {value!r}")
    return seconds


class _HandlePage(resource.Resource):
    isLeaf = True

    def __init__(self, table: OperationTable, handle: str) -> None:
        super().__init__()
        self._table = table
        self._handle = handle

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._status(request))

    def render_POST(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._post(request))

    def _monitor(self) -> Monitor:
        monitor = self._table.handles.get(self._handle)
        if monitor is None:
            raise WebError(f"unknown/expired handle '{self._handle}'", http.NOT_FOUND)
        return monitor

    def _post(self, request: Request) -> bytes:
        monitor = self._monitor()
        t = t_arg(request)
        if t != "cancel":
            raise WebError(f"POST to an operation: bad t={t} (only t=cancel)")
        monitor.cancel()
        self._table.release(self._handle)
        return self._render(request, monitor)

    def _status(self, request: Request) -> bytes:
        monitor = self._monitor()
        t = t_arg(request, "status")
        if t != "status":
            raise WebError(f"GET an operation: bad t={t} (only t=status)")
        retain = _retain_for(request)
        if retain is not None:
            self._table._set_timer(self._handle, retain)
        if monitor.is_finished:
            if bool_arg(request, "release-after-complete"):
                self._table.release(self._handle)
            elif retain is None:
                self._table._set_timer(self._handle, COLLECTED_LIFETIME)
        return self._render(request, monitor)

    def _render(self, request: Request, monitor: Monitor) -> bytes:
        output = (arg(request, "output") or "html").lower()
        data = monitor.as_json()
        if monitor.kind == "start-deep-stats":
            # Tahoe 1.20 (web/directory.py DeepStatsResults): "JSON only", whatever output= says,
            # typed text/plain: the stats so far and "finished"
            request.setHeader(b"content-type", b"text/plain")
            return json.dumps(data, indent=1).encode("utf-8")
        if output == "json":
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            return (json.dumps(data, indent=1) + "\n").encode("utf-8")
        if output == "text":
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return "".join(f"{k}: {v}\n" for k, v in data.items()).encode("utf-8")
        state = "finished" if monitor.is_finished else "still running"
        rows = [(str(k), json.dumps(v)[:2000]) for k, v in data.items()]
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return render("table.html", title=f"Operation {monitor.handle}", heading=f"Operation {monitor.handle}",
                      lead=f"{monitor.kind}: {state}", links=[("JSON", "?output=json")], columns=(), rows=rows,
                      numeric=False, pre=None, cancel=not monitor.is_finished,
                      refresh=None if monitor.is_finished else 10).encode("utf-8")
