"""The web pages side by side: the same requests to Tahoe-LAFS 1.20 nodes and to shoal
nodes, comparing what a script or a person would see: the introducer's web port
(`?t=json` and its page), `/storage` and `/storage?t=json`, `/status` and an upload's
`/status/up-N` page, and a browser's 404 page for a missing child."""

import json
import re
import types
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from shoal.testing.grid import shares_args
from shoal.testing.processes import create, set_config, start_node, stop_all
from shoal.testing.wait import wait_until
from tests.interop.conftest import MIXED_SHARES, TahoeNode, free_port, tahoe, tahoe_node_url

WEB = "tcp:0:interface=127.0.0.1"
TAHOE_WEB = "tcp:{port}:interface=127.0.0.1"
STORAGE_PAGE_KEYS = ("disk_total", "disk_used", "disk_free_for_root", "disk_free_for_nonroot", "reserved_space",
                     "disk_avail", "accepting_immutable_shares", "allocated")


def get(url: str, accept: str | None = None) -> tuple[int, str, str]:
    """(status, content type, body text) of a GET, errors included."""
    req = urllib.request.Request(url, headers={"accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode("utf-8", "replace")


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.fixture(scope="module")
def pairs(peer, tmp_path_factory):
    """A Tahoe introducer and storage node, and a shoal introducer and storage node, each
    pair a grid of its own, every node with a web port."""
    tmp = tmp_path_factory.mktemp("web-pages")
    nodes: list = []
    try:
        tahoe(peer, "create-introducer", "--hostname", "127.0.0.1", str(tmp / "tintro"))
        set_config(str(tmp / "tintro"), "node", "web.port", TAHOE_WEB.format(port=free_port()))
        tintro = TahoeNode(peer, tmp / "tintro", wait_for="private/introducer.furl")
        nodes.append(tintro)
        tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--nickname", "tahoe-storage", "--webport",
              TAHOE_WEB.format(port=free_port()), "--introducer", tintro.furl, str(tmp / "tstorage"))
        set_config(str(tmp / "tstorage"), "storage", "reserved_space", "1M")
        nodes.append(TahoeNode(peer, tmp / "tstorage"))
        create("create-introducer", "--hostname", "127.0.0.1", str(tmp / "sintro"))
        set_config(str(tmp / "sintro"), "node", "web.port", WEB)
        sintro = start_node(str(tmp / "sintro"))
        nodes.append(sintro)
        furl = (tmp / "sintro" / "private" / "introducer.furl").read_text().strip()
        create("create-node", "--hostname", "127.0.0.1", "--nickname", "shoal-storage", "--webport", WEB,
               "--introducer", furl, str(tmp / "sstorage"))
        set_config(str(tmp / "sstorage"), "storage", "reserved_space", "1M")
        sstorage = start_node(str(tmp / "sstorage"))
        nodes.append(sstorage)
        yield types.SimpleNamespace(
            introducers={"tahoe": tahoe_node_url(tmp / "tintro"), "shoal": sintro.web_url},
            storage={"tahoe": tahoe_node_url(tmp / "tstorage"), "shoal": sstorage.web_url})
    finally:
        stop_all(nodes)


def test_introducer_web_port(pairs):
    seen = {}
    for kind, url in pairs.introducers.items():
        def announced(url: str = url) -> dict | None:
            status, _, body = get(url + "?t=json")
            data = json.loads(body) if status == 200 else None
            return data if data and data["announcement_summary"] and data["subscription_summary"] else None

        seen[kind] = wait_until(announced, timeout=90, what=f"the {kind} introducer's announcement summary")
        status, ctype, page = get(url)
        assert status == 200 and ctype.startswith("text/html")
        text = text_of(page)
        for words in ("Welcome to the Tahoe-LAFS Introducer", "Announcement Summary: storage: 1",
                      "Service Announcements", "Subscribed Clients", f"{kind}-storage"):
            assert words in text, (kind, words)
    assert seen["tahoe"] == seen["shoal"]
    assert set(seen["shoal"]) == {"announcement_summary", "subscription_summary"}


def test_storage_page(pairs):
    answers = {}
    for kind, url in pairs.storage.items():
        status, ctype, body = get(url + "storage?t=json")
        assert status == 200 and ctype.startswith("text/plain"), (kind, status, ctype)
        answers[kind] = json.loads(body)
        status, ctype, page = get(url + "storage")
        assert status == 200 and ctype.startswith("text/html")
        text = text_of(page)
        for words in ("Storage Server Status", "Total disk space:", "Disk space free (non-root):",
                      "Reserved space:", "(1000000)", "Space Available to Tahoe:", "Accepting new shares: Yes",
                      "Total buckets:", "Lease Expiration Crawler",
                      "Expiration Disabled: scan-only mode, no leases will be removed"):
            assert words in text, (kind, words)
    assert set(answers["shoal"]) == set(answers["tahoe"])
    for key in STORAGE_PAGE_KEYS:
        assert f"storage_server.{key}" in answers["tahoe"]["stats"], key
        assert f"storage_server.{key}" in answers["shoal"]["stats"], key
    assert answers["shoal"]["stats"]["storage_server.reserved_space"] == 1_000_000
    assert answers["tahoe"]["stats"]["storage_server.reserved_space"] == 1_000_000


def test_status_pages_of_an_upload(mixed_grid):
    shoal = mixed_grid.grid.add_client("web-pages-client", *shares_args(*MIXED_SHARES), servers=4)
    try:
        for kind, url in (("tahoe", mixed_grid.turl), ("shoal", shoal.web_url)):
            data = b"side by side " * 5000
            req = urllib.request.Request(url + "uri", data=data, method="PUT")
            with urllib.request.urlopen(req, timeout=120) as r:
                cap = r.read().decode().strip()
            status, _, page = get(url + "status")
            assert status == 200
            assert "Recent and Active Operations" in page and "Active Operations:" in page, kind
            links = re.findall(r'href="/status/(up-\d+)"', page)
            assert links, (kind, "no /status/up-N link")
            status, ctype, page = get(url + "status/" + links[0])
            text = text_of(page)
            assert status == 200 and ctype.startswith("text/html"), kind
            for words in ("File Upload Status", f"Total Size: {len(data)}", "Progress (Hash): 100.0%",
                          "Progress (Encode+Push): 100.0%", "Upload Results"):
                assert words in text, (kind, words)
            dircap = urllib.request.urlopen(urllib.request.Request(url + "uri?t=mkdir", data=b"", method="POST"),
                                            timeout=60).read().decode().strip()
            status, ctype, page = get(url + "uri/" + quote(dircap, safe="") + "/missing", accept="text/html")
            assert status == 404 and ctype.startswith("text/html") and "No such child: missing" in page, kind
            assert cap
    finally:
        shoal.stop()
