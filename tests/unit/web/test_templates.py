"""The pages rendered from templates, without a reactor: escaping, strictness,
Tahoe's status-page wording and names, the directory page's links, /static's
allowlist, and error pages for browsers."""

import re
from urllib.parse import unquote

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.web.test.requesthelper import DummyRequest

from shoal.web.common import WebError, error_body, render_sync
from shoal.web.dirpage import (
    child_view,
    crumbs_of,
    directory_html,
    directory_page,
    here_of,
    parent_of,
    rename_form_html,
    type_text,
)
from shoal.web.history import History
from shoal.web.staticfiles import FILES, static_bytes
from shoal.web.status import find_operation, operation_html, status_html
from shoal.web.templating import render
from shoal.web.welcome import WelcomeSource, welcome_html

HOSTILE = "<script>alert('x')</script>&\""


def dir_request(path: bytes = b"/uri/URI%3ADIR2%3Aabc/docs/", accept: bytes | None = None) -> DummyRequest:
    request = DummyRequest([])
    request.path = path
    if accept is not None:
        request.requestHeaders.setRawHeaders(b"accept", [accept])
    return request


def test_values_are_escaped():
    page = directory_html(dir_request(), HOSTILE, True, False, [(HOSTILE, "filenode", {"size": 3, "mutable": False})])
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#34;" in page


def test_upload_results_page_is_tahoes_and_escaped():
    cap = "URI:CHK:aaaa:bbbb:3:10:4096"
    text = render("upload_results.html", title="File Uploaded", cap=cap, link="/uri/URI%3ACHK%3Aaaaa", size=4096)
    assert "<title>File Uploaded - shoal</title>" in text and "<h1>Uploading File... done!</h1>" in text
    assert re.search(r"URI: <tt><span[^>]*>(URI:CHK:[^<]+)</span></tt>", text).group(1) == cap  # scripts scrape it
    assert "File Size: 4096 bytes" in text and "href='/uri/URI%3ACHK%3Aaaaa?t=info'" in text
    hostile = render("upload_results.html", title="File Uploaded", cap=HOSTILE, link="/uri/x", size=1)
    assert "<script>" not in hostile


def test_helper_status_page_escapes_what_it_lists():
    text = render("helper_status.html", title="Helper status", running=True,
                  uploads=[{"storage_index": HOSTILE, "phase": "encoding", "have": 1536, "size": None}],
                  counters=[("chk_upload_helper.active_uploads", "1"), (HOSTILE, "2")])
    assert "<script>" not in text and "1.5 KiB" in text and "chk_upload_helper.active_uploads" in text
    assert "No uploads under way." not in text
    idle = render("helper_status.html", title="Helper status", running=True, uploads=[], counters=[])
    assert "No uploads under way." in idle
    absent = render("helper_status.html", title="Helper status", running=False, uploads=[], counters=[])
    assert "This node does not run an upload helper." in absent and "Counters" not in absent


def test_a_name_the_code_did_not_pass_is_an_error():
    with pytest.raises(jinja2.UndefinedError):
        render("rename_form.html", title="x", si="aaaaaa", readonly=False, here="/uri/CAP/")  # no `name`


def test_status_page_has_tahoes_wording_and_links():
    history = History()
    up = history.start("upload", 1234, b"\x01" * 16)
    up.servers = ["server-a"]
    up.finish()
    down = history.start("download", 1234, b"\x01" * 16)
    page = status_html(history, None)
    for text in ("Recent and Active Operations", "Active Operations:", "Recent Operations:", "Helper?",
                 "hash: 100.0%, ciphertext: 100.0%, encode: 100.0%", "server-a"):
        assert text in page
    assert f'href="/status/up-{up.id}"' in page and f'href="/status/down-{down.id}"' in page
    assert "No active operations!" in status_html(History(), None)
    assert "No recent operations!" in status_html(History(), None)


@pytest.mark.parametrize("kind,prefix,heading,size_label", [
    ("upload", "up", "File Upload Status", "Total Size"),
    ("download", "down", "File Download Status", "Total Size"),
    ("publish", "publish", "Mutable File Publish Status", "Current Size"),
    ("retrieve", "retrieve", "Mutable File Retrieve Status", "Current Size"),
    ("mapupdate", "mapupdate", "Mutable File Servermap Update Status", None),
])
def test_one_operation_page(kind, prefix, heading, size_label):
    history = History()
    history.start("download", 1)  # ids are shared across kinds, as Tahoe's counters are not: names must match
    op = history.start(kind, 5000, b"\x02" * 16)
    assert find_operation(history, f"{prefix}-{op.id}".encode()) is op
    assert find_operation(history, str(op.id).encode()) is op
    other = "down" if prefix != "down" else "up"
    assert find_operation(history, f"{other}-{op.id}".encode()) is None
    page = operation_html(op)
    assert f"<h1>{heading}</h1>" in page and "Helper?: No" in page and "Status: started" in page
    if size_label:
        assert f"{size_label}: 5000" in page
    if kind == "upload":
        assert "Progress (Hash): " in page and "Progress (Encode+Push): " in page
    op.finish()
    assert "Results</h2>" in operation_html(op) and "File Size: 5000 bytes" in operation_html(op)


@pytest.mark.parametrize("name", [b"up-", b"up-x", b"up-01", b"01", b"-1", b"up-1" * 20, b"\xff-1", b"up-\xd9\xa1"])
def test_bad_operation_names_find_nothing(name):
    history = History()
    history.start("upload", 1)
    assert find_operation(history, name) is None


def test_welcome_page_lists_servers_with_missing_fields():
    source = WelcomeSource("v0-me", HOSTILE, lambda: [{"summary": "Connected"}],
                           lambda: [{"nodeid": "v0-a", "connection_status": "Connected"}], "shoal/x")
    page = welcome_html(source, History())
    assert "<script>" not in page and "v0-a" in page and "0 of 1 connected" in page
    assert "No uploads or downloads yet." in page
    assert "create-directory" not in page
    tools = welcome_html(source, None, tools=True)
    assert 'action="/uri?t=mkdir&amp;redirect_to_result=true"' in tools and 'action="/uri"' in tools


@given(st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_child_links_name_the_child(name):
    here = "/uri/URI%3ADIR2%3Aabc/"
    view = child_view(here, name, "filenode", {"size": 10, "mutable": False})
    assert view["href"].startswith(here) and "/" not in view["href"][len(here):]
    assert unquote(view["href"][len(here):]) == name
    assert view["download"] == view["href"] + "?save=true"
    d = child_view(here, name, "dirnode", {"mutable": True, "rw_uri": "x"})
    assert d["href"].endswith("/") and d["download"] is None and d["type"] == "DIR"


def test_paths_and_types():
    assert here_of(dir_request(b"/uri/CAP")) == "/uri/CAP/"
    assert parent_of("/uri/CAP/") is None and parent_of("/uri/CAP/a/b/") == "/uri/CAP/a/"
    assert crumbs_of("/uri/CAP/") == [("top", "/uri/CAP/")]
    assert crumbs_of("/uri/CAP/a%20b/c/") == [("top", "/uri/CAP/"), ("a b", "/uri/CAP/a%20b/"), ("c", "/uri/CAP/a%20b/c/")]
    assert type_text("filenode", {"mutable": True, "format": "MDMF", "rw_uri": "x"}, True, False) == "MDMF"
    assert type_text("filenode", {"mutable": True, "format": "SDMF"}, True, True) == "SSK-RO"
    assert type_text("dirnode", {}, False, True) == "DIR-IMM"
    assert type_text("unknown", {}, False, True) == "?"


def test_directory_page_forms():
    page = directory_html(dir_request(), "docs", True, False, [("a b.txt", "filenode", {"size": 3})])
    assert 'action="/uri/URI%3ADIR2%3Aabc/docs/?t=upload&amp;when_done=' in page
    assert 'name="file" id="upload-file" multiple' in page and "/static/upload.js" in page
    assert 'value="rename-form"' in page and "t=unlink&amp;name=a%20b.txt" in page
    assert 'href="/uri/URI%3ADIR2%3Aabc/"' in page  # up
    readonly = directory_html(dir_request(), "docs", True, True, [("a", "filenode", {"size": 3})])
    assert "upload-form" not in readonly and "unlink" not in readonly


def test_rename_form_is_tahoes():
    page = rename_form_html(dir_request(), b"\x00" * 16, False, "old name")
    assert "Rename in directory SI=aaaaaa:" in page
    assert 'name="t" value="rename"' in page and 'name="from_name" readonly value="old name"' in page
    assert 'name="to_name"' in page


def test_static_allowlist():
    for name in FILES:
        assert len(static_bytes(name)) > 100
    for name in ("../templates/base.html", "templating.py", "", "shoal.css/"):
        with pytest.raises(KeyError):
            static_bytes(name)


def test_errors_are_html_for_browsers_and_text_otherwise():
    browser = dir_request(accept=b"text/html,application/xhtml+xml,*/*;q=0.8")
    body = error_body(browser, f"No such child: {HOSTILE}", 404).decode()
    assert browser.responseHeaders.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert "404 - Not Found" in body and "No such child: &lt;script&gt;" in body
    script = dir_request(accept=b"*/*")
    assert error_body(script, "No such child: x", 404) == b"No such child: x\n"
    assert script.responseHeaders.getRawHeaders(b"content-type") == [b"text/plain; charset=utf-8"]

    def fail() -> bytes:
        raise WebError("bad t=nope", 400)

    assert re.search(rb"<h1>400 - Bad Request</h1>", render_sync(browser, fail))


@given(st.binary(max_size=60) | st.sampled_from([b"up-1", b"down-2", b"publish-3", b"2", b"up-2", b"retrieve-3"]))
def test_a_status_name_finds_only_its_own_operation(name):
    history = History()
    ops = [history.start(kind, 10) for kind in ("upload", "download", "mkdir")]
    op = find_operation(history, name)
    assert op is None or name in (op.link.encode(), str(op.id).encode())
    if name in (o.link.encode() for o in ops):
        assert op is not None


def test_a_big_directory_lists_every_child_once():
    rows = [(f"f{i:04d} &<>", "filenode", {"size": i, "mutable": False, "metadata": {"tahoe": {"linkmotime": 1e9}}})
            for i in range(1000)]
    page = directory_page("/uri/CAP/", "big", True, False, rows)
    assert len(re.findall(r'<tr data-name="f\d{4} &amp;&lt;&gt;">', page)) == 1000
    assert page.count('action="/uri/CAP/?t=unlink&amp;name=f0999%20%26%3C%3E&amp;when_done=%2Furi%2FCAP%2F"') == 1
