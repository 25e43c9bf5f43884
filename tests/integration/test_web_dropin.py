"""Issue #18, web API: what a Tahoe 1.20 script sees, on the shared grid of real node
processes. private-key= gives exactly the caps Tahoe derives for that key (files and
directories, as Tahoe's web/unlinked.py and filenode.py take it), answers typed text/html
where Tahoe's are, POST /uri?t=upload answers as Tahoe's does, a deep-stats ophandle is
JSON whatever output= says, and an unhappy upload says Tahoe's sentence."""

import base64
import json
import os
import re
from urllib.parse import quote

import pytest

from shoal.caps.mutable import mutable_caps_from_private_key
from shoal.crypto import rsa
from tests.conftest import SHARED_STORAGE_NODES
from tests.integration.test_web import multipart, request


@pytest.fixture(scope="module")
def url(shared_grid) -> str:
    return shared_grid.client_url


def key_arg(key: rsa.PrivateKey) -> str:
    """The private-key= value Tahoe's `tahoe put --private-key-path` sends (tahoe_put.py)."""
    return base64.urlsafe_b64encode(rsa.private_key_to_der(key)).decode("ascii")


def write_cap(key: rsa.PrivateKey, mdmf: bool) -> str:
    """The write cap Tahoe derives for a mutable file signed by `key`."""
    return mutable_caps_from_private_key(key, mdmf)[0].to_string()


@pytest.fixture(scope="module")
def keys() -> list[rsa.PrivateKey]:
    return [rsa.generate_private_key() for _ in range(6)]


@pytest.mark.parametrize("fmt,mdmf", [("SDMF", False), ("MDMF", True)])
def test_put_uri_with_private_key(url, keys, fmt, mdmf):
    key = keys[0 if mdmf else 1]
    r = request(url, "PUT", f"/uri?format={fmt}&private-key={key_arg(key)}", b"contents " * 10)
    assert r.status == 200, r.text
    assert r.text == write_cap(key, mdmf)
    assert r.headers["content-type"] == "text/html"  # as Tahoe's
    assert request(url, "GET", "/uri/" + quote(r.text, safe="")).body == b"contents " * 10


@pytest.mark.parametrize("fmt,mdmf,prefix", [("SDMF", False, "URI:DIR2:"), ("MDMF", True, "URI:DIR2-MDMF:")])
def test_mkdir_with_private_key(url, keys, fmt, mdmf, prefix):
    key = keys[2 if mdmf else 3]
    r = request(url, "POST", f"/uri?t=mkdir&format={fmt}&private-key={key_arg(key)}")
    assert r.status == 200, r.text
    file_cap = write_cap(key, mdmf)
    assert r.text == prefix + file_cap.split(":", 2)[2]
    assert r.headers["content-type"] == "text/html"
    assert request(url, "GET", "/uri/" + quote(r.text, safe="") + "?t=json").json()[0] == "dirnode"


def test_mkdir_with_children_and_private_key(url, keys):
    key = keys[4]
    kids = json.dumps({"note": ["filenode", {"ro_uri": "URI:LIT:nbswy3dp"}]}).encode()
    r = request(url, "POST", f"/uri?t=mkdir-with-children&private-key={key_arg(key)}", kids)
    assert r.status == 200, r.text
    assert r.text == "URI:DIR2:" + write_cap(key, False).split(":", 2)[2]
    listing = request(url, "GET", "/uri/" + quote(r.text, safe="") + "?t=json").json()
    assert list(listing[1]["children"]) == ["note"]


def test_put_child_with_private_key(url, keys):
    key = keys[5]
    root = request(url, "POST", "/uri?t=mkdir").text
    r = request(url, "PUT", f"/uri/{quote(root, safe='')}/m.txt?format=MDMF&private-key={key_arg(key)}", b"m")
    assert r.status == 201, r.text
    assert r.text == write_cap(key, True)


@pytest.mark.parametrize("value,status", [
    ("not-base64!", 400),
    (base64.urlsafe_b64encode(b"garbage").decode(), 400),
    ("A" * 5000, 400),
])
def test_bad_private_key_is_400_and_not_echoed(url, value, status):
    r = request(url, "PUT", f"/uri?format=SDMF&private-key={value}", b"x")
    assert r.status == status and "private-key=" in r.text
    assert value[:20] not in r.text


def test_a_1024_bit_key_is_refused(url):
    small = rsa.generate_private_key(1024)
    r = request(url, "POST", f"/uri?t=mkdir&private-key={key_arg(small)}")
    assert r.status == 400 and "2048" in r.text


def test_private_key_ignored_where_tahoe_ignores_it(url, keys):
    """Tahoe takes private-key= only where it creates with it: not for CHK, PUT ?t=mkdir
    or a mutable POST t=upload."""
    key = keys[0]
    taken = write_cap(key, False)
    chk = request(url, "PUT", f"/uri?private-key={key_arg(key)}", os.urandom(100)).text
    assert chk.startswith("URI:CHK:")
    dir_cap = request(url, "PUT", f"/uri?t=mkdir&private-key={key_arg(key)}").text
    assert dir_cap.startswith("URI:DIR2:") and dir_cap.split(":")[2] != taken.split(":")[2]


def test_content_types_are_tahoes(url):
    assert request(url, "PUT", "/uri", os.urandom(200)).headers["content-type"] == "text/html"
    assert request(url, "PUT", "/uri?t=mkdir").headers["content-type"] == "text/html"
    assert request(url, "POST", "/uri?t=mkdir").headers["content-type"] == "text/html"
    r = request(url, "POST", "/uri?t=mkdir-with-children", b"{}")
    assert r.status == 200 and r.headers["content-type"] == "text/html"
    root = quote(r.text, safe="")
    r = request(url, "PUT", f"/uri/{root}/f.bin", os.urandom(500))
    assert r.status == 201 and r.headers["content-type"] == "text/html"
    r = request(url, "PUT", f"/uri/{root}/g.bin?t=uri", r.body)
    assert r.status == 200 and r.headers["content-type"] == "text/html"


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_post_upload_of_a_mutable_answers_the_bare_cap(url, fmt):
    body, headers = multipart({"file": b"mutable body"})
    r = request(url, "POST", f"/uri?t=upload&format={fmt}", body, headers)
    assert r.status == 200 and r.headers["content-type"] == "text/html"
    assert re.fullmatch(r"URI:(SSK|MDMF):[a-z2-7]+:[a-z2-7]+", r.text), r.text


def test_post_upload_immutable_answers_tahoes_results_page(url):
    data = os.urandom(2000)
    body, headers = multipart({"file": data})
    r = request(url, "POST", "/uri?t=upload", body, headers)
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    assert "Uploading File... done!" in r.text and "File Uploaded" in r.text
    cap = re.search(r"URI: <tt><span[^>]*>(URI:CHK:[^<]+)</span></tt>", r.text).group(1)
    assert request(url, "GET", "/uri/" + quote(cap, safe="")).body == data
    assert "File Size: 2000 bytes" in r.text


def test_deep_stats_operation_is_json_whatever_output_says(url):
    root = request(url, "POST", "/uri?t=mkdir").text
    request(url, "PUT", f"/uri/{quote(root, safe='')}/a.bin", os.urandom(5000))
    r = request(url, "POST", f"/uri/{quote(root, safe='')}?t=start-deep-stats&ophandle=dropin-st")
    assert r.status == 302
    for query in ("", "?output=html", "?output=JSON"):
        for _ in range(200):
            answer = request(url, "GET", "/operations/dropin-st" + query)
            data = json.loads(answer.body)  # JSON, not an HTML page
            if data["finished"]:
                break
        assert answer.headers["content-type"] == "text/plain"
        assert data["count-immutable-files"] == 1 and data["count-directories"] == 1
        assert data["size-immutable-files"] == 5000


def test_unhappy_upload_says_tahoes_sentence(shared_grid):
    n = SHARED_STORAGE_NODES
    client = shared_grid.add_client("dropin-unhappy", "--shares-needed", "2", "--shares-happy", str(n + 1),
                                    "--shares-total", str(n + 2))
    r = request(client.web_url, "PUT", "/uri", os.urandom(5000))
    assert r.status == 503, r.text
    assert (f"shares could be placed on only {n} server(s) such that any 2 of them have enough shares "
            f"to recover the file, but we were asked to place shares on at least {n + 1} such servers.") in r.text
    assert "Traceback" not in r.text
