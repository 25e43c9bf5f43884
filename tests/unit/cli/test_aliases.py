"""private/aliases and `alias:path` arguments as Tahoe-LAFS 1.20 keeps and reads them
(the same cases run against Tahoe's own parser in tests/interop/test_cli_against_tahoe.py)."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.cli.aliases import (
    DEFAULT_ALIAS,
    Remote,
    add_alias,
    check_alias_name,
    load_aliases,
    readonly_text,
    resolve,
)
from shoal.cli.errors import UsageError

DIR = "URI:DIR2:nqox2gd77r2dix4bg64axnee5a:2yoxr6of6amzb7xrosilm33lflkoxvipe6a2atuzi5goph2ydwgq"
DIR_RO = "URI:DIR2-RO:xug7rejcey7rgra5bt3cuqcpy4:2yoxr6of6amzb7xrosilm33lflkoxvipe6a2atuzi5goph2ydwgq"
WORK = "URI:DIR2:qmrquxyqa3yx7kz5r7nqtlc7me:ry4sm4rkix43mgob346ugbwjlumzpom6j4q2zyfla3tjt6dgqt6a"
CHK = "URI:CHK:tcd3kodbrqqhe7jousb66tusgy:mt3vpq7qtulyupkh23eyx45bmlexc4eab5psbkp5d5nkdol5zwja:1:1:300000"
ALIASES = {"tahoe": DIR, "work": WORK}


def write(nodedir, text: str) -> None:
    os.makedirs(os.path.join(nodedir, "private"), exist_ok=True)
    with open(os.path.join(nodedir, "private", "aliases"), "w", encoding="utf-8") as f:
        f.write(text)


def test_file_format_comments_blank_lines_and_root_dir_cap(tmp_path):
    d = str(tmp_path)
    write(d, f"# mine\n\nwork:   {WORK}  \nodd name:{DIR}\n")
    with open(os.path.join(d, "private", "root_dir.cap"), "w") as f:
        f.write(DIR_RO + "\n")
    assert load_aliases(d) == {"tahoe": DIR_RO, "work": WORK, "odd name": DIR}
    write(d, f"tahoe: {DIR}\n")  # a line wins over root_dir.cap
    assert load_aliases(d)["tahoe"] == DIR


def test_missing_files_mean_no_aliases(tmp_path):
    assert load_aliases(str(tmp_path / "nowhere")) == {}


def test_add_alias_appends_lines_and_refuses_duplicates(tmp_path):
    d = str(tmp_path)
    write(d, f"work: {WORK}")  # no final newline: the next line must not join it
    add_alias(d, "tahoe:", DIR)
    with open(os.path.join(d, "private", "aliases"), encoding="utf-8") as f:
        assert f.read() == f"work: {WORK}\ntahoe: {DIR}\n"
    with pytest.raises(UsageError, match="already exists"):
        add_alias(d, "work", DIR)


@pytest.mark.parametrize("bad", ["a:b", "a b", "", ":"])
def test_bad_alias_names(bad):
    with pytest.raises(UsageError):
        check_alias_name(bad)


names = st.text(st.characters(blacklist_characters=": \n\r#", blacklist_categories=("Cs", "Zl", "Zp", "Cc")),
                min_size=1, max_size=12).filter(lambda s: s.strip() == s and s.strip())


@given(st.dictionaries(names, st.sampled_from([DIR, WORK, DIR_RO]), max_size=6))
def test_added_aliases_read_back(tmp_path_factory, aliases):
    d = str(tmp_path_factory.mktemp("aliases"))
    for name, cap in aliases.items():
        add_alias(d, name, cap)
    assert load_aliases(d) == aliases


@pytest.mark.parametrize("arg, expected", [
    ("work:photos/a.jpg", Remote(WORK, "photos/a.jpg")),
    ("work:", Remote(WORK, "")),
    ("notes.txt", Remote(DIR, "notes.txt")),
    ("dir/file:7", Remote(DIR, "dir/file:7")),  # a slash before the colon: no alias
    (f"{CHK}", Remote(CHK, "")),
    (f"{WORK}/sub/x", Remote(WORK, "sub/x")),
    (f"{WORK}:./sub/x", Remote(WORK, "sub/x")),  # the old form
    ("  work:x  ", Remote(WORK, "x")),  # spaces around the argument are dropped
])
def test_resolve(arg, expected):
    assert resolve(ALIASES, arg) == expected


def test_resolve_local_paths_and_unknown_aliases():
    assert resolve(ALIASES, "notes.txt", default=None) is None
    assert resolve(ALIASES, "./a:b", default=None) is None
    assert resolve(ALIASES, "work:x", default=None) == Remote(WORK, "x")
    with pytest.raises(UsageError, match="unknown alias 'nope'"):
        resolve(ALIASES, "nope:x")
    with pytest.raises(UsageError, match="default alias 'tahoe' does not exist"):
        resolve({"work": WORK}, "x")
    with pytest.raises(UsageError, match="not a directory cap"):
        resolve({"tahoe": CHK}, "tahoe:x")


def test_remote_name():
    assert Remote(WORK, "a/b/c.txt").name == "c.txt"
    assert Remote(WORK, "a/b/").name == "b"
    assert Remote(WORK, "").name == ""


def test_readonly_text():
    assert readonly_text(DIR) == DIR_RO
    assert readonly_text(DIR_RO) == DIR_RO
    assert readonly_text("URI:NOPE:x") == "URI:NOPE:x"
    assert DEFAULT_ALIAS == "tahoe"
