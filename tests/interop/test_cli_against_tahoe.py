"""The `shoal` CLI against a real Tahoe-LAFS 1.20 gateway: Tahoe's web API is the
contract, so every directory, alias, copy and check command is proved against the
reference node (an introducer and one storage+client node, 1-of-1), and the same
tests then run against a shoal client node (1-of-1, on the shared shoal grid). Also: shoal's
alias parsing and private/aliases files agree with Tahoe's own code."""

import contextlib
import io
import json
import os
import random
import subprocess
import sys
from unittest import mock

import pytest

from shoal.cli.aliases import add_alias, load_aliases, resolve
from shoal.cli.errors import UsageError
from shoal.main import main
from shoal.testing.grid import shares_args, wait_for_servers
from tests.integration.test_cli import ok
from tests.interop.conftest import TahoeNode, free_port, tahoe, tahoe_node_url


def shoal_cli(nodedir, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """`shoal -d NODEDIR ARGS...` run in this process (tests/integration/test_cli.py runs real
    processes; here the saving of ~0.8 s of start-up per command keeps the module quick)."""
    out, err = io.BytesIO(), io.BytesIO()
    streams = [io.TextIOWrapper(b, encoding="utf-8", write_through=True) for b in (out, err)]
    fake_in = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    argv = ["-d", str(nodedir), *args]
    with mock.patch.object(sys, "stdin", fake_in), contextlib.redirect_stdout(streams[0]), \
            contextlib.redirect_stderr(streams[1]):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = int(e.code or 0)
    return subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def tahoe_gateway(peer, tmp_path_factory):
    """A Tahoe 1.20 introducer and one storage+client node; yields the client's node directory."""
    base = tmp_path_factory.mktemp("tahoe-gw")
    tahoe(peer, "create-introducer", "--hostname", "127.0.0.1", str(base / "intro"))
    nodes = [TahoeNode(peer, base / "intro", wait_for="private/introducer.furl")]
    try:
        furl = (base / "intro" / "private" / "introducer.furl").read_text().strip()
        tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--nickname", "gw", "--introducer", furl,
              "--shares-needed", "1", "--shares-happy", "1", "--shares-total", "1",
              "--webport", f"tcp:{free_port()}:interface=127.0.0.1", str(base / "gw"))
        nodes.append(TahoeNode(peer, base / "gw"))
        wait_for_servers(tahoe_node_url(base / "gw"), 1, timeout=90)
        yield base / "gw"
    finally:
        for n in reversed(nodes):
            n.stop()


@pytest.fixture(scope="module")
def shoal_gateway(shared_grid):
    """A client (1-of-1) of this module's own on the shared grid; yields its node directory."""
    node = shared_grid.add_client("cli-gateway", *shares_args(1, 1, 1))
    yield node.nodedir
    node.stop()


def gateway(request) -> str:
    """The gateway's node directory, with the aliases tahoe: and work: made (once)."""
    d = str(request.getfixturevalue(f"{request.param}_gateway"))
    for alias in ("tahoe", "work"):
        if alias not in load_aliases(d):
            ok(shoal_cli(d, "create-alias", alias))
    return d


@pytest.fixture(scope="module", params=["tahoe", "shoal"])
def node(request) -> str:
    return gateway(request)


def ls(node, *args: str) -> list[str]:
    return ok(shoal_cli(node, "ls", *args)).splitlines()


def tree(root) -> dict[str, bytes | None]:
    """Every file (path -> bytes) and empty directory (path -> None) under root."""
    out: dict[str, bytes | None] = {}
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if not dirs and not files:
            out[rel] = None
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                out[os.path.normpath(os.path.join(rel, f))] = fh.read()
    return out


def make_tree(root) -> None:
    os.makedirs(os.path.join(root, "sub", "deeper"))
    os.makedirs(os.path.join(root, "empty"))
    with open(os.path.join(root, "a.txt"), "wb") as f:
        f.write(b"alpha\n")
    with open(os.path.join(root, "sub", "b.bin"), "wb") as f:
        f.write(os.urandom(150_000))
    with open(os.path.join(root, "sub", "deeper", "c t\u00e9xt.txt"), "wb") as f:
        f.write(b"gamma " * 20)


ALIASES_SCRIPT = r"""
import json, sys
from allmydata.scripts.common import get_alias, get_aliases, DefaultAliasMarker, UnknownAliasError
from allmydata.scripts.tahoe_add_alias import add_line_to_aliasfile
nodedir, add, cases = json.load(sys.stdin)
aliases = {k: v.decode() for k, v in get_aliases(nodedir).items()}
for name, cap in add:
    add_line_to_aliasfile(nodedir + "/private/aliases", name, cap)
parsed = []
for arg, default in cases:
    try:
        cap, path = get_alias(aliases, arg, default)
        parsed.append(None if cap is DefaultAliasMarker else [cap.decode(), path.decode()])
    except UnknownAliasError:
        parsed.append("unknown")
print(json.dumps([aliases, parsed]))
"""

DIRS = ["URI:DIR2:nqox2gd77r2dix4bg64axnee5a:2yoxr6of6amzb7xrosilm33lflkoxvipe6a2atuzi5goph2ydwgq",
        "URI:DIR2-RO:xug7rejcey7rgra5bt3cuqcpy4:2yoxr6of6amzb7xrosilm33lflkoxvipe6a2atuzi5goph2ydwgq",
        "URI:DIR2:qmrquxyqa3yx7kz5r7nqtlc7me:ry4sm4rkix43mgob346ugbwjlumzpom6j4q2zyfla3tjt6dgqt6a"]


def test_aliases_files_and_arguments_agree_with_tahoes_code(peer, tmp_path):
    """One run of Tahoe's own get_aliases / add_line_to_aliasfile / get_alias against shoal's."""
    d = str(tmp_path)
    add_alias(d, "tahoe", DIRS[0])
    add_alias(d, "work:", DIRS[2])
    add_alias(d, "caf\u00e9", DIRS[1])
    (tmp_path / "private" / "aliases").write_text((tmp_path / "private" / "aliases").read_text() + "# note\n\n")
    rng = random.Random(6)
    pieces = ["work", "tahoe", "nope", ":", "/", "a", "b c", "\u00e9", "x:y", "./", ":./", " ", DIRS[2]]
    cases = ["work:", "work:a/b", "a/b:c", "nope:x", "plain", "", " work:x ", f"{DIRS[2]}/x/y", "caf\u00e9:z",
             f"{DIRS[2]}:./x", "URI:CHK:whatever/x", "ro.URI:DIR2:a:b/c", "imm.URI:x", "tahoe:/abs"]
    cases += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 5))) for _ in range(300)]
    batch = [[c, default] for c in cases for default in ("tahoe", None)]
    mine = load_aliases(d)
    r = subprocess.run([str(peer / "python"), "-c", ALIASES_SCRIPT],
                       input=json.dumps([d, [["fromtahoe", DIRS[1]], ["last", DIRS[0]]], batch]),
                       capture_output=True, text=True, check=True, timeout=120)
    theirs, parsed = json.loads(r.stdout)
    assert theirs == mine  # Tahoe reads what shoal wrote
    assert load_aliases(d) == {**mine, "fromtahoe": DIRS[1], "last": DIRS[0]}  # and the other way
    for (arg, default), want in zip(batch, parsed, strict=True):
        try:
            got = resolve(mine, arg, default)
            result = None if got is None else [got.cap, got.path]
        except UsageError:
            result = "unknown"
        assert result == want, (arg, default)


def test_list_aliases(node):
    listed = json.loads(ok(shoal_cli(node, "list-aliases", "--json")))
    assert set(listed) == {"tahoe", "work"}
    assert listed["work"]["readonly"].startswith("URI:DIR2-RO:") and listed["work"]["readwrite"].startswith("URI:DIR2:")
    assert ok(shoal_cli(node, "list-aliases")).splitlines() == [
        f"tahoe: {listed['tahoe']['readwrite']}", f" work: {listed['work']['readwrite']}"]
    r = shoal_cli(node, "create-alias", "work")
    assert r.returncode == 2 and b"already exists" in r.stderr


def test_put_ls_get_mkdir(node, tmp_path):
    data = os.urandom(400_000)
    (tmp_path / "f.bin").write_bytes(data)
    cap = ok(shoal_cli(node, "put", str(tmp_path / "f.bin"), "work:docs/f.bin"))  # parents made as needed
    assert cap.startswith("URI:CHK:")
    assert ls(node, "work:docs") == ["f.bin"]
    long = ls(node, "-l", "work:docs")
    assert long[0].startswith("-r-- 400000 ") and long[0].endswith(" f.bin")
    assert ls(node, "--uri", "work:docs/f.bin") == [f"f.bin {cap}"]
    kind, info = json.loads(ok(shoal_cli(node, "ls", "--json", "work:docs")))
    assert kind == "dirnode" and info["children"]["f.bin"][1]["ro_uri"] == cap
    assert shoal_cli(node, "get", "work:docs/f.bin").stdout == data
    ok(shoal_cli(node, "get", "work:docs/f.bin", str(tmp_path)))  # into a directory, under its name
    assert (tmp_path / "f.bin").read_bytes() == data
    new = ok(shoal_cli(node, "mkdir"))
    assert new.startswith("URI:DIR2:")
    sub = ok(shoal_cli(node, "mkdir", "work:docs/x/y"))
    assert sub.startswith("URI:DIR2:") and ok(shoal_cli(node, "mkdir", "work:docs/x/y")) == sub  # exists: same
    assert ls(node, "-F", "work:docs") == ["f.bin", "x/"]
    ok(shoal_cli(node, "put", "-", "notes.txt", stdin=b"default alias\n"))
    assert "notes.txt" in ls(node)
    r = shoal_cli(node, "ls", "work:missing")
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and b"no such file or directory" in r.stderr


def test_mv_ln_unlink(node):
    ok(shoal_cli(node, "put", "-", "work:m/one.txt", stdin=b"one\n"))
    ok(shoal_cli(node, "mkdir", "work:m/into"))
    ok(shoal_cli(node, "mv", "work:m/one.txt", "work:m/two.txt"))
    assert ls(node, "work:m") == ["into", "two.txt"]
    ok(shoal_cli(node, "ln", "work:m/two.txt", "work:m/into/"))  # trailing slash: same name inside
    assert ls(node, "work:m/into") == ["two.txt"]
    r = shoal_cli(node, "ln", "work:m/two.txt", "work:m/into")  # would replace a directory: refused
    assert r.returncode == 1 and b"is a directory" in r.stderr and ls(node, "work:m/into") == ["two.txt"]
    ok(shoal_cli(node, "mv", "work:m/two.txt", "work:m/into/"))  # replaces the link of the same file
    assert ls(node, "work:m") == ["into"]
    assert shoal_cli(node, "get", "work:m/into/two.txt").stdout == b"one\n"
    ok(shoal_cli(node, "unlink", "work:m/into/two.txt"))
    assert ls(node, "work:m/into") == []
    r = shoal_cli(node, "unlink", "work:m/into/two.txt")
    assert r.returncode == 1 and b"no such file or directory" in r.stderr
    assert shoal_cli(node, "unlink", "work:").returncode == 2


def test_cp_trees_both_ways(node, tmp_path):
    src = tmp_path / "photos"
    make_tree(str(src))
    r = shoal_cli(node, "cp", str(src), "work:")
    assert r.returncode == 2 and b"-r" in r.stderr
    ok(shoal_cli(node, "cp", "-r", str(src), "work:"))  # named source: work:photos
    assert ls(node, "work:photos") == ["a.txt", "empty", "sub"]
    ok(shoal_cli(node, "cp", "-r", "work:photos", str(tmp_path / "back")))  # as Tahoe: made, then copied inside
    assert tree(tmp_path / "back" / "photos") == tree(src)
    ok(shoal_cli(node, "cp", "-r", "work:photos", str(tmp_path / "back")))  # again: replaced in place
    assert tree(tmp_path / "back") == {os.path.join("photos", k): v for k, v in tree(src).items()}
    # into an existing grid tree: merged, new files added, old ones kept
    (src / "sub" / "new.txt").write_bytes(b"new\n")
    ok(shoal_cli(node, "cp", "-r", str(src / "sub"), "work:photos"))
    assert ls(node, "work:photos/sub") == ["b.bin", "deeper", "new.txt"]
    # several files into a new directory (trailing slash), then a bare dircap's contents
    ok(shoal_cli(node, "cp", str(src / "a.txt"), str(src / "sub" / "b.bin"), "work:several/"))
    assert ls(node, "work:several") == ["a.txt", "b.bin"]
    dircap = ls(node, "--uri", "work:")
    several = next(line.split()[1] for line in dircap if line.startswith("several "))
    ok(shoal_cli(node, "cp", "-r", several, str(tmp_path / "flat")))
    assert sorted(os.listdir(tmp_path / "flat")) == ["a.txt", "b.bin"]
    # grid to grid: immutable files are linked, not copied
    ok(shoal_cli(node, "cp", "work:several/b.bin", "work:copied.bin"))
    caps = dict(line.split() for line in ls(node, "--uri", "work:several"))
    assert next(line for line in ls(node, "--uri", "work:") if line.startswith("copied.bin ")).split()[1] == caps["b.bin"]


def test_manifest_and_stats(node, tmp_path):
    (tmp_path / "big").write_bytes(os.urandom(300_000))
    ok(shoal_cli(node, "put", str(tmp_path / "big"), "work:man/big"))
    ok(shoal_cli(node, "put", "-", "work:man/lit", stdin=b"tiny"))
    manifest = ok(shoal_cli(node, "manifest", "work:man")).splitlines()
    assert manifest[0].startswith("URI:DIR2:") and manifest[1].endswith(" big") and manifest[2].startswith("URI:LIT:")
    sis = ok(shoal_cli(node, "manifest", "--storage-index", "work:man")).splitlines()
    assert len(sis) == 2  # the literal file has none
    stats = json.loads(ok(shoal_cli(node, "stats", "--json", "work:man")))
    assert stats["count-immutable-files"] == 1 and stats["count-literal-files"] == 1
    assert stats["size-immutable-files"] == 300_000
    assert "count-directories: 1" in ok(shoal_cli(node, "stats", "work:man"))


def test_check_and_deep_check(node, tmp_path):
    (tmp_path / "big").write_bytes(os.urandom(300_000))
    ok(shoal_cli(node, "put", str(tmp_path / "big"), "work:chk/big"))
    ok(shoal_cli(node, "put", "-", "work:chk/lit", stdin=b"tiny"))
    out = ok(shoal_cli(node, "check", "work:chk/big"))
    assert out.startswith("summary: Healthy") and "good shares: 1 (encoding 1-of-1)" in out
    assert "literal" in ok(shoal_cli(node, "check", "work:chk/lit"))
    data = json.loads(ok(shoal_cli(node, "check", "--verify", "--repair", "--add-lease", "--json", "work:chk/big")))
    assert data["pre-repair-results"]["results"]["healthy"] and data["repair-attempted"] is False
    deep = ok(shoal_cli(node, "deep-check", "-v", "--verify", "--add-lease", "work:chk"))
    assert deep.splitlines() == ["<root>: healthy", "big: healthy", "lit: healthy",
                                 "done: 3 objects checked, 3 healthy, 0 unhealthy"]
    assert "repairs attempted" in ok(shoal_cli(node, "deep-check", "--repair", "work:chk"))
    units = [json.loads(line) for line in ok(shoal_cli(node, "deep-check", "--json", "work:chk")).splitlines()]
    assert [u["type"] for u in units] == ["directory", "file", "file", "stats"]


def test_status(node):
    both = json.loads(ok(shoal_cli(node, "status", "--json")))
    assert both["statistics"]["counters"]["uploader.files_uploaded"] >= 1
    text = ok(shoal_cli(node, "status"))
    assert text.startswith("Statistics (for last ") and "uploaded" in text


def test_backup_reuses_unchanged_files(node, tmp_path):
    src = tmp_path / "home"
    make_tree(str(src))
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_bytes(b"ref\n")
    first = json.loads(ok(shoal_cli(node, "backup", "--json", "--exclude-vcs", str(src), "work:bk")))
    assert first["files-uploaded"] == 3 and first["files-reused"] == 0
    (src / "a.txt").write_bytes(b"changed\n")
    second = json.loads(ok(shoal_cli(node, "backup", "--json", "--exclude-vcs", str(src), "work:bk")))
    assert second["files-uploaded"] == 1 and second["files-reused"] == 2
    archives = ls(node, "work:bk/Archives")
    assert len(archives) >= 1 and all(a.endswith("Z") for a in archives)
    ok(shoal_cli(node, "cp", "-r", "work:bk/Latest", str(tmp_path / "restored")))
    expected = {k: v for k, v in tree(src).items() if not k.startswith(".git")}
    assert tree(tmp_path / "restored" / "Latest") == expected
