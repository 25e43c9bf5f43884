"""The welcome and status pages as a person sees them: rendered by headless Chromium
(Debian's chromium, installed by `make test` when missing) from a real client node
of its own (a fresh status history) on the shared real grid. The screenshots stay in tests/output/ for inspection."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import types
import urllib.request

import pytest

from shoal.testing.grid import shares_args
from shoal.testing.processes import create, set_config, start_node
from shoal.testing.wait import wait_until

CHROMIUM = "/usr/bin/chromium"
OUTPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "output")

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)")


def chromium(url: str, *mode: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="shoal-chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--window-size=1280,900", *mode, url],
            capture_output=True, timeout=90, check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def render(url: str, name: str) -> str:
    """The DOM after rendering; a screenshot in tests/output/<name>.png."""
    os.makedirs(OUTPUT, exist_ok=True)
    with open(os.path.join(OUTPUT, ".gitignore"), "w") as f:
        f.write("*\n")
    shot = os.path.join(OUTPUT, f"{name}.png")
    if os.path.exists(shot):
        os.remove(shot)
    chromium(url, f"--screenshot={shot}")
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(shot) > 10_000  # a real picture, not a blank page
    return chromium(url, "--dump-dom").stdout.decode("utf-8")


def text_of(dom: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


@pytest.fixture(scope="module")
def grid(shared_grid):
    """A client of this module's own on the shared grid, after one upload and one download."""
    node = shared_grid.add_client("pages-client", *shares_args(2, 2, 3))
    url = node.web_url
    data = os.urandom(500_000)
    req = urllib.request.Request(url + "uri", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=60) as r:
        cap = r.read().decode().strip()
    with urllib.request.urlopen(url + "uri/" + cap, timeout=60) as r:
        assert r.read() == data
    with urllib.request.urlopen(url + "status?t=json", timeout=60) as r:
        upload = next(op for op in json.loads(r.read())["recent"] if op["type"] == "upload")
    yield types.SimpleNamespace(client_url=url, storage=[os.path.basename(n.nodedir) for n in shared_grid.storage],
                                upload_servers=upload["servers"])
    node.stop()


def test_welcome_page_renders(grid):
    dom = render(grid.client_url, "welcome")
    text = text_of(dom)
    count = len(grid.storage)
    assert "Storage servers" in text and f"{count} of {count} connected" in text
    for name in grid.storage:
        assert name in text
    assert "Connected" in text and "Last contact" in text and "ago" in text
    assert "Recent operations" in text and "upload" in text and "download" in text and "488.3 KiB" in text
    # no external assets: every src/href stays on the node
    assert not re.search(r'(src|href)="(https?:)?//', dom)


def test_status_page_renders(grid):
    dom = render(grid.client_url + "status/", "status")
    text = text_of(dom)
    assert "Recent and Active Operations" in text and "Active Operations:" in text and "Recent Operations:" in text
    assert re.search(r'href="/status/up-\d+"', dom) and re.search(r'href="/status/down-\d+"', dom)
    assert grid.upload_servers and all(name in text for name in grid.upload_servers)  # servers used
    assert "done" in text and "100.0%" in text


def test_one_operation_page_renders(grid):
    with urllib.request.urlopen(grid.client_url + "status?t=json", timeout=60) as r:
        upload = next(op for op in json.loads(r.read())["recent"] if op["type"] == "upload")
    text = text_of(render(grid.client_url + f"status/up-{upload['id']}", "status-upload"))
    assert "File Upload Status" in text and "Total Size: 500000" in text and "Progress (Hash): 100.0%" in text
    assert "Upload Results" in text and "File Size: 500000 bytes" in text


@pytest.fixture(scope="module")
def small_grid(tmp_path_factory):
    """An introducer and a storage node of this module's own, both with web ports
    (the shared grid's have none)."""
    base = tmp_path_factory.mktemp("pages-grid")
    intro_dir = str(base / "introducer")
    create("create-introducer", "--hostname", "127.0.0.1", intro_dir)
    set_config(intro_dir, "node", "web.port", "tcp:0:interface=127.0.0.1")
    introducer = start_node(intro_dir)
    nodes = [introducer]
    try:
        with open(os.path.join(intro_dir, "private", "introducer.furl")) as f:
            furl = f.read().strip()
        d = str(base / "storage")
        create("create-node", "--hostname", "127.0.0.1", "--webport", "tcp:0:interface=127.0.0.1",
               "--nickname", "pages-storage", "--introducer", furl, d)
        set_config(d, "storage", "reserved_space", "1M")
        nodes.append(start_node(d))
        yield types.SimpleNamespace(introducer=introducer, storage=nodes[1])
    finally:
        for node in reversed(nodes):
            node.stop()


def test_introducer_page_renders(small_grid):
    url = small_grid.introducer.web_url

    def announced() -> dict | None:
        with urllib.request.urlopen(url + "?t=json", timeout=30) as r:
            data = json.loads(r.read())
        return data if data["announcement_summary"].get("storage") and data["subscription_summary"] else None

    data = wait_until(announced, timeout=60, what="the storage node's announcement and subscription")
    assert data["announcement_summary"] == {"storage": 1}
    text = text_of(render(url, "introducer"))
    assert "Welcome to the Tahoe-LAFS Introducer" in text and "Announcement Summary: storage: 1" in text
    assert "pages-storage" in text and "Subscribed Clients" in text and "no peers!" not in text


def test_storage_page_renders(small_grid):
    url = small_grid.storage.web_url
    text = text_of(render(url + "storage", "storage"))
    assert "Storage Server Status" in text and "Reserved space:" in text and "Space Available to Tahoe:" in text
    assert "Accepting new shares: Yes" in text and "Lease Expiration Crawler" in text
    with urllib.request.urlopen(url + "storage?t=json", timeout=60) as r:
        data = json.loads(r.read())
    assert set(data) == {"stats", "bucket-counter", "lease-checker", "lease-checker-progress"}
    assert data["stats"]["storage_server.reserved_space"] == 1_000_000 and "storage_server.disk_avail" in data["stats"]
    assert "Reserved space: - 976.6 KiB (1000000)" in text and "pages-storage" in text


def test_statistics_page_renders(grid):
    text = text_of(render(grid.client_url + "statistics", "statistics"))
    assert "Node statistics" in text and "OpenMetrics" in text and "counters" in text


def test_missing_page_is_an_html_404_for_a_browser(grid):
    text = text_of(render(grid.client_url + "no-such-page", "error-page"))
    assert "404 - Not Found" in text and "no such page" in text
