"""`/statistics`: the node's counters and gauges, as Tahoe-LAFS 1.20 names them.

`?t=json` is Tahoe's {"counters": {...}, "stats": {...}} (dotted names such
as "uploader.files_uploaded", "storage_server.disk_avail"); `?t=openmetrics`
is the same numbers through prometheus-client (a CollectorRegistry per
node), named `tahoe_counters_<name>` and `tahoe_stats_<name>` with dots as
underscores and untyped, exactly the series names Tahoe writes; the HTML
page lists them for people.
"""

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric, UnknownMetricFamily
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.web import resource
from twisted.web.server import Request

from shoal.web.common import WebError, render_sync, t_arg
from shoal.web.templating import render

StatsSource = Callable[[], Mapping[str, int | float | None]]


class NodeStats:
    """Counters bumped by the node's services, gauges read from sources at scrape time."""

    def __init__(self, sources: list[StatsSource] | None = None) -> None:
        self.started = time.time()
        self.counters: dict[str, int] = defaultdict(int)
        self.sources: list[StatsSource] = list(sources or [])
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))  # type: ignore[arg-type]

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def get_stats(self) -> dict[str, dict[str, Any]]:
        stats: dict[str, Any] = {"node.uptime": time.time() - self.started}
        for source in self.sources:
            stats.update(source())
        return {"counters": dict(sorted(self.counters.items())), "stats": dict(sorted(stats.items()))}

    def openmetrics(self) -> bytes:
        return generate_latest(self.registry)  # type: ignore[no-any-return]


def metric_name(prefix: str, name: str) -> str:
    """Tahoe's mangling: dots become underscores (percentile suffixes aside)."""
    return prefix + re.sub(r"[^a-zA-Z0-9_]", "_", name)


class _Collector:
    def __init__(self, stats: NodeStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        data = self._stats.get_stats()
        for prefix, group in (("tahoe_counters_", data["counters"]), ("tahoe_stats_", data["stats"])):
            for name, value in group.items():
                if isinstance(value, bool):
                    value = int(value)
                yield UnknownMetricFamily(
                    metric_name(prefix, name), name,
                    value=float("nan") if value is None else float(value),
                )


class StatisticsPage(resource.Resource):
    isLeaf = True

    def __init__(self, stats: NodeStats) -> None:
        super().__init__()
        self._stats = stats

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._render(request))

    render_POST = render_GET  # `tahoe status` POSTs its t=json (and the API token)

    def _render(self, request: Request) -> bytes | str:
        t = t_arg(request)
        if t == "json":
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")  # as Tahoe
            return json.dumps(self._stats.get_stats(), indent=1) + "\n"
        if t == "openmetrics":
            request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
            return self._stats.openmetrics()
        if t not in ("", "html"):
            raise WebError(f"bad t={t} for /statistics (json, openmetrics or none)")
        data = self._stats.get_stats()
        rows = [(group, name, str(value)) for group in ("counters", "stats") for name, value in data[group].items()]
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return render("table.html", title="Statistics", heading="Node statistics", lead=None,
                      links=[("JSON", "?t=json"), ("OpenMetrics", "?t=openmetrics")],
                      columns=("Kind", "Name", "Value"), rows=rows, numeric=True, pre=None, cancel=False)
