"""Mutable files and directories through the client node's web API (Tahoe-LAFS 1.20
webapi.rst) on the shared real grid of node processes."""

import json
import os
from urllib.parse import quote

import pytest

from tests.integration.test_web import multipart, request


@pytest.fixture(scope="module")
def url(shared_grid) -> str:
    return shared_grid.client_url


def u(cap: str, *path: str) -> str:
    return "/uri/" + quote(cap, safe="") + "".join("/" + quote(p, safe="") for p in path)


def children(url: str, dircap: str, *path: str) -> dict:
    kind, data = request(url, "GET", u(dircap, *path) + "?t=json").json()
    assert kind == "dirnode"
    return data["children"]


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_mutable_file(url, fmt):
    r = request(url, "PUT", f"/uri?format={fmt}", b"first contents")
    assert r.status == 200
    cap = r.text
    assert cap.startswith("URI:SSK:" if fmt == "SDMF" else "URI:MDMF:")
    assert request(url, "GET", u(cap)).body == b"first contents"
    kind, info = request(url, "GET", u(cap) + "?t=json").json()
    assert kind == "filenode" and info["mutable"] is True and info["format"] == fmt and info["size"] == 14
    assert info["rw_uri"] == cap and info["ro_uri"].startswith("URI:SSK-RO:" if fmt == "SDMF" else "URI:MDMF-RO:")
    assert request(url, "PUT", u(cap), b"0123456789").text == cap
    assert request(url, "PUT", u(cap) + "?offset=4", b"AB").status == 200
    assert request(url, "GET", u(cap)).body == b"0123AB6789"
    assert request(url, "GET", u(cap), headers={"Range": "bytes=3-6"}).body == b"3AB6"
    ro = info["ro_uri"]
    r = request(url, "PUT", u(ro), b"nope")
    assert r.status == 403
    assert request(url, "GET", u(ro)).body == b"0123AB6789"
    assert request(url, "PUT", u(cap) + "?offset=-1", b"x").status == 400


def test_mutable_by_form_and_flag(url):
    body, headers = multipart({"file": b"form contents"})
    r = request(url, "POST", "/uri?t=upload&format=MDMF&redirect_to_result=true", body, headers)
    assert r.status == 303
    cap = r.headers["location"].split("/uri/")[1]
    assert request(url, "GET", "/uri/" + cap).body == b"form contents"
    assert request(url, "PUT", "/uri?mutable=true", b"flagged").text.startswith("URI:SSK:")


def test_directory_tree(url):
    r = request(url, "POST", "/uri?t=mkdir")
    assert r.status == 200 and r.text.startswith("URI:DIR2:")
    root = r.text
    # PUT a file deep down: intermediate directories appear, 201 for a new file
    r = request(url, "PUT", u(root, "docs", "notes", "a.txt"), b"alpha")
    assert r.status == 201 and r.text.startswith("URI:LIT:")
    assert request(url, "GET", u(root, "docs", "notes", "a.txt")).body == b"alpha"
    big = os.urandom(100_000)
    r = request(url, "PUT", u(root, "docs", "big.bin"), big)
    assert r.status == 201 and r.text.startswith("URI:CHK:")
    r = request(url, "PUT", u(root, "docs", "big.bin"), big[:50_000])
    assert r.status == 200  # replaced
    assert request(url, "PUT", u(root, "docs", "big.bin") + "?replace=false", b"x").status == 409
    kids = children(url, root, "docs")
    assert set(kids) == {"notes", "big.bin"}
    kind, info = kids["big.bin"]
    assert kind == "filenode" and info["size"] == 50_000 and info["format"] == "CHK"
    assert "linkcrtime" in info["metadata"]["tahoe"] and info["ro_uri"].startswith("URI:CHK:")
    assert kids["notes"][0] == "dirnode" and kids["notes"][1]["mutable"] is True
    kind, top = request(url, "GET", u(root) + "?t=json").json()
    assert top["rw_uri"] == root and top["ro_uri"].startswith("URI:DIR2-RO:") and top["mutable"] is True
    assert top["verify_uri"].startswith("URI:DIR2-Verifier:")
    # a file has no children; a missing child is 404
    assert request(url, "GET", u(root, "docs", "big.bin", "x")).status == 400
    r = request(url, "GET", u(root, "docs", "nothing"))
    assert r.status == 404 and "No such child" in r.text
    # a file in the way of an intermediate directory
    assert request(url, "PUT", u(root, "docs", "big.bin", "under.txt"), b"x").status == 409
    # the HTML listing
    page = request(url, "GET", u(root, "docs") + "/")
    assert page.status == 200 and "big.bin" in page.text and "48.8 KiB" in page.text


def test_mutable_child_created_in_one_put_and_replace_false(url):
    """PUT /uri/$DIRCAP/name?format=SDMF creates a mutable file and links it (201, its
    write cap); with replace=false a name already there is 409 and nothing changes,
    a mutable file's contents included (Tahoe 1.20's early trap)."""
    root = request(url, "POST", "/uri?t=mkdir").text
    r = request(url, "PUT", u(root, "m") + "?format=SDMF&replace=false", b"first")
    assert r.status == 201 and r.text.startswith("URI:SSK:")
    cap = r.text
    kind, info = children(url, root)["m"]
    assert kind == "filenode" and info["rw_uri"] == cap and info["mutable"] is True
    r = request(url, "PUT", u(root, "m") + "?format=SDMF&replace=false", b"second")
    assert r.status == 409 and cap not in r.text
    assert request(url, "PUT", u(root, "m") + "?replace=false", b"third").status == 409
    assert request(url, "GET", u(root, "m")).body == b"first"
    assert request(url, "GET", u(cap)).body == b"first"
    # without replace=false a PUT to the mutable child still replaces its contents in place
    assert request(url, "PUT", u(root, "m"), b"fourth").status == 200
    assert request(url, "GET", u(cap)).body == b"fourth"
    assert children(url, root)["m"][1]["rw_uri"] == cap


def test_directory_edits(url):
    root = request(url, "POST", "/uri?t=mkdir").text
    file_cap = request(url, "PUT", "/uri", b"linked file contents that are long enough for CHK").text
    assert request(url, "PUT", u(root, "f") + "?t=uri", file_cap.encode()).text == file_cap
    assert request(url, "POST", u(root) + f"?t=uri&name=g&uri={quote(file_cap)}").text == file_cap
    assert request(url, "POST", u(root) + "?t=rename&from_name=g&to_name=h").status == 200
    assert set(children(url, root)) == {"f", "h"}
    assert request(url, "POST", u(root) + "?t=rename&from_name=h&to_name=f&replace=false").status == 409
    sub = request(url, "POST", u(root) + "?t=mkdir&name=sub").text
    assert sub.startswith("URI:DIR2:")
    r = request(url, "POST", u(root) + f"?t=relink&from_name=h&to_dir={quote(root)}/sub&to_name=moved")
    assert r.status == 200, r.text
    assert set(children(url, root)) == {"f", "sub"} and set(children(url, sub)) == {"moved"}
    assert request(url, "POST", u(root) + "?t=unlink&name=f").text == "thing unlinked"
    assert request(url, "POST", u(root) + "?t=delete&name=f").status == 404
    r = request(url, "DELETE", u(root, "sub", "moved"))
    assert r.status == 200 and r.text == file_cap
    # set-children with Tahoe's JSON
    kids = {"x": ["filenode", {"ro_uri": file_cap, "metadata": {"note": "hi"}}],
            "y": ["filenode", {"ro_uri": file_cap}]}
    r = request(url, "POST", u(root) + "?t=set-children", json.dumps(kids).encode())
    assert r.status == 200
    listed = children(url, root)
    assert set(listed) == {"sub", "x", "y"} and listed["x"][1]["metadata"]["note"] == "hi"
    assert request(url, "POST", u(root) + "?t=set_children", b"{not json").status == 400
    # when_done
    r = request(url, "POST", u(root) + "?t=unlink&name=y&when_done=/done")
    assert r.status == 302 and r.headers["location"] == "/done"
    # upload a form into the directory, named by the form's filename
    body, headers = multipart({"file": b"uploaded via form"}, filename="form.txt")
    r = request(url, "POST", u(root) + "?t=upload", body, headers)
    assert r.status == 200
    assert request(url, "GET", u(root, "form.txt")).body == b"uploaded via form"
    assert request(url, "POST", u(root) + "?t=frob").status == 400


def test_mkdir_family(url):
    lit = request(url, "PUT", "/uri", b"tiny").text
    kids = {"tiny": ["filenode", {"ro_uri": lit}]}
    r = request(url, "POST", "/uri?t=mkdir-with-children", json.dumps(kids).encode())
    assert r.status == 200 and set(children(url, r.text)) == {"tiny"}
    r = request(url, "POST", "/uri?t=mkdir-immutable", json.dumps(kids).encode())
    assert r.status == 200 and r.text.startswith(("URI:DIR2-LIT:", "URI:DIR2-CHK:"))
    imm = r.text
    kind, info = request(url, "GET", u(imm) + "?t=json").json()
    assert info["mutable"] is False and "rw_uri" not in info
    assert request(url, "PUT", u(imm, "new"), b"x").status == 403
    mutable_kid = request(url, "POST", "/uri?t=mkdir").text
    r = request(url, "POST", "/uri?t=mkdir-immutable",
                json.dumps({"m": ["dirnode", {"rw_uri": mutable_kid}]}).encode())
    assert r.status == 400
    r = request(url, "PUT", "/uri?t=mkdir&format=MDMF")
    assert r.status == 200 and r.text.startswith("URI:DIR2-MDMF:")
    assert request(url, "PUT", "/uri?t=mkdir&format=CHK").status == 400
    assert request(url, "POST", "/uri?t=mkdir", b"{}").status == 400
    r = request(url, "POST", "/uri?t=mkdir&redirect_to_result=true")
    assert r.status == 303 and r.headers["location"].startswith("/uri/URI%3ADIR2%3A")
    root = request(url, "POST", "/uri?t=mkdir").text
    r = request(url, "PUT", u(root, "a", "b") + "?t=mkdir")
    assert r.status == 200 and r.text.startswith("URI:DIR2:")
    assert request(url, "PUT", u(root, "a", "b") + "?t=mkdir").text == r.text  # already there
    assert request(url, "POST", u(root) + "?t=mkdir-with-children&name=c", json.dumps(kids).encode()).status == 200
    assert set(children(url, root, "c")) == {"tiny"}


def test_read_only_directory(url):
    root = request(url, "POST", "/uri?t=mkdir").text
    ro = request(url, "GET", u(root) + "?t=readonly-uri").text
    assert ro.startswith("URI:DIR2-RO:")
    r = request(url, "PUT", u(ro, "x"), b"data")
    assert r.status == 403, r.text
    assert request(url, "POST", u(ro) + "?t=mkdir&name=d").status == 403


def test_deep_operations(url):
    root = request(url, "POST", "/uri?t=mkdir").text
    request(url, "PUT", u(root, "one.bin"), os.urandom(1000))
    request(url, "PUT", u(root, "sub", "two.txt"), b"2")
    r = request(url, "POST", u(root) + "?t=start-manifest&ophandle=man1")
    assert r.status == 302 and r.headers["location"] == "/operations/man1"
    for _ in range(100):
        data = request(url, "GET", "/operations/man1?output=JSON").json()
        if data["finished"]:
            break
    assert data["finished"] is True
    paths = sorted(tuple(p) for p, _ in data["manifest"])
    assert paths == [(), ("one.bin",), ("sub",), ("sub", "two.txt")]
    stats = data["stats"]
    assert stats["count-directories"] == 2 and stats["count-immutable-files"] == 1
    assert stats["count-literal-files"] == 1 and stats["size-immutable-files"] == 1000
    assert [1, 3, 1] in stats["size-files-histogram"]
    request(url, "POST", u(root) + "?t=start-deep-stats&ophandle=st1")
    for _ in range(100):
        data = request(url, "GET", "/operations/st1?output=json").json()
        if data["finished"]:
            break
    assert data["count-files"] == 2 and data["api-version"] == 1
    assert request(url, "POST", u(root) + "?t=start-manifest").status == 400  # needs ophandle
    r = request(url, "POST", u(root, "one.bin") + "?t=check&output=JSON")
    assert r.status == 200 and r.json()["results"]["healthy"] is True
    assert "Healthy" in request(url, "POST", u(root) + "?t=check").text  # HTML
    request(url, "POST", u(root) + "?t=start-deep-check&ophandle=dc1&verify=true")
    for _ in range(200):
        data = request(url, "GET", "/operations/dc1?output=json").json()
        if data["finished"]:
            break
    assert data["count-objects-checked"] == 3 and data["count-objects-healthy"] == 3  # LIT not counted
    lines = request(url, "POST", u(root) + "?t=stream-deep-check").text.splitlines()
    assert json.loads(lines[-1])["type"] == "stats" and len(lines) == 5
    lines = request(url, "POST", u(root) + "?t=stream-manifest").text.splitlines()
    objects = [json.loads(line) for line in lines]
    assert objects[-1]["type"] == "stats"
    assert {o["type"] for o in objects[:-1]} == {"directory", "file"} and len(objects) == 5


def test_verify_caps_in_and_of_directories(url):
    root = request(url, "POST", "/uri?t=mkdir").text
    sub = request(url, "POST", u(root) + "?t=mkdir&name=sub").text
    big = request(url, "PUT", "/uri", os.urandom(20_000)).text
    chk_verifier = request(url, "GET", u(big) + "?t=json").json()[1]["verify_uri"]
    dir_verifier = request(url, "GET", u(sub) + "?t=json").json()[1]["verify_uri"]
    mutable = request(url, "PUT", "/uri?format=SDMF", b"m").text
    ssk_verifier = request(url, "GET", u(mutable) + "?t=json").json()[1]["verify_uri"]
    # a directory's verify cap is not a directory one can read
    for method in ("GET", "POST", "PUT"):
        r = request(url, method, u(dir_verifier) + "?t=json", b"")
        assert r.status == 400 and r.text == "a directory verify cap cannot be read or listed; use it with t=check\n"
    # linked in a directory: a CHK verify cap is a node that cannot be read, the verify
    # caps of a directory and of a mutable file are unknown children (as in Tahoe)
    links = {"chk-v": chk_verifier, "dir-v": "ro." + dir_verifier, "ssk-v": "ro." + ssk_verifier}
    for name, cap in links.items():
        assert request(url, "PUT", u(root, name) + "?t=uri", cap.encode()).status == 200
    kids = children(url, root)
    for name, verifier in (("chk-v", chk_verifier), ("dir-v", dir_verifier), ("ssk-v", ssk_verifier)):
        kind, info = kids[name]
        assert kind == "unknown" and info["verify_uri"] == verifier and "size" not in info
    assert kids["sub"][0] == "dirnode"
    r = request(url, "GET", u(root, "chk-v"))
    assert r.status == 400 and r.text == "a verify cap cannot be read; use it with t=check\n"
    r = request(url, "GET", u(root, "dir-v"))
    assert r.status == 400 and "GET unknown URI type" in r.text
    assert request(url, "GET", u(root, "ssk-v") + "?t=json").json()[0] == "unknown"
    stats = request(url, "POST", u(root) + "?t=stream-manifest").text.splitlines()
    lines = [json.loads(line) for line in stats]
    types = {tuple(line["path"]): line["type"] for line in lines if "path" in line}
    assert types[("chk-v",)] == "file" and types[("dir-v",)] == "unknown" and types[("ssk-v",)] == "unknown"
    final = lines[-1]["stats"]
    assert final["count-immutable-files"] == 1 and final["count-unknown"] == 2 and final["count-directories"] == 2
