"""Checks and deep traversals in the web API (webapi.rst of Tahoe-LAFS 1.20), over
shoal.checker (the walk, deep stats, file checker and deep-check results live there).

POST t=check [verify=, repair=, add-lease=, output=JSON]   one object (file or directory)
POST t=start-manifest | start-deep-size | start-deep-stats | start-deep-check
     (ophandle= required; verify=, repair=, add-lease= for deep-check)
     long operations under /operations/HANDLE (shoal.web.operations)
POST t=stream-manifest | stream-deep-check   one JSON line per object, then a
     {"type": "stats"} line; an error after the first line ends the stream with
     an "ERROR: ..." line, as Tahoe does

Result shapes are Tahoe's: a finished manifest is {"origin", "stats", "manifest":
[[path-list, cap], ...], "verifycaps", "storage-index"}; deep-size's JSON carries
the deep stats under "size" (as Tahoe's renderer does; output=text gives the byte
total); deep-stats is the stats dictionary itself.
"""

import json
from typing import Any

from twisted.web.server import Request

from shoal.checker import literal_check_and_repair_json, literal_check_json
from shoal.checker.deep import DeepCheck, DeepObject, deep_check, deep_size, walk
from shoal.web.common import NotAvailable, WebError, arg, bool_arg
from shoal.web.services import WebServices
from shoal.web.templating import render

DEEP_OPERATIONS = ("start-manifest", "start-deep-size", "start-deep-stats", "start-deep-check")
STREAMS = ("stream-manifest", "stream-deep-check")


def _checker(services: WebServices) -> Any:
    if services.checker is None:
        raise NotAvailable("checking is not available on this node")
    return services.checker


def _check_args(request: Request) -> tuple[bool, bool, bool]:
    return bool_arg(request, "verify"), bool_arg(request, "repair"), bool_arg(request, "add-lease")


async def check_object(services: WebServices, request: Request, cap: Any) -> bytes | str:
    """POST t=check on one file or directory."""
    checker = _checker(services)
    verify, repair, add_lease = _check_args(request)
    if repair:
        result = await checker.check_and_repair(cap, verify=verify, add_lease=add_lease)
        data = literal_check_and_repair_json() if result is None else result.to_json()
    else:
        result = await checker.check(cap, verify=verify, add_lease=add_lease)
        data = literal_check_json() if result is None else result.to_json()
    services.stats.count("checker.objects_checked")
    if (arg(request, "output") or "").lower() == "json":
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return json.dumps(data, indent=1) + "\n"
    summary = data.get("summary") or data.get("results", {}).get("summary") or ""
    healthy = data.get("results", {}).get("healthy")
    if repair:
        post = data.get("post-repair-results", {}).get("results", {})
        healthy = post.get("healthy", healthy)
    verdict = "Healthy" if healthy else ("Not Healthy!" if healthy is not None else "Checked")
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    return render("table.html", title="Check results", heading=verdict, lead=str(summary), links=[],
                  columns=(), rows=[], numeric=False, pre=json.dumps(data, indent=1), cancel=False)


def start_deep(services: WebServices, request: Request, node: Any, t: str) -> bytes:
    if not arg(request, "ophandle"):
        raise WebError("slow operation requires ophandle=")
    maker = services.nodemaker
    verify, repair, add_lease = _check_args(request)
    checker = _checker(services) if t == "start-deep-check" else None

    async def operation(progress: dict[str, Any]) -> dict[str, Any]:
        if checker is not None:
            report = DeepCheck(repair)

            def checked(obj: DeepObject, line: dict[str, Any] | None) -> None:
                progress["count-objects-checked"] = len(report.results)

            await deep_check(maker, checker, node, verify=verify, repair=repair, add_lease=add_lease,
                             into=report, on_object=checked)
            return report.to_json()
        found: list[DeepObject] = []

        async def visit(obj: DeepObject) -> None:
            found.append(obj)
            progress["count-objects"] = len(found)

        stats = (await walk(maker, node, visit)).results()
        if t == "start-deep-stats":
            return stats
        if t == "start-deep-size":
            return {"size": stats, "total-size": deep_size(stats)}
        return {
            "origin": found[0].storage_index if found else "",
            "stats": stats,
            "manifest": [[list(o.path), o.cap] for o in found],
            "verifycaps": sorted({o.verifycap for o in found if o.verifycap}),
            "storage-index": sorted({o.storage_index for o in found if o.storage_index}),
        }

    return services.operations.start(request, t, operation)


async def stream(services: WebServices, request: Request, node: Any, t: str) -> bytes:
    """t=stream-manifest and t=stream-deep-check: JSON lines as the walk goes."""
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    maker = services.nodemaker

    def write(line: dict[str, Any]) -> None:
        request.write(json.dumps(line, ensure_ascii=True).encode("ascii") + b"\n")

    try:
        if t == "stream-deep-check":
            verify, repair, add_lease = _check_args(request)
            report = await deep_check(maker, _checker(services), node, verify=verify, repair=repair,
                                      add_lease=add_lease, on_object=lambda _obj, line: write(line or {}))
            stats = report.stats.results()
        else:
            async def visit(obj: DeepObject) -> None:
                write(obj.to_json())

            stats = (await walk(maker, node, visit)).results()
    except Exception as e:
        if not request.startedWriting:
            raise
        return f"ERROR: {type(e).__name__}({e})\n".encode()
    return json.dumps({"type": "stats", "stats": stats}).encode("ascii") + b"\n"
