"""/helper_status: Tahoe's helper counters as JSON ({} without a helper) and HTML."""

import json

from twisted.web.test.requesthelper import DummyRequest

from shoal.web.helper_status import HelperStatusPage

STATS = {"chk_upload_helper.active_uploads": 1, "chk_upload_helper.fetched_bytes": 4096}


def render(page: HelperStatusPage, t: str | None = None) -> tuple[DummyRequest, str]:
    request = DummyRequest([b""])
    if t is not None:
        request.args = {b"t": [t.encode()]}
    body = page.render_GET(request)
    return request, body.decode("utf-8") if isinstance(body, bytes) else b"".join(request.written).decode()


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
