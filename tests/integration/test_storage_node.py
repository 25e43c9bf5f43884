"""A real storage node process, reached over real Foolscap on 127.0.0.1."""

import os

import pytest

from shoal.grid.storage_client import ServerProtocolError, ServerRefused
from shoal.testing.processes import create_storage_node, shoal_command, start_node
from shoal.testing.sync_storage import foolscap_storage
from shoal.testing.wait import wait_until

V1 = b"http://allmydata.org/tahoe/protocols/storage/v1"


def si(n: int) -> bytes:
    return n.to_bytes(16, "big")


def secret(n: int) -> bytes:
    return n.to_bytes(32, "big")


def share_path(nodedir: str, storage_index: bytes, shnum: int) -> str:
    from shoal.encoding.base32 import b2a

    s = b2a(storage_index)
    return os.path.join(nodedir, "storage", "shares", s[:2], s, str(shnum))


def test_node_directory_files(storage_node):
    d = storage_node.nodedir
    for name in ("private/node.pem", "private/node.privkey", "private/secret", "private/convergence",
                 "private/storage.furl", "my_nodeid", "node.pubkey", "running.process"):
        assert os.path.exists(os.path.join(d, name)), name
    tubid = open(os.path.join(d, "my_nodeid")).read().strip()
    assert tubid in storage_node.read_private("storage.furl")
    assert open(os.path.join(d, "private/node.privkey")).read().startswith("priv-v0-")
    pid = int(open(os.path.join(d, "running.process")).read().split()[0])
    assert pid == storage_node.pid


def test_version_dict(remote):
    v = remote.get_version()
    assert V1 in v and b"application-version" in v
    assert v[V1][b"available-space"] > 0
    assert v[V1][b"fills-holes-with-zero-bytes"] is True


def test_immutable_round_trip(remote, storage_node):
    already, writers = remote.allocate_buckets(si(1), secret(1), secret(2), {0, 1}, 100)
    assert already == set() and set(writers) == {0, 1}
    for sh, w in writers.items():
        w.write(0, bytes([sh]) * 60)
        assert not os.path.exists(share_path(storage_node.nodedir, si(1), sh))  # not visible before close
        w.write(60, bytes([sh]) * 40)
        w.close()
    readers = remote.get_buckets(si(1))
    assert set(readers) == {0, 1}
    assert readers[1].read(0, 100) == b"\x01" * 100
    assert readers[1].read(90, 50) == b"\x01" * 10  # reads past the end are truncated
    already, writers = remote.allocate_buckets(si(1), secret(1), secret(2), {0, 1, 2}, 100)
    assert already == {0, 1} and set(writers) == {2}
    writers[2].abort()


def test_bad_inputs_are_remote_errors_and_change_nothing(remote, storage_node):
    # Foolscap's schema refuses these: on the way out (ServerProtocolError) or at the server
    with pytest.raises((ServerRefused, ServerProtocolError), match="Violation|too long|length"):
        remote.allocate_buckets(b"short-si-but-too-long-for-16", secret(1), secret(2), {0}, 10)
    with pytest.raises((ServerRefused, ServerProtocolError), match="Violation|short|length"):
        remote.allocate_buckets(si(9), b"short", secret(2), {0}, 10)
    _, writers = remote.allocate_buckets(si(2), secret(1), secret(2), {0}, 10)
    w = writers[0]
    with pytest.raises(ServerRefused, match="passes the allocated size"):
        w.write(5, b"x" * 10)  # past the allocated size
    w.write(0, b"a" * 10)
    with pytest.raises(ServerRefused, match="disagrees with the bytes already written"):
        w.write(0, b"b" * 10)  # conflicting overwrite
    w.close()
    assert remote.get_buckets(si(2))[0].read(0, 10) == b"a" * 10
    assert remote.get_buckets(si(9)) == {}


def test_lost_connection_discards_partial_share(storage_node):
    client = foolscap_storage(storage_node.read_private("storage.furl"))
    _, writers = client.allocate_buckets(si(3), secret(1), secret(2), {0}, 1000)
    writers[0].write(0, b"partial")
    client.close()
    other = foolscap_storage(storage_node.read_private("storage.furl"))
    try:

        def discarded() -> bool:
            _already, writers = other.allocate_buckets(si(3), secret(1), secret(2), {0}, 1000)
            if 0 in writers:
                writers[0].abort()
                return True
            return False

        wait_until(discarded, 10, "the node to discard the abandoned bucket", interval=0.2)
        assert other.get_buckets(si(3)) == {}
    finally:
        other.close()


def test_mutable_test_and_write(remote):
    we = secret(7)
    secrets = (we, secret(8), secret(9))
    ok, old = remote.slot_testv_and_readv_and_writev(si(4), secrets, {0: ([], [(0, b"hello")], None)}, [(0, 5)])
    assert ok and old == {}
    ok, old = remote.slot_testv_and_readv_and_writev(
        si(4), secrets, {0: ([(0, 5, b"eq", b"wrong")], [(0, b"HELLO")], None)}, [(0, 5)]
    )
    assert not ok and old == {0: [b"hello"]}
    assert remote.slot_readv(si(4), [], [(0, 10)]) == {0: [b"hello"]}
    with pytest.raises(ServerRefused, match="bad write enabler.*recorded by nodeid"):
        remote.slot_testv_and_readv_and_writev(si(4), (secret(66), secret(8), secret(9)),
                                               {0: ([], [(0, b"x")], None)}, [])
    assert remote.slot_readv(si(4), [0], [(0, 10)]) == {0: [b"hello"]}


def test_restart_keeps_data_and_identity(tmp_path):
    nodedir = str(tmp_path / "node")
    create_storage_node(nodedir)
    node = start_node(nodedir)
    furl = node.read_private("storage.furl")
    c = foolscap_storage(furl)
    _, w = c.allocate_buckets(si(5), secret(1), secret(2), {3}, 4)
    w[3].write(0, b"data")
    w[3].close()
    c.close()
    assert node.stop() == 0
    assert not os.path.exists(os.path.join(nodedir, "running.process"))
    node = start_node(nodedir)
    try:
        assert node.read_private("storage.furl") == furl
        c = foolscap_storage(furl)
        assert c.get_buckets(si(5))[3].read(0, 4) == b"data"
        c.close()
    finally:
        node.stop()


def test_kill9_mid_write_leaves_no_partial_share(tmp_path):
    nodedir = str(tmp_path / "node")
    create_storage_node(nodedir)
    node = start_node(nodedir)
    c = foolscap_storage(node.read_private("storage.furl"))
    _, w = c.allocate_buckets(si(6), secret(1), secret(2), {0}, 1 << 20)
    w[0].write(0, b"z" * (512 * 1024))
    node.kill9()
    c.close()
    shares = os.path.join(nodedir, "storage", "shares")
    visible = [p for p in _walk(shares) if "incoming" not in p]
    assert visible == []
    node = start_node(nodedir)
    try:
        c = foolscap_storage(node.read_private("storage.furl"))
        assert c.get_buckets(si(6)) == {}
        c.close()
        assert [p for p in _walk(os.path.join(shares, "incoming"))] == []  # cleaned at start
    finally:
        node.stop()


def _walk(top: str) -> list[str]:
    out = []
    for root, _dirs, files in os.walk(top):
        out += [os.path.join(root, f) for f in files]
    return out


def test_stdin_close_stops_the_node(tmp_path):
    nodedir = str(tmp_path / "node")
    create_storage_node(nodedir)
    node = start_node(nodedir)
    node.proc.stdin.close()
    assert node.proc.wait(20) == 0
    node.stop()


def test_second_run_refused_while_running(storage_node):
    r = shoal_command("run", storage_node.nodedir, check=False)
    assert r.returncode == 1 and b"already running" in r.stderr


@pytest.mark.parametrize(
    "cfg,needle",
    [
        ("[node]\ntub.port = disabled\ntub.location = disabled\n[storage]\nreserved_space = lots\n", b"reserved_space"),
        ("[node]\nbogus = 1\n", b"[node]bogus"),
        ("[storage\n", b"cannot parse"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, cfg, needle):
    d = tmp_path / "node"
    d.mkdir()
    (d / "tahoe.cfg").write_text(cfg)
    r = shoal_command("run", str(d), check=False)
    assert r.returncode == 1
    assert needle in r.stderr and b"tahoe.cfg" in r.stderr and b"Traceback" not in r.stderr
    assert r.stderr.count(b"\n") == 1


def test_missing_node_directory(tmp_path):
    r = shoal_command("run", str(tmp_path / "nope"), check=False)
    assert r.returncode == 1 and b"no such node directory" in r.stderr


def test_create_node_flags_like_tahoe(tmp_path):
    d = tmp_path / "n"
    r = shoal_command("create-node", "--nickname", "alpha", "--port", "tcp:1234:interface=127.0.0.1",
                      "--location", "tcp:127.0.0.1:1234", "--webport", "none", "--shares-needed", "2",
                      "--shares-happy", "2", "--shares-total", "4", "--introducer", "pb://x@tcp:h:1/y", str(d))
    assert r.returncode == 0, r.stderr
    cfg = (d / "tahoe.cfg").read_text()
    for line in ("nickname = alpha", "tub.port = tcp:1234:interface=127.0.0.1", "tub.location = tcp:127.0.0.1:1234",
                 "shares.needed = 2", "shares.total = 4", "enabled = true", "web.port = \n"):
        assert line in cfg, line
    assert "pb://x@tcp:h:1/y" in (d / "private" / "introducers.yaml").read_text()
    r = shoal_command("create-node", "--hostname", "127.0.0.1", str(d), check=False)
    assert r.returncode == 1 and b"not empty" in r.stderr
    r = shoal_command("create-node", "--port", "tcp:1", str(tmp_path / "m"), check=False)
    assert r.returncode == 1 and b"--location" in r.stderr
