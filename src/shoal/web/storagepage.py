"""`/storage`: the storage server's status, as Tahoe-LAFS 1.20's web/storage.py
and storage_status.xhtml show it.

HTML ("Storage Server Status": the disk-space table, nickname, node id,
accepting new shares, total buckets, the lease expiration crawler) and
`?t=json`: {"stats": {... "storage_server.reserved_space", "storage_server.disk_avail",
...}, "bucket-counter": {...}, "lease-checker": {...}, "lease-checker-progress":
{...}}, text/plain as Tahoe serves it. On a node without a storage server the
page says "No Storage Server Running" and `?t=json` is 404 (Tahoe's fails there).
"""

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from twisted.web import http, resource
from twisted.web.server import Request

from shoal.encoding.abbreviate import abbreviate_time
from shoal.web.common import WebError, render_sync, t_arg
from shoal.web.templating import render

LEASE_DURATION = 31 * 24 * 3600  # seconds: Tahoe's default lease lifetime


@attrs.frozen
class StorageSource:
    """What /storage shows, supplied by the node (the web layer imports no storage code).
    `policy`: the lease-expiration settings ({"enabled", "mode", "override_lease_duration",
    "cutoff_date", "sharetypes"})."""

    nickname: str
    nodeid: str
    stats: Callable[[], Mapping[str, Any]]
    bucket_counter: Callable[[], Mapping[str, Any]]
    lease_checker: Callable[[], Mapping[str, Any]]
    policy: Mapping[str, Any]


def lease_progress(lease: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Tahoe's lease-checker-progress from the crawler's status."""
    in_progress = bool(lease.get("cycle-in-progress"))
    progress: dict[str, Any] = {"cycle-in-progress": in_progress, "estimated-time-per-cycle": None}
    if in_progress:
        progress["cycle-complete-percentage"] = float(lease.get("cycle-complete-percentage", 0.0))
        progress["remaining-sleep-time"] = 0.0
        progress["estimated-cycle-complete-time-left"] = None
    else:
        next_crawl = lease.get("next-crawl-time")
        progress["remaining-wait-time"] = max(0.0, float(next_crawl) - now) if next_crawl is not None else 0.0
    return progress


def storage_json(source: StorageSource, now: float) -> dict[str, Any]:
    lease = dict(source.lease_checker())
    return {"stats": dict(source.stats()), "bucket-counter": dict(source.bucket_counter()),
            "lease-checker": lease, "lease-checker-progress": lease_progress(lease, now)}


def crawl_text(progress: Mapping[str, Any]) -> str:
    if progress["cycle-in-progress"]:
        return f"Current crawl {progress['cycle-complete-percentage']:.1f}% complete"
    return f"Next crawl in {abbreviate_time(progress['remaining-wait-time'])}"


def expiration_texts(policy: Mapping[str, Any]) -> tuple[str, str]:
    """Tahoe's two lines about lease expiration: enabled or not, and what expires."""
    enabled = ("Enabled: expired leases will be removed" if policy.get("enabled")
               else "Disabled: scan-only mode, no leases will be removed")
    if policy.get("mode", "age") == "age":
        override = policy.get("override_lease_duration")
        mode = ("Leases will expire naturally, probably 31 days after creation or renewal." if override is None
                else f"Leases created or last renewed more than {abbreviate_time(override)} ago will be considered expired.")
    else:
        cutoff = float(policy.get("cutoff_date") or 0)
        mode = (f"Leases created or last renewed before {time.strftime('%Y-%m-%d', time.gmtime(cutoff))} "
                f"({time.strftime('%d-%b-%Y', time.gmtime(cutoff))}) UTC will be considered expired.")
    sharetypes = policy.get("sharetypes")
    if sharetypes:
        mode += " The following sharetypes will be expired: " + " ".join(sorted(sharetypes)) + "."
    return enabled, mode


def storage_html(source: StorageSource | None, now: float) -> str:
    if source is None:
        return render("storage.html", title="Storage Server Status", running=False)
    data = storage_json(source, now)
    stats = data["stats"]
    rows = [("Total disk space:", "disk_total", "", ""), ("Disk space used:", "disk_used", "- ", ""),
            None, ("Disk space free (root):", "disk_free_for_root", "", "[see 1]"),
            ("Disk space free (non-root):", "disk_free_for_nonroot", "", "[see 2]"),
            ("Reserved space:", "reserved_space", "- ", ""), None,
            ("Space Available to Tahoe:", "disk_avail", "", "")]
    table = [None if r is None else (r[0], r[2], stats.get(f"storage_server.{r[1]}"), r[3]) for r in rows]
    count = data["bucket-counter"].get("last-complete-bucket-count")
    enabled, mode = expiration_texts(source.policy)
    lease = data["lease-checker"]
    history = lease.get("history") or {}
    last = history[max(history, key=int)] if history else None
    return render("storage.html", title="Storage Server Status", running=True, table=table,
                  nickname=source.nickname, nodeid=source.nodeid,
                  accepting="Yes" if stats.get("storage_server.accepting_immutable_shares") else "No",
                  buckets="Not computed yet" if count is None else str(count),
                  crawl=crawl_text(data["lease-checker-progress"]), expiration_enabled=enabled,
                  expiration_mode=mode, last_cycle=json.dumps(last, indent=1, sort_keys=True) if last else None)


class StoragePage(resource.Resource):
    isLeaf = True

    def __init__(self, source: StorageSource | None) -> None:
        super().__init__()
        self._source = source

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._render(request))

    def _render(self, request: Request) -> str:
        if request.postpath and request.postpath != [b""]:
            raise WebError("no such page", http.NOT_FOUND)
        t = t_arg(request)
        if t == "json":
            if self._source is None:
                raise WebError("No Storage Server Running", http.NOT_FOUND)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")  # as Tahoe
            return json.dumps(storage_json(self._source, time.time()), indent=1) + "\n"
        if t not in ("", "html"):
            raise WebError(f"bad t={t} for /storage (json or none)")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return storage_html(self._source, time.time())
