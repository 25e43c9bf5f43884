"""/helper_status: Tahoe's helper counters as JSON ({} without a helper) and HTML."""

import json
import threading

from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from shoal.testing import reactor_thread
from shoal.web.helper_status import HelperStatusPage

STATS = {"chk_upload_helper.active_uploads": 1, "chk_upload_helper.fetched_bytes": 4096}


def render(page: HelperStatusPage, t: str | None = None) -> tuple[DummyRequest, str]:
    """Render on the reactor (the counters are gathered in a thread) and wait for the answer."""
    request = DummyRequest([b""])
    request.startedWriting = False
    if t is not None:
        request.args = {b"t": [t.encode()]}

    def go():
        finished = request.notifyFinish()
        body = page.render_GET(request)
        if body is not NOT_DONE_YET:
            request.write(body)
            request.finish()
        return finished

    reactor_thread.call(go)
    return request, b"".join(request.written).decode("utf-8")


def test_the_counters_are_gathered_off_the_reactor_thread():
    seen = []

    def stats():
        seen.append(threading.current_thread().name)
        return STATS

    render(HelperStatusPage(stats, lambda: []), "json")
    assert seen and seen[0] != "twisted-reactor"


def test_json_is_the_helpers_stats():
    page = HelperStatusPage(lambda: STATS, lambda: [])
    request, body = render(page, "json")
    assert json.loads(body) == STATS
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/plain"]


def test_json_without_a_helper_is_empty():
    _, body = render(HelperStatusPage(None), "json")
    assert json.loads(body) == {}


def test_html_lists_uploads_and_counters():
    uploads = [{"storage_index": "abcde", "phase": "fetching ciphertext", "have": 1000, "size": 2000}]
    _, body = render(HelperStatusPage(lambda: STATS, lambda: uploads))
    assert "fetching ciphertext" in body and "chk_upload_helper.fetched_bytes" in body and "4096" in body
    _, none = render(HelperStatusPage(None))
    assert "does not run an upload helper" in none
