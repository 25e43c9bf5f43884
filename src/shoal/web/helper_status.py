"""The upload helper's status page `/helper_status` (Tahoe-LAFS 1.20's).

`?t=json` is Tahoe's: the helper's statistics as one JSON object (the names
of Tahoe's ``Helper.get_stats``: chk_upload_helper.active_uploads,
upload_requests, upload_already_present, upload_need_upload, resumes,
fetched_bytes, encoded_bytes, incoming_count/size/size_old,
encoding_count/size/size_old), ``{}`` on a node that runs no helper. The
HTML shows the same counters and one row per upload under way.
"""

import html
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet import threads
from twisted.web import resource
from twisted.web.server import Request

from shoal.web.common import WebError, run_async, t_arg
from shoal.web.page import page, size_text


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
        e = html.escape
        if self._stats is None:
            return page("Helper status", "<h1>Helper status</h1><p>This node does not run an upload helper.</p>")
        rows = "".join(f"<tr><td>{e(k)}</td><td class=num>{e(str(v))}</td></tr>" for k, v in sorted(stats.items()))
        uploads = self._uploads() if self._uploads is not None else []
        up_rows = "".join(
            f"<tr><td><code>{e(str(u.get('storage_index')))}</code></td><td>{e(str(u.get('phase')))}</td>"
            f"<td class=num>{e(size_text(u.get('have')))}</td><td class=num>{e(size_text(u.get('size')))}</td></tr>"
            for u in uploads
        ) or "<tr><td colspan=4 class=muted>No uploads under way.</td></tr>"
        body = f"""<h1>Helper status</h1>
<p class=muted>JSON: <a href="?t=json">?t=json</a></p>
<h2>Uploads under way</h2>
<table><tr><th>Storage index</th><th>Phase</th><th class=num>Ciphertext held</th><th class=num>Size</th></tr>
{up_rows}</table>
<h2>Counters</h2>
<table><tr><th>Name</th><th class=num>Value</th></tr>{rows}</table>"""
        return page("Helper status", body)
