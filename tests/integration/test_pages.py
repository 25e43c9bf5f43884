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
    assert "Recent and active operations" in text
    assert "upload #1" in text and "download #2" in text
    assert grid.upload_servers and all(name in text for name in grid.upload_servers)  # servers used
    assert "done" in text and "100%" in text
