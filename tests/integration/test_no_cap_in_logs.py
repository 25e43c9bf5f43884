"""Issue #15: after a whole CLI session, no cap and no secret is in any log file.

A client node of the shared real grid (with the blob service, and an eliot log as
`--eliot-destination` writes it) and the CLI go through
every command that touches caps: create-alias, mkdir, put (CHK, SDMF, MDMF, a
mutable overwrite), get, cp -r both ways, ls -l/--uri, mv, ln, unlink, backup
(twice), check (--verify), deep-check --repair --add-lease, manifest (every form),
stats, status, list-aliases, and failing commands whose errors name a cap. Then
every log-like file of every node of the grid (logs/*, *.log, eliot files) is read
for every cap the session produced -- write, read, verify caps and their key
fields, plain and percent-encoded -- and for the node's secrets (api token,
convergence and lease secrets, blob tokens and root cap, FURL swissnums). A hit
names the file, the line number, the line's kind and which secret, never the
secret itself.
"""

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from shoal.apps.blobs import token_header
from shoal.testing.grid import shares_args, wait_for_servers
from shoal.testing.processes import NodeProcess, stop_all, wait_for_readiness
from shoal.testing.wait import wait_until
from tests.integration.test_blobs import TOKENS, BlobHTTP

SHOAL = [sys.executable, "-m", "shoal.main"]
CAP_RE = re.compile(r"URI:[A-Za-z0-9-]+(?::[A-Za-z0-9]+)+")
B32_FIELD = re.compile(r"[a-z2-7]{20,}")


@pytest.fixture(scope="module")
def node(shared_grid, tmp_path_factory):
    """A client of the shared grid started with an eliot log, and the blob service."""
    nodedir = shared_grid._create_client(
        "caplog", shares_args(2, 3, 3),
        {("blobs", "enabled"): "true", ("blobs", "port"): "tcp:0:interface=127.0.0.1"},
        {os.path.join("private", "blobs.tokens"): "".join(f"{u}:{t}\n" for u, t in TOKENS.items())})
    os.makedirs(os.path.join(nodedir, "logs"), exist_ok=True)
    eliot = os.path.join(nodedir, "logs", "eliot.json")
    proc = subprocess.Popen([*SHOAL, "--eliot-destination", f"file:{eliot}", "run", nodedir],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process = NodeProcess(nodedir, proc)
    try:
        wait_for_readiness(proc, 60)
        wait_for_servers(process.web_url, len(shared_grid.storage))
        wait_until(lambda: os.path.exists(process.private("blobs.url")), 10, "private/blobs.url")
        yield process
    finally:
        stop_all([process])


class Session:
    """Runs CLI commands, keeping every output (where the session's caps are found)."""

    def __init__(self, nodedir: str) -> None:
        self.nodedir = nodedir
        self.outputs: list[str] = []

    def run(self, *args: str, ok: bool = True, stdin: bytes | None = None) -> str:
        r = subprocess.run([*SHOAL, "-d", self.nodedir, *args],
                           input=stdin, capture_output=True, timeout=300)
        out = r.stdout.decode(errors="replace")
        self.outputs += [out, r.stderr.decode(errors="replace")]
        if ok:
            assert r.returncode == 0, (args[0], r.stderr.decode(errors="replace")[-2000:])
        return out.strip()


def cli_session(s: Session, tmp) -> None:
    local = tmp / "local"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_bytes(b"local file a " * 100)
    (local / "sub" / "b.txt").write_bytes(b"local file b " * 100)
    (local / "tiny").write_bytes(b"lit")
    s.run("create-alias", "leak")
    s.run("mkdir", "leak:dir1")
    s.run("mkdir")  # unlinked: prints its cap
    imm = tmp / "imm.txt"
    imm.write_bytes(os.urandom(5000))
    s.run("put", str(imm), "leak:dir1/imm.txt")
    s.run("put", str(imm))  # unlinked
    s.run("put", "--format=SDMF", str(imm), "leak:sdmf.txt")
    mdmf = s.run("put", "--format=MDMF", str(imm), "leak:mdmf.txt")
    s.run("put", "--format=MDMF", str(imm))
    s.run("put", str(local / "a.txt"), mdmf.splitlines()[-1])  # overwrite through the write cap
    s.run("get", "leak:dir1/imm.txt", str(tmp / "got1"))
    s.run("get", "leak:mdmf.txt", str(tmp / "got2"))
    s.run("cp", "-r", str(local), "leak:tree")
    s.run("cp", "-r", "leak:tree", str(tmp / "copied"))
    assert [p.read_bytes() for p in (tmp / "copied").rglob("b.txt")] == [b"local file b " * 100]
    for flags in (["-l"], ["--uri"], ["--readonly-uri"], ["--json"]):
        s.run("ls", *flags, "leak:")
        s.run("ls", *flags, "leak:dir1")
    s.run("mv", "leak:dir1/imm.txt", "leak:dir1/moved.txt")
    s.run("ln", "leak:dir1/moved.txt", "leak:linked.txt")
    s.run("unlink", "leak:linked.txt")
    s.run("backup", str(local), "leak:backups")
    (local / "c.txt").write_bytes(b"changed " * 200)
    s.run("backup", str(local), "leak:backups")
    s.run("check", "leak:dir1/moved.txt")
    s.run("check", "--verify", "leak:sdmf.txt")
    s.run("deep-check", "--repair", "--add-lease", "leak:")
    s.run("deep-check", "--json", "leak:")
    for flags in ([], ["--storage-index"], ["--verify-cap"], ["--repair-cap"], ["--json"]):
        s.run("manifest", *flags, "leak:")
    s.run("stats", "leak:")
    s.run("status")
    s.run("list-aliases")
    # mistakes whose errors carry a cap (the CLI shows them; the logs must not)
    s.run("get", "leak:dir1/nosuch", str(tmp / "x"), ok=False)
    s.run("ls", "leak:dir1/moved.txt/deeper", ok=False)
    dircap = s.run("list-aliases").split()[-1]
    s.run("get", dircap + "/nosuch", ok=False)


def session_caps(s: Session, web_url: str, nodedir: str) -> set[str]:
    """Every cap the session printed or stored, and their read and verify caps."""
    text = "\n".join(s.outputs)
    with open(os.path.join(nodedir, "private", "aliases")) as f:
        text += f.read()
    found = set(CAP_RE.findall(text))
    todo = list(found)
    while todo:
        cap = todo.pop()
        try:
            with urllib.request.urlopen(web_url + "uri/" + urllib.parse.quote(cap, safe="") + "?t=json",
                                        timeout=60) as r:
                data = r.read().decode()
        except OSError:
            continue
        for more in CAP_RE.findall(data):
            if more not in found:
                found.add(more)
                todo.append(more)
    return found


def needles(caps: set[str], secrets: dict[str, str]) -> dict[str, str]:
    """text to look for -> what it is (the description only ever reaches a failure)."""
    out: dict[str, str] = {}
    for cap in caps:
        kind = cap.split(":")[1]
        out[cap] = f"a {kind} cap"
        out[urllib.parse.quote(cap, safe="")] = f"a {kind} cap, percent-encoded"
        fields = cap.split(":")[2:]
        if kind not in ("LIT", "DIR2-LIT") and fields and B32_FIELD.fullmatch(fields[0]):
            # the key (a write/read key, or a verifier's storage index) is the cap's secret part
            if "Verifier" not in kind:
                out[fields[0]] = f"the key field of a {kind} cap"
    for what, value in secrets.items():
        if value:
            out[value] = what
    return out


def node_secrets(shared_grid, node: NodeProcess) -> dict[str, str]:
    def read(nodedir: str, name: str) -> str:
        path = os.path.join(nodedir, "private", name)
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.read().strip()

    secrets = {"the web API token": read(node.nodedir, "api_auth_token"),
               "the convergence secret": read(node.nodedir, "convergence"),
               "the lease secret": read(node.nodedir, "secret"),
               "the blob root cap": read(node.nodedir, "blobs.rootcap")}
    for user, token in TOKENS.items():
        secrets[f"blob user {user}'s token"] = token
        secrets[f"blob user {user}'s Authorization value"] = token_header(user, token).split()[-1]
    nodes = [shared_grid.introducer, *shared_grid.storage, node]
    for i, other in enumerate(nodes):
        for name in ("storage.furl", "introducer.furl", "helper.furl"):
            furl = read(other.nodedir, name)
            if furl.startswith("pb://"):
                secrets[f"the swissnum of node {i}'s {name}"] = furl.rsplit("/", 1)[-1]
    return secrets


def log_files(base: str) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(base):
        in_logs = os.sep + "logs" in root + os.sep
        for name in files:
            if in_logs or name.endswith((".log", ".json")) and ("log" in name or "eliot" in name) \
                    or name.startswith(("twistd.log", "shoal.log")) or "eliot" in name or "access" in name:
                found.append(os.path.join(root, name))
    return found


def line_kind(line: str) -> str:
    """What sort of line it is, without its content: a JSON line's source/level/type
    keys and its message's first word, or a text line's first word."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if isinstance(record, dict):
        parts = [f"{k}={record[k]}" for k in ("source", "level", "message_type", "action_type", "log_namespace")
                 if isinstance(record.get(k), str)]
        message = record.get("message") or record.get("log_format") or ""
        first = str(message).split(" ", 1)[0]
        return " ".join(parts + ([f"message starting {first[:20]!r}"] if not CAP_RE.search(first) else []))
    return f"text line starting {line.split(' ', 1)[0][:20]!r}"


def test_no_cap_or_secret_in_any_log_after_a_cli_session(shared_grid, node, tmp_path):
    s = Session(node.nodedir)  # the CLI writes no log of its own (--eliot-destination is for `run`)
    cli_session(s, tmp_path)
    with open(node.private("blobs.url")) as f:
        blob_url = f.read().strip()
    alice = BlobHTTP(blob_url, "alice")
    assert alice.blob("PUT", "b1", body=b"blob data")[0] == 200
    assert alice.blob("GET", "b1")[0] == 200
    assert BlobHTTP(blob_url, "alice", token="wrong").blob("GET", "b1")[0] == 401
    caps = session_caps(s, node.web_url, node.nodedir)
    kinds = {c.split(":")[1] for c in caps}
    assert {"CHK", "SSK", "MDMF", "DIR2", "DIR2-RO", "CHK-Verifier", "MDMF-Verifier"} <= kinds, kinds
    look_for = needles(caps, node_secrets(shared_grid, node))
    files = log_files(shared_grid.base)
    assert {os.path.join(node.nodedir, "logs", n) for n in ("eliot.json", "shoal.log")} <= set(files)
    hits: list[str] = []
    scanned = 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                scanned += 1
                for needle, what in look_for.items():
                    if needle in line:
                        hits.append(f"{os.path.relpath(path, shared_grid.base)}:{lineno} ({line_kind(line)}): {what}")
    # the session did reach the logs: the node logged its requests, their caps replaced by the censor
    own = [p for p in files if p.startswith(node.nodedir + os.sep)]
    own_lines = 0
    censored = 0
    for path in own:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        own_lines += text.count("\n")
        censored += text.count("[CENSORED]")
    assert own_lines >= 200 and censored >= 40, (own_lines, censored)
    assert scanned >= own_lines
    assert not hits, f"{len(hits)} secrets in logs:\n" + "\n".join(sorted(set(hits))[:60])
