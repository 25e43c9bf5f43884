"""SFTP paths below an account's root: no path leaves it, bad names are refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.sftp.paths import (
    MAX_DEPTH,
    MAX_NAME_BYTES,
    BadPathError,
    check_name,
    join_path,
    split_path,
)


@pytest.mark.parametrize("path, names", [
    ("/", ()), ("", ()), (".", ()), ("..", ()), ("/../..", ()),
    ("a/b", ("a", "b")), ("/a//b/", ("a", "b")), ("/a/./b/../c", ("a", "c")),
    ("../../etc/passwd", ("etc", "passwd")), (b"/caf\xc3\xa9", ("café",)),
])
def test_split(path, names):
    assert split_path(path) == names


@pytest.mark.parametrize("path", [
    "/a\x00b", "/a\nb", "/a\x7fb", "/" + "x" * (MAX_NAME_BYTES + 1), "/a\\b", b"/\xff",
    "/".join(["d"] * (MAX_DEPTH + 1)), "x" * 5000,
])
def test_refused(path):
    with pytest.raises(BadPathError):
        split_path(path)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\x00"])
def test_bad_names(name):
    with pytest.raises(BadPathError):
        check_name(name)


segments = st.lists(st.one_of(st.sampled_from(["..", ".", ""]), st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=8)),
    max_size=12)


@given(segments, st.booleans())
def test_never_above_the_root(parts, absolute):
    path = ("/" if absolute else "") + "/".join(parts)
    names = split_path(path)
    assert ".." not in names and "." not in names and "" not in names
    assert all("/" not in n for n in names)
    # canonical: splitting the joined path again gives the same names
    assert split_path(join_path(names)) == names
    depth = 0
    for p in parts:
        depth = max(0, depth - 1) if p == ".." else depth + (p not in (".", ""))
    assert len(names) == depth
