"""The introducer's web page and JSON, from the introducer service's status shape."""

import json

from twisted.web.test.requesthelper import DummyRequest

from shoal.web.introweb import IntroducerRoot, IntroducerSource, introducer_html, introducer_json

STATUS = {
    "announcements": [
        {"service_name": "storage", "server_id": "v0-bbb", "nickname": "beta", "version": "shoal/1",
         "seqnum": 1, "announced_at": 100.0, "connection_hints": ["tcp:127.0.0.1:1"], "publisher_connected": True},
        {"service_name": "storage", "server_id": "v0-aaa", "nickname": "<alpha>", "version": "tahoe-lafs/1.20.0",
         "seqnum": 3, "announced_at": 50.0, "connection_hints": [], "publisher_connected": None},
    ],
    "subscribers": [
        {"service_name": "storage", "nickname": "client", "version": "shoal/1", "app_versions": {},
         "subscribed_at": 10.0, "remote_address": "127.0.0.1:5555", "tubid": "abcd"},
    ],
    "counts": {},
}
SOURCE = IntroducerSource("tubid32", "shoal/9", lambda: STATUS)
EMPTY = IntroducerSource("tubid32", "shoal/9", lambda: {"announcements": [], "subscribers": []})


def test_json_is_tahoes_summary():
    assert introducer_json(SOURCE) == {"subscription_summary": {"storage": 1}, "announcement_summary": {"storage": 2}}
    request = DummyRequest([b""])
    request.args = {b"t": [b"json"]}
    assert json.loads(IntroducerRoot(SOURCE).render_GET(request)) == introducer_json(SOURCE)


def test_html_lists_announcements_and_subscribers():
    page = introducer_html(SOURCE, 200.0)
    assert "Welcome to the Tahoe-LAFS Introducer" in page and "tubid32" in page
    assert "Announcement Summary: <span id=\"announcement-summary\">storage: 2</span>" in page
    assert "Subscription Summary: <span id=\"subscription-summary\">storage: 1</span>" in page
    assert page.index("&lt;alpha&gt;") < page.index("beta")  # sorted by service, then nickname; escaped
    assert "connection hints: tcp:127.0.0.1:1" in page and "127.0.0.1:5555" in page and "abcd" in page
    empty = introducer_html(EMPTY, 0.0)
    assert "no peers!" in empty and "no subscribers!" in empty
    assert 'href="/status/' not in empty  # the introducer's own navigation: no client pages


def test_other_paths_are_404():
    request = DummyRequest([b"uri"])
    IntroducerRoot(SOURCE).getChild(b"uri", request).render(request)
    assert request.responseCode == 404
