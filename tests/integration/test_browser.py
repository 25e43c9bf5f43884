"""A person's work in the directory page, in headless Chromium driven over WebDriver
(Debian's chromium and chromium-driver; `make chromium` installs them): upload a file
through the page, see it listed, make a directory, rename the file, download it,
read its info page, unlink the directory, and meet the HTML error page. A client of
this module's own on the shared real grid; screenshots of each page in tests/output/."""

import json
import os
import urllib.error
import urllib.request
from urllib.parse import quote, unquote

import pytest

from shoal.testing.grid import shares_args
from shoal.testing.wait import wait_until
from shoal.testing.webdriver import Browser, available

OUTPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "output")

pytestmark = pytest.mark.skipif(not available(), reason="needs Debian's chromium and chromium-driver (make chromium)")


@pytest.fixture(scope="module")
def client(shared_grid):
    node = shared_grid.add_client("browser-client", *shares_args(2, 2, 3))
    yield node.web_url
    node.stop()


@pytest.fixture(scope="module")
def browser():
    b = Browser.start()
    yield b
    b.stop()


def shot(browser: Browser, name: str, min_size: int = 10_000) -> None:
    """A screenshot in tests/output/; `min_size` bytes of PNG tell a rendered page from a blank one."""
    os.makedirs(OUTPUT, exist_ok=True)
    with open(os.path.join(OUTPUT, ".gitignore"), "w") as f:
        f.write("*\n")
    png = browser.screenshot(os.path.join(OUTPUT, f"{name}.png"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > min_size


def children(url: str, dircap: str) -> dict:
    with urllib.request.urlopen(url + "uri/" + quote(dircap, safe="") + "?t=json", timeout=60) as r:
        return json.loads(r.read())[1]["children"]


def row_names(browser: Browser) -> list[str]:
    return browser.run("return Array.from(document.querySelectorAll('#children tr[data-name]'))"
                       ".map(r => r.dataset.name);")


def wait_for_rows(browser: Browser, want: set[str], gone: set[str] = frozenset()) -> list[str]:
    def listed() -> list[str] | None:
        names = row_names(browser)
        return names if want <= set(names) and not gone & set(names) else None
    return wait_until(listed, timeout=60, what=f"the listing to show {sorted(want)} without {sorted(gone)}")


def button_in_row(browser: Browser, name: str, css: str) -> str:
    for row in browser.find_all("#children tr[data-name]"):
        if browser.run("return arguments[0].dataset.name;", {"element-6066-11e4-a52e-4f735466cecf": row}) == name:
            return str(browser.run("return arguments[0].querySelector(arguments[1]);",
                                   {"element-6066-11e4-a52e-4f735466cecf": row}, css)
                       ["element-6066-11e4-a52e-4f735466cecf"])
    raise AssertionError(f"no row for {name!r}")


def test_work_in_a_directory_page(client, browser, tmp_path):
    # the welcome page's forms: upload an unlinked file (landing on its info page) ...
    browser.get(client)
    shot(browser, "welcome-tools")
    unlinked = tmp_path / "unlinked.txt"
    unlinked.write_bytes(b"an unlinked file, uploaded from the welcome page\n" * 100)
    browser.type(browser.find("#upload-unlinked-file"), str(unlinked), clear=False)
    browser.click(browser.find("#upload-unlinked-submit"))
    wait_until(lambda: "t=info" in browser.url or None, timeout=60, what="the uploaded file's info page")
    cap = browser.text(browser.find("code.cap"))
    assert cap.startswith("URI:CHK:")
    with urllib.request.urlopen(client + "uri/" + quote(cap, safe=""), timeout=60) as r:
        assert r.read() == unlinked.read_bytes()

    # ... and make a directory, opening it
    browser.get(client)
    browser.click(browser.find("#create-directory"))
    wait_until(lambda: "/uri/URI%3ADIR2%3A" in browser.url or None, timeout=60, what="the new directory's page")
    dircap = unquote(browser.url.split("/uri/", 1)[1].rstrip("/"))
    page = client + "uri/" + quote(dircap, safe="") + "/"
    assert "This directory is empty." in browser.source
    shot(browser, "directory-empty")

    # upload a file through the page's form (the script posts it with progress, then reloads)
    data = os.urandom(300_000)
    local = tmp_path / "hello report.bin"
    local.write_bytes(data)
    browser.type(browser.find("#upload-file"), str(local), clear=False)
    browser.click(browser.find("#upload-submit"))
    wait_for_rows(browser, {"hello report.bin"})
    assert children(client, dircap)["hello report.bin"][1]["size"] == len(data)
    assert browser.text(browser.find("#upload-text")) == "Uploaded 1 file."
    progress_events = browser.run("return document.getElementById('upload-form').dataset.progressEvents;")
    assert int(progress_events) >= 1  # the page showed the upload's progress
    shot(browser, "directory-uploaded")

    # several files at once
    several = {f"part {i}.txt": os.urandom(1000 + i) for i in range(3)}
    for name, body in several.items():
        (tmp_path / name).write_bytes(body)
    browser.type(browser.find("#upload-file"), "\n".join(str(tmp_path / n) for n in several), clear=False)
    browser.click(browser.find("#upload-submit"))
    wait_for_rows(browser, {"hello report.bin", *several})
    assert browser.text(browser.find("#upload-text")) == "Uploaded 3 files."
    listed = children(client, dircap)
    assert all(listed[n][1]["size"] == len(b) for n, b in several.items())
    for name in several:
        browser.click(button_in_row(browser, name, "input.unlink"))
        wait_for_rows(browser, {"hello report.bin"}, gone={name})

    # make a directory
    browser.type(browser.find("#mkdir-name"), "photos")
    browser.click(browser.find("#mkdir-submit"))
    wait_for_rows(browser, {"hello report.bin", "photos"})
    assert children(client, dircap)["photos"][0] == "dirnode"

    # rename the file through Tahoe's rename form
    browser.click(button_in_row(browser, "hello report.bin", "input.rename"))
    wait_until(lambda: "t=rename-form" in browser.url or None, timeout=30, what="the rename form")
    assert "Rename in directory SI=" in browser.source
    shot(browser, "rename-form")
    browser.type(browser.find("#to-name"), "renamed.bin")
    browser.click(browser.find("#rename-submit"))
    wait_for_rows(browser, {"renamed.bin", "photos"}, gone={"hello report.bin"})
    assert set(children(client, dircap)) == {"renamed.bin", "photos"}
    shot(browser, "directory-renamed")

    # download it with the row's download link
    browser.click(button_in_row(browser, "renamed.bin", "a.download"))
    target = os.path.join(browser.downloads, "renamed.bin")
    wait_until(lambda: os.path.exists(target) and os.path.getsize(target) == len(data) or None,
               timeout=60, what="the browser's download")
    with open(target, "rb") as f:
        assert f.read() == data

    # its info page shows its caps
    browser.get(page + "renamed.bin?t=info")
    caps = [browser.text(e) for e in browser.find_all("code.cap")]
    assert caps and caps[0].startswith("URI:CHK:") and caps[0] == children(client, dircap)["renamed.bin"][1]["ro_uri"]
    shot(browser, "file-info")

    # unlink the directory again
    browser.get(page)
    browser.click(button_in_row(browser, "photos", "input.unlink"))
    wait_for_rows(browser, {"renamed.bin"}, gone={"photos"})
    assert set(children(client, dircap)) == {"renamed.bin"}

    # a missing child is Tahoe's 404, as an HTML page for the browser
    browser.get(page + "no-such-file")
    assert "404 - Error" in browser.source and "No such child: no-such-file" in browser.source  # Tahoe's ErrorPage
    shot(browser, "error-404", min_size=2_000)  # Tahoe's ErrorPage: a heading and one line, mostly white


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "shoal-test-boundary-7f3a"
    parts = [f'--{boundary}\r\ncontent-disposition: form-data; name="file"; filename="{name}"\r\n'
             f"content-type: application/octet-stream\r\n\r\n".encode() + body + b"\r\n" for name, body in files]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_a_form_with_several_files_uploads_each(client):
    """What the page's form posts without JavaScript: every file, under its own name."""
    with urllib.request.urlopen(urllib.request.Request(client + "uri?t=mkdir", data=b"", method="POST"),
                                timeout=60) as r:
        dircap = r.read().decode().strip()
    files = [("one.txt", b"first file"), ("two.bin", os.urandom(5000)), ("three", b"")]
    body, ctype = multipart(files)
    url = client + "uri/" + quote(dircap, safe="") + "/?t=upload"
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST",
                                                       headers={"content-type": ctype}), timeout=60) as r:
        caps = r.read().decode().split("\n")
    listed = children(client, dircap)
    assert set(listed) == {name for name, _ in files}
    assert [listed[name][1]["ro_uri"] for name, _ in files] == caps
    assert [listed[name][1]["size"] for name, _ in files] == [len(b) for _, b in files]
    body, ctype = multipart([("same", b"a"), ("same", b"b")])
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": ctype})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=60)
    assert e.value.code == 400 and b"same filename" in e.value.read()
    assert set(children(client, dircap)) == {name for name, _ in files}
