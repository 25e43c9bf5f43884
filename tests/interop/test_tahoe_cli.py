"""The reference `tahoe` CLI of Tahoe-LAFS 1.20 against a shoal client node: a
directory holding node.url (and private/api_auth_token, private/aliases) is all
`tahoe -d DIR` needs, so existing users' tools work against shoal unchanged. The node
is the shared grid's client; the aliases file is this module's own."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import SHARED_SHARES

K, _HAPPY, N = SHARED_SHARES


@pytest.fixture(scope="module")
def grid(shared_grid):
    return shared_grid


@pytest.fixture(scope="module")
def tahoe_dir(grid, tmp_path_factory):
    """A directory for `tahoe -d`: the shoal client's node.url, token and an aliases file."""
    assert grid.client is not None
    d = tmp_path_factory.mktemp("tahoe-cli-dir")
    (d / "private").mkdir()
    shutil.copy(os.path.join(grid.client.nodedir, "node.url"), d / "node.url")
    token = os.path.join(grid.client.nodedir, "private", "api_auth_token")
    if os.path.exists(token):
        shutil.copy(token, d / "private" / "api_auth_token")
    (d / "private" / "aliases").write_text("")
    return d


def tahoe_cli(peer, tahoe_dir, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(peer / "tahoe"), "-d", str(tahoe_dir), *args], input=stdin,
                          capture_output=True, timeout=300)


def test_tahoe_put_and_get(peer, tahoe_dir, tmp_path):
    data = os.urandom(2_345_678)
    (tmp_path / "in").write_bytes(data)
    r = tahoe_cli(peer, tahoe_dir, "put", str(tmp_path / "in"))
    assert r.returncode == 0, r.stderr
    cap = r.stdout.decode().strip()
    assert cap.startswith("URI:CHK:") and cap.endswith(f":{K}:{N}:{len(data)}")
    r = tahoe_cli(peer, tahoe_dir, "get", cap, str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out").read_bytes() == data
    small = os.urandom(200_000)
    r = tahoe_cli(peer, tahoe_dir, "put", "-", stdin=small)  # from stdin
    assert r.returncode == 0, r.stderr
    r = tahoe_cli(peer, tahoe_dir, "get", r.stdout.decode().strip())  # to stdout
    assert r.returncode == 0 and r.stdout == small


def test_tahoe_sees_the_nodes_errors(peer, tahoe_dir, tmp_path):
    r = tahoe_cli(peer, tahoe_dir, "get", "URI:CHK:aaaa:bbbb:3:10:100", str(tmp_path / "x"))
    assert r.returncode == 1
    assert b"400" in r.stderr  # Tahoe prints the status and the node's text


def test_tahoe_directory_and_check_commands(peer, tahoe_dir, tmp_path):
    def t(*args: str, stdin: bytes | None = None) -> str:
        r = tahoe_cli(peer, tahoe_dir, *args, stdin=stdin)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout.decode()

    t("create-alias", "tahoe")
    assert (tahoe_dir / "private" / "aliases").read_text().strip().startswith("tahoe: URI:DIR2:")
    assert t("mkdir", "docs").startswith("URI:DIR2:")
    src = tmp_path / "tree"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "data.bin").write_bytes(os.urandom(90_000))
    (src / "top.txt").write_bytes(b"top\n")
    t("cp", "-r", str(src), "tahoe:")
    listing = [line.split() for line in t("ls", "-l", "tahoe:tree").splitlines()]
    assert [(row[0], row[1], row[-1]) for row in listing] == [("drwx", "-", "inner"), ("-r--", "4", "top.txt")]
    t("cp", "-r", "tahoe:tree", str(tmp_path / "back"))  # a named directory goes inside the target
    assert (tmp_path / "back" / "tree" / "inner" / "data.bin").read_bytes() == (src / "inner" / "data.bin").read_bytes()
    t("mv", "tahoe:tree/top.txt", "tahoe:docs/")
    t("ln", "tahoe:docs/top.txt", "tahoe:docs/again.txt")
    t("unlink", "tahoe:docs/top.txt")
    assert t("ls", "tahoe:").split() == ["docs", "tree"] and t("ls", "tahoe:docs").split() == ["again.txt"]
    assert t("get", "tahoe:docs/again.txt") == "top\n"
    # check and deep-check
    out = t("check", "tahoe:tree/inner/data.bin")
    assert out.startswith("Summary: Healthy") and f"good-shares: {N} (encoding is {K}-of-{N})" in out
    assert "Summary: healthy" in t("check", "--verify", "--repair", "--add-lease", "tahoe:tree/inner/data.bin")
    out = t("deep-check", "--verify", "--add-lease", "tahoe:")
    assert out.strip().endswith("done: 6 objects checked, 6 healthy, 0 unhealthy")  # 4 dirs, 2 files

