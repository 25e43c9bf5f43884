"""/storage as Tahoe's storage status page, from a source of plain values (no reactor)."""

import json

from twisted.web.test.requesthelper import DummyRequest

from shoal.web.storagepage import (
    StoragePage,
    StorageSource,
    expiration_texts,
    lease_progress,
    storage_html,
)

STATS = {"storage_server.disk_total": 1000, "storage_server.disk_used": 400, "storage_server.disk_free_for_root": 600,
         "storage_server.disk_free_for_nonroot": 550, "storage_server.reserved_space": 50,
         "storage_server.disk_avail": 500, "storage_server.accepting_immutable_shares": 1}
LEASE = {"cycle-in-progress": False, "next-crawl-time": 1100.0, "history": {}, "expiration-enabled": False}
SOURCE = StorageSource("nick<b>", "v0-abc", lambda: STATS, lambda: {"last-complete-bucket-count": 7},
                       lambda: LEASE, {"enabled": False, "mode": "age", "override_lease_duration": None,
                                       "cutoff_date": None, "sharetypes": ["immutable", "mutable"]})


def test_json_has_tahoes_four_parts():
    request = DummyRequest([])
    request.args = {b"t": [b"json"]}
    data = json.loads(StoragePage(SOURCE).render_GET(request))
    assert set(data) == {"stats", "bucket-counter", "lease-checker", "lease-checker-progress"}
    assert data["stats"]["storage_server.reserved_space"] == 50
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/plain; charset=utf-8"]


def test_html_has_tahoes_table_and_lines():
    page = storage_html(SOURCE, 1000.0)
    for text in ("<h1>Storage Server Status</h1>", "Total disk space:", "(1000)", "Reserved space:", "- 50 B",
                 "Space Available to Tahoe:", "(500)", "Accepting new shares: <span>Yes</span>",
                 "Total buckets: <span>7</span>", "Next crawl in 100 seconds", "nick&lt;b&gt;",
                 "Disabled: scan-only mode, no leases will be removed",
                 "Leases will expire naturally, probably 31 days after creation or renewal."):
        assert text in page, text
    assert "No Storage Server Running" in storage_html(None, 0.0)


def test_progress_and_expiration_texts():
    assert lease_progress({"cycle-in-progress": True, "cycle-complete-percentage": 12.5}, 0)[
        "cycle-complete-percentage"] == 12.5
    enabled, mode = expiration_texts({"enabled": True, "mode": "cutoff-date", "cutoff_date": 86400 * 365,
                                      "sharetypes": ["mutable"]})
    assert enabled == "Enabled: expired leases will be removed"
    assert mode == ("Leases created or last renewed before 1971-01-01 (01-Jan-1971) UTC will be considered expired."
                    " The following sharetypes will be expired: mutable.")


def test_no_storage_server_json_is_404():
    request = DummyRequest([])
    request.args = {b"t": [b"json"]}
    StoragePage(None).render_GET(request)
    assert request.responseCode == 404
