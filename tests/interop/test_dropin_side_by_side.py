"""Issue #18 part 1, side by side: the same script run against a Tahoe-LAFS 1.20 gateway
and a shoal gateway on one mixed grid (a shoal introducer, two shoal and two Tahoe
storage nodes), comparing what a script sees: readiness text and the eliot log, answers'
content types and bodies, private-key= caps, POST /uri?t=upload answers, the deep-stats
ophandle, the unhappy-upload sentence; and the CLIs sharing one backupdb.sqlite and
writing the same --caps-only trees."""

import base64
import json
import os
import re
import subprocess
import sys
import types
from urllib.parse import quote

import pytest

from shoal.caps.mutable import mutable_caps_from_private_key
from shoal.crypto import rsa
from shoal.testing.grid import shares_args, wait_for_servers
from shoal.testing.processes import stop_all, wait_for_readiness
from tests.integration.test_web import multipart, request
from tests.interop.conftest import MIXED_SHARES, TahoeNode, tahoe, tahoe_client_args, tahoe_node_url

SHOAL = [sys.executable, "-m", "shoal.main"]
UPLOAD_PAGE_CAP = re.compile(r"URI: <tt><span[^>]*>(URI:CHK:[^<]+)</span></tt>")


@pytest.fixture(scope="module")
def gateways(mixed_grid):
    """name -> web URL of the Tahoe client and of a shoal client with the same encoding."""
    sclient = mixed_grid.grid.add_client("dropin-side", *shares_args(*MIXED_SHARES),
                                         servers=len(mixed_grid.storage))
    yield {"tahoe": mixed_grid.turl, "shoal": sclient.web_url}
    sclient.stop()


def both(gateways, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    return {name: request(url, method, path, body, headers) for name, url in gateways.items()}


def key_arg(key: rsa.PrivateKey) -> str:
    return base64.urlsafe_b64encode(rsa.private_key_to_der(key)).decode("ascii")


# --- node processes -------------------------------------------------------------------------


def test_readiness_text_and_eliot_log_alike(peer, mixed_grid, tmp_path):
    """Both run as Tahoe's integration harness runs a node; the same waits and reads work."""
    furl = mixed_grid.furl
    tahoe(peer, *tahoe_client_args(tmp_path / "t", furl))
    subprocess.run([*SHOAL, "create-client", "--webport", "tcp:0:interface=127.0.0.1", "--introducer", furl,
                    str(tmp_path / "s")], check=True, capture_output=True, timeout=60)
    procs = {
        name: subprocess.Popen([*command, "--eliot-destination", f"file:{tmp_path / name}/logs/eliot.json",
                                "run", str(tmp_path / name)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, command in (("t", [str(peer / "tahoe")]), ("s", SHOAL))
    }
    try:
        for name, proc in procs.items():
            lines = wait_for_readiness(proc, 90)
            assert lines[-1].endswith(b" [-] client running"), (name, lines)
            assert any(line.startswith(b"running node in ") for line in lines), (name, lines)
            tahoe_node_url(tmp_path / name)  # then node.url, as the harness polls for it
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(30)
            for pipe in (proc.stdin, proc.stdout):
                pipe.close()
    for name in procs:
        with open(tmp_path / name / "logs" / "eliot.json", encoding="utf-8") as f:
            messages = [json.loads(line) for line in f if line.strip()]
        running = [m for m in messages if m.get("message_type") == "eliot:twisted"
                   and "client running" in (m.get("log_text") or " ".join(m.get("message") or []))]
        assert running and all({"timestamp", "task_uuid", "task_level"} <= set(m) for m in running), name


# --- web API --------------------------------------------------------------------------------


def test_cap_answers_are_text_html_on_both(gateways):
    for path, method, body in (("/uri", "PUT", os.urandom(300)), ("/uri?t=mkdir", "PUT", None),
                               ("/uri?t=mkdir", "POST", None), ("/uri?format=MDMF", "PUT", b"m")):
        answers = both(gateways, method, path, body)
        for name, r in answers.items():
            assert r.status == 200, (name, path, r.text)
            assert r.headers["content-type"].split(";")[0] == "text/html", (name, path, r.headers)
            assert re.fullmatch(r"URI:[A-Z0-9-]+:[a-z2-7]+:[a-z0-9:]+", r.text), (name, path, r.text)
        shapes = {name: r.text.split(":")[1] for name, r in answers.items()}
        assert shapes["tahoe"] == shapes["shoal"], path
    for name, url in gateways.items():  # a child PUT, and a cap linked with t=uri
        root = quote(request(url, "POST", "/uri?t=mkdir").text, safe="")
        r = request(url, "PUT", f"/uri/{root}/f.bin", os.urandom(500))
        assert r.status == 201 and r.headers["content-type"].split(";")[0] == "text/html", (name, r.headers)
        r = request(url, "PUT", f"/uri/{root}/g.bin?t=uri", r.body)
        assert r.status == 200 and r.headers["content-type"].split(";")[0] == "text/html", (name, r.headers)


@pytest.mark.parametrize("query,mdmf,prefix", [
    ("PUT /uri?format=SDMF", False, "URI:SSK:"),
    ("PUT /uri?format=MDMF", True, "URI:MDMF:"),
    ("POST /uri?t=mkdir", False, "URI:DIR2:"),
    ("POST /uri?t=mkdir&format=MDMF", True, "URI:DIR2-MDMF:"),
])
def test_private_key_gives_the_same_cap_on_both(gateways, query, mdmf, prefix):
    method, path = query.split(" ")
    for name, url in gateways.items():
        key = rsa.generate_private_key()  # one key per object: the key fixes the storage index
        r = request(url, method, f"{path}&private-key={key_arg(key)}", b"keyed" if method == "PUT" else None)
        assert r.status == 200, (name, r.text)
        expected = prefix + mutable_caps_from_private_key(key, mdmf)[0].to_string().split(":", 2)[2]
        assert r.text == expected, name
    # and each reads what the other made with a given key
    key = rsa.generate_private_key()
    made = request(gateways["tahoe"], "PUT", f"/uri?format=SDMF&private-key={key_arg(key)}", b"from tahoe").text
    assert request(gateways["shoal"], "GET", "/uri/" + quote(made, safe="")).body == b"from tahoe"


def test_post_upload_answers_alike(gateways):
    data = os.urandom(4000)
    body, headers = multipart({"file": data})
    for name, r in both(gateways, "POST", "/uri?t=upload", body, headers).items():
        assert r.status == 200 and "Uploading File... done!" in r.text, name
        cap = UPLOAD_PAGE_CAP.search(r.text).group(1)  # a script scraping Tahoe's page finds it in shoal's
        assert cap.endswith(":4000"), name
        assert request(gateways["tahoe"], "GET", "/uri/" + quote(cap, safe="")).body == data
    body, headers = multipart({"file": b"mutable"})
    for name, r in both(gateways, "POST", "/uri?t=upload&format=MDMF", body, headers).items():
        assert r.status == 200 and r.headers["content-type"].split(";")[0] == "text/html", name
        assert re.fullmatch(r"URI:MDMF:[a-z2-7]+:[a-z2-7]+", r.text), (name, r.text)


def test_deep_stats_ophandle_is_the_same_json(gateways):
    root = request(gateways["shoal"], "POST", "/uri?t=mkdir").text
    request(gateways["shoal"], "PUT", f"/uri/{quote(root, safe='')}/a.bin", os.urandom(20_000))
    request(gateways["shoal"], "PUT", f"/uri/{quote(root, safe='')}/sub/b.txt", b"small")
    results = {}
    for name, url in gateways.items():
        r = request(url, "POST", f"/uri/{quote(root, safe='')}?t=start-deep-stats&ophandle=dropin-{name}")
        assert r.status in (200, 302), (name, r.status)
        for _ in range(300):
            answer = request(url, "GET", f"/operations/dropin-{name}")  # no output=: Tahoe answers JSON
            data = json.loads(answer.body)
            if data["finished"]:
                break
        assert answer.headers["content-type"].split(";")[0] == "text/plain", name
        results[name] = data
    tahoe_stats, shoal_stats = results["tahoe"], results["shoal"]
    assert set(tahoe_stats) <= set(shoal_stats)
    assert {k: shoal_stats[k] for k in tahoe_stats} == tahoe_stats


def test_unhappy_upload_sentence_is_tahoes(peer, mixed_grid, tmp_path):
    servers = len(mixed_grid.storage)
    args = shares_args(2, servers + 1, servers + 2)
    tahoe(peer, *tahoe_client_args(tmp_path / "t", mixed_grid.furl, *args))
    tnode = TahoeNode(peer, tmp_path / "t", wait_for="node.url")
    snode = None
    try:
        snode = mixed_grid.grid.add_client("dropin-unhappy", *args, servers=servers)
        turl = tahoe_node_url(tmp_path / "t")
        wait_for_servers(turl, servers, timeout=90)
        sentence = (f"shares could be placed on only {servers} server(s) such that any 2 of them have enough "
                    f"shares to recover the file, but we were asked to place shares on at least {servers + 1} "
                    f"such servers.")
        for name, url in (("tahoe", turl), ("shoal", snode.web_url)):
            r = request(url, "PUT", "/uri", os.urandom(10_000))
            assert r.status >= 500 and sentence in r.text, (name, r.status, r.text[:2000])
    finally:
        stop_all([tnode, snode])


# --- the CLIs -------------------------------------------------------------------------------


def cli(peer, which: str, clidir, *args: str) -> str:
    command = [str(peer / "tahoe")] if which == "tahoe" else SHOAL
    r = subprocess.run([*command, "-d", str(clidir), *args], capture_output=True, timeout=300)
    assert r.returncode == 0, (which, args, r.stdout, r.stderr)
    return r.stdout.decode()


@pytest.fixture(scope="module")
def clidir(gateways, tmp_path_factory):
    """A CLI node directory (node.url, private/) whose node.url each test points at a gateway."""
    d = tmp_path_factory.mktemp("dropin-cli")
    (d / "private").mkdir(mode=0o700)

    def use(name: str) -> None:
        (d / "node.url").write_text(gateways[name] + "\n")

    return types.SimpleNamespace(path=d, use=use)


def test_backup_history_is_shared_both_ways(peer, clidir, tmp_path):
    src = tmp_path / "home"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(os.urandom(3000))
    (src / "sub" / "b.txt").write_bytes(os.urandom(4000))
    clidir.use("tahoe")
    cli(peer, "tahoe", clidir.path, "create-alias", "bk")
    out = cli(peer, "tahoe", clidir.path, "backup", str(src), "bk:home")
    assert "2 files uploaded (0 reused)" in out and "2 directories created (0 reused)" in out
    clidir.use("shoal")  # the other implementation, through the other gateway, same backupdb
    second = json.loads(cli(peer, "shoal", clidir.path, "backup", "--json", str(src), "bk:home"))
    assert (second["files-uploaded"], second["files-reused"]) == (0, 2)
    assert (second["directories"], second["directories-reused"]) == (0, 2)  # Tahoe's dirhashes match
    (src / "c.txt").write_bytes(os.urandom(5000))
    third = json.loads(cli(peer, "shoal", clidir.path, "backup", "--json", str(src), "bk:home"))
    assert (third["files-uploaded"], third["files-reused"], third["directories"]) == (1, 2, 1)
    clidir.use("tahoe")
    out = cli(peer, "tahoe", clidir.path, "backup", str(src), "bk:home")
    assert "0 files uploaded (3 reused)" in out and "0 directories created (2 reused)" in out
    listing = [line.strip() for line in cli(peer, "tahoe", clidir.path, "ls", "--uri", "bk:home").splitlines()]
    assert f"Latest {third['cap']}" in listing  # every part reused: the same tree as shoal's


def test_backup_skips_symlinks_and_special_files_as_tahoe_does(peer, clidir, tmp_path):
    """A symlink and a FIFO are skipped with Tahoe's warnings; both CLIs print the same report
    line and exit 2, the code a script reads as "done, with skips"."""
    src = tmp_path / "skips"
    src.mkdir()
    (src / "a.txt").write_bytes(os.urandom(2000))
    (src / "link").symlink_to(src / "a.txt")
    os.mkfifo(src / "pipe")
    seen = {}
    for which in ("tahoe", "shoal"):
        clidir.use(which)
        if which == "tahoe":
            cli(peer, "tahoe", clidir.path, "create-alias", "skips")
        command = [str(peer / "tahoe")] if which == "tahoe" else SHOAL
        r = subprocess.run([*command, "-d", str(clidir.path), "backup", str(src), f"skips:{which}"],
                           capture_output=True, timeout=300)
        seen[which] = r
    for which, r in seen.items():
        assert r.returncode == 2, (which, r.stdout, r.stderr)
        err = r.stderr.decode()
        assert f"WARNING: cannot backup symlink '{src / 'link'}'" in err, (which, err)
        assert f"WARNING: cannot backup special '{src / 'pipe'}'" in err, (which, err)
    report = {which: next(line for line in r.stdout.decode().splitlines() if "files uploaded" in line)
              for which, r in seen.items()}
    assert report["tahoe"] == (
        " 1 files uploaded (0 reused), 2 files skipped, 1 directories created (0 reused), 0 directories skipped")
    # the same backupdb: shoal's run reuses what Tahoe's uploaded
    assert report["shoal"] == (
        " 0 files uploaded (1 reused), 2 files skipped, 0 directories created (1 reused), 0 directories skipped")
    assert all("backup done, elapsed time: " in r.stdout.decode() for r in seen.values())


def test_cp_caps_only_trees_are_identical(peer, clidir, tmp_path):
    clidir.use("tahoe")
    cli(peer, "tahoe", clidir.path, "create-alias", "capsonly")
    (tmp_path / "f.bin").write_bytes(os.urandom(2500))
    cli(peer, "tahoe", clidir.path, "put", str(tmp_path / "f.bin"), "capsonly:t/f.bin")
    cli(peer, "tahoe", clidir.path, "put", "--mutable", str(tmp_path / "f.bin"), "capsonly:t/m.bin")
    for which in ("tahoe", "shoal"):
        cli(peer, which, clidir.path, "cp", "-r", "--caps-only", "capsonly:t", str(tmp_path / which))
    trees = {}
    for which in ("tahoe", "shoal"):
        root = tmp_path / which / "t"
        trees[which] = {name: (root / name).read_bytes() for name in sorted(os.listdir(root))}
    assert trees["tahoe"] == trees["shoal"] and set(trees["shoal"]) == {"f.bin", "m.bin"}
    assert all(v.startswith(b"URI:") for v in trees["shoal"].values())


@pytest.mark.parametrize("which,gateway", [("tahoe", "tahoe"), ("shoal", "shoal"), ("tahoe", "shoal"),
                                           ("shoal", "tahoe")])
def test_put_private_key_path_same_cap(peer, clidir, tmp_path, which, gateway):
    """Either CLI through either gateway: the cap is the one the key fixes (so shoal's web API
    reads Tahoe's CLI's private-key= encoding, and Tahoe's reads shoal's)."""
    clidir.use(gateway)
    key = rsa.generate_private_key()
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.key.export_key(format="PEM", pkcs=8))
    (tmp_path / "x").write_bytes(f"keyed by {which} via {gateway}".encode())
    cap = cli(peer, which, clidir.path, "put", "--mutable", "--private-key-path", str(pem), str(tmp_path / "x")).strip()
    assert cap == mutable_caps_from_private_key(key, False)[0].to_string()


# --- errors found while walking a path ------------------------------------------------------


def _error_cases(gateways) -> dict[str, dict[str, tuple[str, str]]]:
    """label -> (method, path) on each gateway: a directory with one file in it."""
    cases: dict[str, dict[str, tuple[str, str]]] = {}
    for name, url in gateways.items():
        d = request(url, "POST", "/uri?t=mkdir").text
        q = "/uri/" + quote(d, safe="")
        assert request(url, "PUT", q + "/file.txt", b"a file").status in (200, 201)
        for label, method, path in (
            ("missing child", "GET", q + "/no-such-child"),
            ("missing child json", "GET", q + "/no-such-child?t=json"),
            ("missing parent", "GET", q + "/no-such-dir/child"),
            ("delete missing", "DELETE", q + "/no-such-child"),
            ("file's child", "GET", q + "/file.txt/child"),
            ("double slash", "GET", q + "//file.txt"),
            ("bad t while rendering", "GET", q + "?t=bogus"),
        ):
            cases.setdefault(label, {})[name] = (method, path)
    return cases


def test_errors_while_walking_a_path_alike(gateways):
    """As Tahoe 1.20 (web/common.py exception_to_child): a failure found while walking
    the path is twisted's HTML ErrorPage whatever the client accepts (curl's */*);
    one found while rendering is one line of text/plain."""
    seen = {}
    for label, where in _error_cases(gateways).items():
        answers = {name: request(gateways[name], method, path, headers={"Accept": "*/*"})
                   for name, (method, path) in where.items()}
        seen[label] = {name: (r.status, r.headers.get("content-type"), r.text) for name, r in answers.items()}
    walking = ("missing child", "missing child json", "missing parent", "delete missing", "file's child",
               "double slash")
    for label in walking:  # status, content type and body, byte for byte
        assert seen[label]["tahoe"] == seen[label]["shoal"], (label, seen[label])
    code, ctype, body = seen["missing child"]["shoal"]
    assert (code, ctype) == (404, "text/html; charset=utf-8")
    assert "<h1>Error</h1>" in body and "<p>No such child: no-such-child</p>" in body
    # while rendering: one line of text on both (Tahoe's has no final newline)
    t, s_ = seen["bad t while rendering"]["tahoe"], seen["bad t while rendering"]["shoal"]
    assert t[0] == s_[0] == 400 and t[2].strip() == s_[2].strip() == "GET directory: bad t=bogus"
    assert t[1].replace(" ", "") == s_[1].replace(" ", "") == "text/plain;charset=utf-8"
