"""The upload helper's status page `/helper_status` (Tahoe-LAFS 1.20's).

`?t=json` is Tahoe's: the helper's statistics as one JSON object (the names
of Tahoe's ``Helper.get_stats``: chk_upload_helper.active_uploads,
upload_requests, upload_already_present, upload_need_upload, resumes,
fetched_bytes, encoded_bytes, incoming_count/size/size_old,
encoding_count/size/size_old), ``{}`` on a node that runs no helper. The
HTML shows the same counters and one row per upload under way.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet import threads
from twisted.web import resource
from twisted.web.server import Request

from shoal.web.common import WebError, run_async, t_arg
from shoal.web.templating import render


class HelperStatusPage(resource.Resource):
    isLeaf = True

    def __init__(
        self,
        stats: Callable[[], Mapping[str, int]] | None,
        uploads: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        super().__init__()
        self._stats = stats
        self._uploads = uploads

    def render_GET(self, request: Request) -> Any:
        return run_async(request, lambda: self._render(request))

    async def _render(self, request: Request) -> str:
        t = t_arg(request)
        # the counters include a scan of the helper's incoming and encoding directories: off the reactor
        stats = dict(await threads.deferToThread(self._stats)) if self._stats is not None else {}
        if t == "json":
            request.setHeader(b"content-type", b"text/plain")  # as Tahoe sends it
            return json.dumps(stats, indent=1) + "\n"
        if t not in ("", "html"):
            raise WebError("bad t= value for the helper status page")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        if self._stats is None:
            return render("helper_status.html", title="Helper status", running=False, uploads=[], counters=[])
        uploads = self._uploads() if self._uploads is not None else []
        rows = [{"storage_index": str(u.get("storage_index")), "phase": str(u.get("phase")),
                 "have": u.get("have"), "size": u.get("size")} for u in uploads]
        return render("helper_status.html", title="Helper status", running=True, uploads=rows,
                      counters=[(name, str(value)) for name, value in sorted(stats.items())])
