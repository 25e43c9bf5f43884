"""The welcome and status pages as a person sees them: rendered by headless Chromium
(Debian's chromium, installed by `make test` when missing) from a real client node
on a real grid. The screenshots stay in tests/output/ for inspection."""

import os
import re
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

from shoal.testing.grid import Grid, start_grid

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
def grid(tmp_path_factory) -> Grid:
    g = start_grid(str(tmp_path_factory.mktemp("pages")), storage_nodes=3,
                   client_args=("--shares-needed", "2", "--shares-happy", "2", "--shares-total", "3"))
    url = g.client_url
    data = os.urandom(500_000)
    req = urllib.request.Request(url + "uri", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=60) as r:
        cap = r.read().decode().strip()
    with urllib.request.urlopen(url + "uri/" + cap, timeout=60) as r:
        assert r.read() == data
    yield g
    g.stop()


def test_welcome_page_renders(grid):
    dom = render(grid.client_url, "welcome")
    text = text_of(dom)
    assert "Storage servers" in text and "3 of 3 connected" in text
    for name in ("storage1", "storage2", "storage3"):
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
    assert "storage1" in text  # servers used
    assert "done" in text and "100%" in text
