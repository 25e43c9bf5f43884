"""shoal cp into a local directory never writes outside it (issue #15): grid names
that are not one path component are refused, said, and fail the command."""

import os

import attrs
import pytest

from shoal.cli.copy import Copier, LocalTarget, RemoteDir, copy_tree, local_name_problem

FILE = "URI:LIT:nbswy3dp"  # "hello"


@attrs.define
class Body:
    data: bytes

    def save(self, dest, progress=None):
        with open(dest, "wb") as f:
            f.write(self.data)


@attrs.define
class StubClient:
    """Answers a GET of any file with its body; a GET of a directory with its children."""

    dirs: dict
    asked: list = attrs.field(factory=list)

    def request(self, method, url, *args, **kwargs):
        self.asked.append((method, url))
        return Body(b"hello")

    def get_json(self, url):
        return 200, {"children": self.dirs}


def all_files(top):
    return sorted(os.path.relpath(os.path.join(root, n), top)
                  for root, dirs, files in os.walk(top) for n in files + dirs)


@pytest.mark.parametrize("kind", ["filenode", "dirnode"])
@pytest.mark.parametrize("bad", ["../x", "../../pwned", "/abs/path", "..", ".", "", "a/b", "nul\x00"])
def test_cp_refuses_names_that_leave_the_destination(tmp_path, bad, kind):
    top = tmp_path / "outer"
    dest = top / "inner" / "dest"
    dest.mkdir(parents=True)
    abs_target = tmp_path / "abs"
    bad = bad.replace("/abs", str(abs_target)) if bad.startswith("/abs") else bad
    entry = ["filenode", {"ro_uri": FILE}] if kind == "filenode" else ["dirnode", {"ro_uri": "URI:DIR2-LIT:"}]
    children = {bad: entry, "good": ["filenode", {"ro_uri": FILE}]}
    warned = []
    cp = Copier(StubClient({"ok": ["filenode", {"ro_uri": FILE}]}), lambda n: None, lambda s: None, warned.append)
    copy_tree(cp, RemoteDir(children, "tree"), LocalTarget(str(dest)), "tree")
    assert all_files(top) == ["inner", "inner/dest", "inner/dest/tree", "inner/dest/tree/good"]
    assert not abs_target.exists()
    assert len(cp.refused) == 1 and repr(bad) in warned[0]


def test_good_names_and_subdirectories_are_copied(tmp_path):
    children = {"a b": ["filenode", {"ro_uri": FILE}], "sub": ["dirnode", {"ro_uri": "URI:DIR2-LIT:"}],
                "\u00e9": ["filenode", {"ro_uri": FILE}]}
    cp = Copier(StubClient({"deep": ["filenode", {"ro_uri": FILE}]}), lambda n: None, lambda s: None, print)
    copy_tree(cp, RemoteDir(children, None), LocalTarget(str(tmp_path)), None)
    assert all_files(tmp_path) == ["a b", "sub", "sub/deep", "\u00e9"]
    assert (tmp_path / "sub" / "deep").read_bytes() == b"hello" and not cp.refused


def test_local_name_problem():
    assert local_name_problem("ok.txt") is None
    assert "'/'" in local_name_problem("a/b")
    assert local_name_problem("..") and local_name_problem("x" * 2000)
