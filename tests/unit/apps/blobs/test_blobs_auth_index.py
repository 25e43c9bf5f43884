"""The Token header and tokens file, and the SQLite index's rules (a cache that
empties itself after an unclean stop or for another root)."""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.apps.blobs.auth import TokenFile, TokenFileError, credentials, parse_tokens, token_header
from shoal.apps.blobs.errors import Unauthorized
from shoal.apps.blobs.index import BlobIndex, BlobRow

ROOT = "URI:DIR2:aaaa:bbbb"


def test_token_header_round_trip():
    assert credentials(token_header("alice", "s3:cr:et")) == ("alice", "s3:cr:et")
    assert token_header("u", "t") == "Token dTp0"


@pytest.mark.parametrize("header", [None, "", "Basic dTp0", "Token", "Token !!!", "Token " + "bm9jb2xvbg=="])
def test_bad_headers(header):
    with pytest.raises(Unauthorized):
        credentials(header)


def test_tokens_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# users\nalice:one\n\nbob : two\n")
    tokens = TokenFile(str(path))
    assert tokens.authenticate(token_header("alice", "one"), "alice") == "alice"
    assert tokens.authenticate(token_header("bob", "two"), "bob") == "bob"
    for header, url_user in [(token_header("alice", "two"), "alice"), (token_header("alice", "one"), "bob"),
                             (token_header("carol", "x"), "carol"), (None, "alice")]:
        with pytest.raises(Unauthorized) as e:
            tokens.authenticate(header, url_user)
        assert e.value.status == 401
    path.write_text("alice:one\ncarol:three-and-more\n")  # picked up without a restart
    assert tokens.authenticate(token_header("carol", "three-and-more"), "carol") == "carol"
    with pytest.raises(Unauthorized):
        tokens.authenticate(token_header("bob", "two"), "bob")


def test_tokens_file_errors(tmp_path):
    with pytest.raises(TokenFileError):
        parse_tokens("no-colon-here\n")
    with pytest.raises(TokenFileError):
        parse_tokens("bad user:x\n")
    with pytest.raises(TokenFileError) as e:
        TokenFile(str(tmp_path / "missing")).tokens()
    assert e.value.status == 500


def row(blob_id, created, size=10, flags=(), deleted=None, ns="default", user="alice"):
    return BlobRow(user, ns, blob_id, "URI:LIT:" if deleted else "URI:CHK:x", size, "t" * 24, flags, created, deleted)


def test_index_listing_counting_usage(tmp_path):
    index = BlobIndex(str(tmp_path / "i.sqlite"), ROOT)
    index.put_many([row("b", 2.0, flags=("PENDING",)), row("a", 3.0), row("c", 1.0, deleted=5.0),
                    row("d", 1.5, ns="MX", size=7), row("e", 1.0, user="bob", size=1000)])
    assert index.list_ids("alice", "default") == ["a", "b"]
    assert index.list_ids("alice", "default", newest_first=False) == ["b", "a"]
    assert index.list_ids("alice", "default", newest_first=True) == ["a", "b"]
    assert index.list_ids("alice", "default", filter_flag="PENDING") == ["b"]
    assert index.list_ids("alice", "default", deleted=True) == ["c"]
    assert index.count("alice", "default") == 2  # the tombstone is not counted
    assert index.usage("alice") == 27
    assert index.get("alice", "default", "c").live is False
    assert index.get("alice", "default", "zz") is None


def test_index_is_kept_after_a_clean_stop_only(tmp_path):
    path = str(tmp_path / "i.sqlite")
    index = BlobIndex(path, ROOT)
    index.put(row("a", 1.0))
    index.close()
    index = BlobIndex(path, ROOT)
    assert index.list_ids("alice", "default") == ["a"]
    index.put(row("b", 1.0))
    index._db.close()  # a crash: never marked clean
    index = BlobIndex(path, ROOT)
    assert index.list_ids("alice", "default") == []
    index.put(row("a", 1.0))
    index.close()
    index = BlobIndex(path, ROOT.replace("aaaa", "cccc"))  # another root: nothing cached applies
    assert index.list_ids("alice", "default") == []
    assert not index.root_listed
    index.close()
    assert os.path.exists(path)


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_the_index_and_its_wal_and_shm_are_private_even_under_a_lax_umask(tmp_path):
    """issue #15: blobs/index.sqlite and its -wal (every cap of the service) were 0644."""
    old = os.umask(0o022)
    try:
        path = str(tmp_path / "private" / "blobs" / "index.sqlite")
        index = BlobIndex(path, ROOT)
        index.put(row("a", 1.0))
        assert os.path.exists(path + "-wal") and os.path.exists(path + "-shm")
        assert {_mode(path + s) for s in ("", "-wal", "-shm")} == {0o600}
        assert _mode(os.path.dirname(path)) == 0o700
        index.close()
        os.chmod(path, 0o644)  # one made by an older shoal
        index = BlobIndex(path, ROOT)
        assert _mode(path) == 0o600 and index.list_ids("alice", "default") == ["a"]
        index.close()
    finally:
        os.umask(old)


def test_an_index_at_the_old_default_place_moves_under_private(tmp_path):
    from shoal.apps.blobs.service import DEFAULT_INDEX, OLD_DEFAULT_INDEX, move_old_index

    old, new = str(tmp_path / OLD_DEFAULT_INDEX), str(tmp_path / DEFAULT_INDEX)
    os.makedirs(os.path.dirname(old))
    os.makedirs(str(tmp_path / "private"), mode=0o700)
    index = BlobIndex(old, ROOT)
    index.put(row("a", 1.0))
    index.close()
    os.chmod(old, 0o644)
    move_old_index(old, new)
    assert not os.path.exists(old) and not os.path.exists(os.path.dirname(old))
    assert _mode(new) == 0o600 and new.startswith(str(tmp_path / "private"))
    index = BlobIndex(new, ROOT)
    assert index.list_ids("alice", "default") == ["a"]  # kept, not rebuilt
    index.close()


_rows = st.builds(
    lambda user, namespace, blob_id, size, dead: BlobRow(user, namespace, blob_id, "URI:LIT:" if dead else "URI:CHK:x",
                                                         0 if dead else size, "", (), 1.0, 2.0 if dead else None),
    st.sampled_from(["alice", "bob"]), st.sampled_from(["default", "mail"]), st.sampled_from(["a", "b", "c", "d"]),
    st.integers(0, 10**9), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.lists(_rows, max_size=4)), max_size=12))
def test_index_sums_kept_in_memory_match_the_table(tmp_path_factory, steps):
    """usage/objects/entries/count are counted once and then updated by each write: after any
    mix of puts, batches, tombstones, re-creations and reloads they equal what the table says."""
    index = BlobIndex(str(tmp_path_factory.mktemp("sums") / "index.sqlite"), ROOT)
    index.add_user("alice", "URI:DIR2:a:b")
    table: dict[tuple[str, str, str], BlobRow] = {}

    def check() -> None:
        for user in ("alice", "bob"):
            live = [r for r in table.values() if r.user == user and r.live]
            assert index.usage(user) == sum(r.size for r in live)
            assert index.objects(user) == len(live)
            for ns in ("default", "mail"):
                assert index.entries(user, ns) == sum(1 for k in table if k[:2] == (user, ns))
                assert index.count(user, ns) == sum(1 for r in live if r.namespace == ns)

    for how, rows in steps:
        if how == 3:  # a reload of alice from the grid forgets her rows and sums
            index.begin_load("alice", {})
            table = {k: r for k, r in table.items() if k[0] != "alice"}
            index.finish_load("alice")
        elif how == 2 or len(rows) != 1:
            index.put_many(rows)
        else:
            index.put(rows[0])
        if how != 3:
            table.update({(r.user, r.namespace, r.blob_id): r for r in rows})
        if how != 0:  # sometimes write several steps before the sums are read
            check()
    check()
