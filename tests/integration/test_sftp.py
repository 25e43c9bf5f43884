"""The SFTP frontend ([sftpd], Tahoe-LAFS 1.20's configuration) of a real client node
process on the shared grid, driven by real clients: OpenSSH's ``sftp`` in batch mode
and paramiko's SFTPClient."""

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import time
from urllib.parse import quote

import paramiko
import pytest
from paramiko.sftp import CMD_CLOSE

from shoal.node.logs import LOG_FILE
from shoal.testing.grid import shares_args, wait_for_servers
from shoal.testing.processes import NodeProcessError, memory_kib, start_node
from shoal.testing.sftp import free_port, make_sftp_node, write_keypair
from shoal.testing.wait import wait_until
from tests.conftest import SHARED_SHARES
from tests.integration.test_web import request

SFTP = shutil.which("sftp")


class SFTPNode:
    def __init__(self, node, port: int, keys: dict[str, str], rootcap: str) -> None:
        self.node, self.port, self.keys, self.rootcap = node, port, keys, rootcap

    def client(self, user: str = "alice", key: str | None = None) -> paramiko.SFTPClient:
        transport = paramiko.Transport(("127.0.0.1", self.port))
        transport.connect(pkey=paramiko.PKey.from_path(key or self.keys[user]), username=user)
        return paramiko.SFTPClient.from_transport(transport)


@pytest.fixture(scope="module")
def sftp_node(shared_grid, tmp_path_factory) -> SFTPNode:
    tmp = tmp_path_factory.mktemp("sftp-keys")
    r = request(shared_grid.client_url, "POST", "/uri?t=mkdir")
    assert r.status == 200
    rootcap = r.text
    r = request(shared_grid.client_url, "POST", "/uri?t=mkdir")
    bobcap = r.text
    keys = {}
    lines = ["# test accounts"]
    for user, cap in (("alice", rootcap), ("bob", bobcap)):
        keys[user] = str(tmp / f"{user}_key")
        lines.append(f"{user} {write_keypair(keys[user], user + '@test')} {cap}")
    # carol: an RSA key, as the example in Tahoe's FTP-and-SFTP.rst
    rsa = paramiko.RSAKey.generate(2048)
    keys["carol"] = str(tmp / "carol_key")
    rsa.write_private_key_file(keys["carol"])
    lines.append(f"carol ssh-rsa {rsa.get_base64()} carol@test {bobcap}")
    port = free_port()
    nodedir = os.path.join(shared_grid.base, "sftp-client")
    make_sftp_node(nodedir, shared_grid.introducer_furl, port, "\n".join(lines) + "\n", *shares_args(*SHARED_SHARES))
    node = start_node(nodedir)
    shared_grid.clients.append(node)  # stopped with the grid
    wait_for_servers(node.web_url, len(shared_grid.storage))
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, 30,
               "the SFTP port listening", ignore=(OSError,))
    return SFTPNode(node, port, keys, rootcap)


def test_paramiko_put_ls_get_rename_mkdir_rm(sftp_node):
    c = sftp_node.client()
    data = os.urandom(300_000)  # several segments: range reads cross segment boundaries
    with c.open("/big.bin", "wb") as f:
        f.write(data)
    with c.open("small.txt", "wb") as f:
        f.write(b"hello sftp")
    c.mkdir("docs")
    listing = {a.filename: a for a in c.listdir_attr("/")}
    assert set(listing) == {"big.bin", "small.txt", "docs"}
    assert listing["big.bin"].st_size == 300_000 and stat.S_ISREG(listing["big.bin"].st_mode)
    assert stat.S_ISDIR(listing["docs"].st_mode)
    assert listing["small.txt"].st_mtime > 0
    with c.open("/big.bin", "rb") as f:
        assert f.read() == data
        f.seek(131_000)
        assert f.read(5000) == data[131_000:136_000]
    assert c.stat("small.txt").st_size == 10
    c.rename("/big.bin", "/docs/moved.bin")
    assert c.listdir("/docs") == ["moved.bin"]
    with c.open("/docs/moved.bin", "rb") as f:
        assert f.read() == data
    with pytest.raises(IOError):
        c.rmdir("/docs")  # not empty
    c.remove("/docs/moved.bin")
    c.rmdir("/docs")
    assert sorted(c.listdir("/")) == ["small.txt"]
    with pytest.raises(FileNotFoundError):
        c.stat("/docs")
    # overwrite, and an existing name refused by a plain rename
    with c.open("small.txt", "wb") as f:
        f.write(b"second")
    with c.open("other.txt", "wb") as f:
        f.write(b"other")
    with pytest.raises(IOError):
        c.rename("other.txt", "small.txt")
    c.posix_rename("other.txt", "small.txt")
    with c.open("small.txt", "rb") as f:
        assert f.read() == b"other"
    c.remove("small.txt")
    c.close()


def test_paths_stay_under_the_root(sftp_node):
    c = sftp_node.client("bob")
    assert c.normalize("../../..") == "/"
    assert c.normalize("/a/../b/./c") == "/b/c"
    with c.open("/../../top.txt", "wb") as f:
        f.write(b"bob's")
    assert c.listdir("/") == ["top.txt"]
    # bob's root is not alice's: alice does not see it
    a = sftp_node.client("alice")
    assert "top.txt" not in a.listdir("/")
    for bad in ("/a\x01b", "/" + "x" * 300):
        with pytest.raises(IOError):
            c.open(bad, "wb").close()
    with pytest.raises(IOError):
        c.symlink("top.txt", "link")
    c.close()
    a.close()


def test_password_and_wrong_key_refused(sftp_node, tmp_path):
    transport = paramiko.Transport(("127.0.0.1", sftp_node.port))
    transport.start_client(timeout=10)
    with pytest.raises(paramiko.AuthenticationException):
        transport.auth_password("alice", "anything")
    transport.close()
    stranger = str(tmp_path / "stranger")
    write_keypair(stranger, "stranger")
    with pytest.raises(paramiko.AuthenticationException):
        sftp_node.client("alice", key=stranger)
    with pytest.raises(paramiko.AuthenticationException):
        sftp_node.client("alice", key=sftp_node.keys["bob"])  # bob's key is not alice's


def test_sessions_at_once(sftp_node):
    clients = [sftp_node.client() for _ in range(3)]
    for i, c in enumerate(clients):
        with c.open(f"s{i}.txt", "wb") as f:
            f.write(b"session %d" % i)
    for c in clients:
        assert {f"s{i}.txt" for i in range(3)} <= set(c.listdir("/"))
    for i, c in enumerate(clients):
        with c.open(f"s{(i + 1) % 3}.txt", "rb") as f:
            assert f.read() == b"session %d" % ((i + 1) % 3)
    for i, c in enumerate(clients):
        c.remove(f"s{i}.txt")
        c.close()


def test_openssh_sftp_batch(sftp_node, tmp_path):
    assert SFTP is not None, "OpenSSH's sftp client is not installed: make sftp-client"
    local = tmp_path / "up.bin"
    data = os.urandom(200_000)
    local.write_bytes(data)
    (tmp_path / "empty.txt").write_bytes(b"")
    batch = "\n".join([
        "mkdir /ossh",
        f"put {local} /ossh/up.bin",
        f"put {tmp_path / 'empty.txt'} /ossh/empty.txt",
        "ls -l /ossh",
        "rename /ossh/up.bin /ossh/renamed.bin",
        f"get /ossh/renamed.bin {tmp_path / 'down.bin'}",
        "rm /ossh/empty.txt",
        "ls /ossh",
        "",
    ])
    r = subprocess.run(
        [SFTP, "-b", "-", "-P", str(sftp_node.port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-i", sftp_node.keys["alice"],
         "alice@127.0.0.1"],
        input=batch.encode(), capture_output=True, timeout=120,
    )
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr.decode())
    assert (tmp_path / "down.bin").read_bytes() == data
    ls_l = out.split("sftp> ls -l /ossh")[1].split("sftp>")[0]
    assert "up.bin" in ls_l and "200000" in ls_l and "empty.txt" in ls_l
    assert out.rstrip().endswith("renamed.bin")
    c = sftp_node.client()
    assert c.listdir("/ossh") == ["renamed.bin"]
    c.remove("/ossh/renamed.bin")
    c.rmdir("/ossh")
    c.close()


def test_password_line_refused_at_start(shared_grid, tmp_path):
    nodedir = str(tmp_path / "pw-client")
    make_sftp_node(nodedir, shared_grid.introducer_furl, free_port(), "carol secret URI:DIR2:aaaa:bbbb\n")
    with pytest.raises(NodeProcessError) as info:
        start_node(nodedir, 30).stop()
    text = str(info.value)
    assert "Password-based authentication is not supported" in text and "accounts.file" in text
    assert "secret" not in text and "URI:DIR2" not in text


def test_openssh_ls_l_of_a_thousand_entries(sftp_node, shared_grid):
    url = shared_grid.client_url
    lit = request(url, "PUT", "/uri", b"tiny").text
    r = request(url, "POST", "/uri?t=mkdir")
    big_dir = r.text
    children = {f"f{i:04d}.txt": ["filenode", {"ro_uri": lit, "metadata": {}}] for i in range(1000)}
    r = request(url, "POST", "/uri/" + quote(big_dir, safe="") + "?t=set_children", json.dumps(children).encode())
    assert r.status == 200, r.text
    r = request(url, "PUT", "/uri/" + quote(sftp_node.rootcap, safe="") + "/thousand?t=uri", big_dir.encode())
    assert r.status in (200, 201), r.text
    assert SFTP is not None, "OpenSSH's sftp client is not installed: make sftp-client"
    started = time.monotonic()
    r = subprocess.run(
        [SFTP, "-b", "-", "-P", str(sftp_node.port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-i", sftp_node.keys["alice"],
         "alice@127.0.0.1"],
        input=b"ls -l /thousand\n", capture_output=True, timeout=120,
    )
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr.decode()
    rows = [line for line in r.stdout.decode().splitlines() if line.startswith("-r")]
    assert len(rows) == 1000, r.stdout.decode()[-500:]
    assert all(row.split()[4] == "4" for row in rows)  # the size column
    assert rows[0].endswith("f0000.txt") and rows[-1].endswith("f0999.txt")
    print(f"ls -l of 1000 entries: {elapsed:.2f}s")


def test_mutable_file_and_no_write_link(sftp_node, shared_grid):
    url = shared_grid.client_url
    mutable = request(url, "PUT", "/uri?format=MDMF", b"version one").text
    lit = request(url, "PUT", "/uri", b"frozen").text
    children = {"mut.txt": ["filenode", {"rw_uri": mutable, "metadata": {}}],
                "frozen.txt": ["filenode", {"ro_uri": lit, "metadata": {"no-write": True}}]}
    r = request(url, "POST", "/uri/" + quote(sftp_node.rootcap, safe="") + "?t=set_children",
                json.dumps(children).encode())
    assert r.status == 200, r.text
    c = sftp_node.client()
    assert c.stat("/mut.txt").st_size == 11  # a mutable file's size is asked of the grid
    with c.open("/mut.txt", "wb") as f:
        f.write(b"version two, longer")
    # as Tahoe: writing an existing mutable file publishes a new version of that file
    assert request(url, "GET", "/uri/" + quote(mutable, safe="")).body == b"version two, longer"
    with c.open("/mut.txt", "rb") as f:
        assert f.read() == b"version two, longer"
    attrs = {a.filename: a for a in c.listdir_attr("/")}
    assert attrs["frozen.txt"].st_mode & 0o222 == 0 and attrs["mut.txt"].st_mode & 0o777 == 0o666
    with pytest.raises(PermissionError):
        c.open("/frozen.txt", "wb").close()
    with c.open("/frozen.txt", "rb") as f:
        assert f.read() == b"frozen"
    c.remove("/frozen.txt")  # no-write does not prevent unlinking (Tahoe's docs)
    c.remove("/mut.txt")
    c.close()


def test_a_failed_upload_on_close_reaches_the_client(sftp_node):
    c = sftp_node.client()
    c.mkdir("/gone")
    f = c.open("/gone/x.bin", "wb")
    f.write(b"nowhere to go")
    f.flush()
    c.rmdir("/gone")  # empty: x.bin is linked only when its handle closes
    # paramiko's SFTPFile.close() swallows errors; the CLOSE request itself answers them
    with pytest.raises(FileNotFoundError):
        c._request(CMD_CLOSE, f.handle)
    f._closed = True
    assert "gone" not in c.listdir("/")
    c.close()


def test_a_file_left_open_when_the_session_ends_is_abandoned(sftp_node):
    c = sftp_node.client()
    f = c.open("/abandoned.bin", "wb")
    f.write(b"half written")
    f.flush()
    spool = os.path.join(sftp_node.node.nodedir, "private", "sftp-spool")
    assert any(n.startswith("sftp-") for n in os.listdir(spool))
    c.get_channel().get_transport().close()  # the connection drops with the file open
    wait_until(lambda: not any(n.startswith("sftp-") for n in os.listdir(spool)), 30, "the spool file removed")
    c2 = sftp_node.client()
    assert "abandoned.bin" not in c2.listdir("/")
    c2.close()


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_openssh_100_mib_both_ways(sftp_node, tmp_path):
    assert SFTP is not None, "OpenSSH's sftp client is not installed: make sftp-client"
    local = tmp_path / "hundred.bin"
    with open(local, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    cmd = [SFTP, "-b", "-", "-P", str(sftp_node.port), "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-i", sftp_node.keys["alice"],
           "alice@127.0.0.1"]
    peak_before = memory_kib(sftp_node.node.pid, "VmHWM") * 1024
    t = time.monotonic()
    r = subprocess.run(cmd, input=f"put {local} /hundred.bin\n".encode(), capture_output=True, timeout=300)
    put_s = time.monotonic() - t
    assert r.returncode == 0, r.stderr.decode()
    c = sftp_node.client()
    assert c.stat("/hundred.bin").st_size == 100 << 20
    back = tmp_path / "back.bin"
    t = time.monotonic()
    r = subprocess.run(cmd, input=f"get /hundred.bin {back}\n".encode(), capture_output=True, timeout=300)
    get_s = time.monotonic() - t
    assert r.returncode == 0, r.stderr.decode()
    assert _sha256(back) == _sha256(local)
    # streamed both ways: the node never held the file (its peak RSS grew well under 100 MiB)
    growth = memory_kib(sftp_node.node.pid, "VmHWM") * 1024 - peak_before
    assert growth < 48 << 20, f"the node's peak RSS grew by {growth >> 20} MiB"
    print(f"100 MiB over OpenSSH sftp: put {put_s:.1f}s, get {get_s:.1f}s, peak RSS growth {growth >> 20} MiB")
    c.remove("/hundred.bin")
    c.close()


def test_a_file_being_written_seen_from_another_session(sftp_node):
    writer, reader = sftp_node.client(), sftp_node.client("alice")
    f = writer.open("/shared.bin", "wb")
    f.write(b"x" * 1000)
    f.flush()
    # as Tahoe's heisenfiles: another session's stat answers the size written so far
    assert reader.stat("/shared.bin").st_size == 1000
    f.write(b"y" * 500)
    f.flush()
    assert reader.stat("/shared.bin").st_size == 1500
    f.close()
    with reader.open("/shared.bin", "rb") as g:
        assert g.read() == b"x" * 1000 + b"y" * 500
    assert reader.stat("/shared.bin").st_size == 1500
    reader.remove("/shared.bin")
    with pytest.raises(FileNotFoundError):
        reader.stat("/shared.bin")
    writer.close()
    reader.close()


def test_append_and_write_in_place(sftp_node):
    c = sftp_node.client("bob")
    with c.open("/edit.txt", "wb") as f:
        f.write(b"hello")
    with c.open("/edit.txt", "r+") as f:  # no truncation: the old bytes are kept
        f.seek(1)
        f.write(b"EY")
    with c.open("/edit.txt", "a") as f:
        f.write(b" world")
    with c.open("/edit.txt", "rb") as f:
        assert f.read() == b"hEYlo world"
    with pytest.raises(IOError):
        c.open("/edit.txt", "x")  # O_EXCL on an existing file
    with pytest.raises(FileNotFoundError):
        c.open("/missing.txt", "r+")
    c.remove("/edit.txt")
    c.close()


def test_rsa_key_login_with_both_clients(sftp_node):
    c = sftp_node.client("carol")  # carol's root is bob's directory
    with c.open("/carol.txt", "wb") as f:
        f.write(b"from carol")
    c.close()
    assert SFTP is not None, "OpenSSH's sftp client is not installed: make sftp-client"
    r = subprocess.run(
        [SFTP, "-b", "-", "-P", str(sftp_node.port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-i", sftp_node.keys["carol"],
         "carol@127.0.0.1"],
        input=b"ls /\nrm /carol.txt\n", capture_output=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert "carol.txt" in r.stdout.decode()
    b = sftp_node.client("bob")
    assert "carol.txt" not in b.listdir("/")
    b.close()


def test_no_cap_in_the_log(sftp_node):
    # last in this module: after every session above (password tries, failed uploads)
    c = sftp_node.client()
    with pytest.raises(IOError):
        c.rmdir("/no-such-dir")
    c.close()
    path = os.path.join(sftp_node.node.nodedir, LOG_FILE)
    text = wait_until(lambda: (t := open(path, encoding="utf-8", errors="replace").read()) and
                      "password login refused for alice" in t and t, 10, "the SFTP lines in shoal.log")
    assert f"SFTP server listening on 127.0.0.1:{sftp_node.port}" in text
    secret = sftp_node.rootcap.split(":")[2]
    assert sftp_node.rootcap not in text and secret not in text


def test_removing_a_file_being_written_abandons_it(sftp_node):
    writer, other = sftp_node.client(), sftp_node.client()
    f = writer.open("/doomed.txt", "wb")
    f.write(b"never linked")
    f.flush()
    other.remove("/doomed.txt")  # only open, not yet linked: the remove still succeeds
    f.close()
    assert "doomed.txt" not in other.listdir("/")
    writer.close()
    other.close()


def test_a_reader_during_a_write_sees_the_last_closed_version(sftp_node):
    # Tahoe 1.20's sftpd: a file opened for writing is a "heisenfile" until its close
    # lands; opening it for reading in another session waits for any close under way,
    # then reads what is linked: the last closed version, or no file yet
    writer, reader = sftp_node.client(), sftp_node.client()
    with writer.open("/versions.txt", "wb") as f:
        f.write(b"version one")
    f = writer.open("/versions.txt", "wb")
    f.write(b"version two, not closed yet")
    f.flush()
    with reader.open("/versions.txt", "rb") as g:
        assert g.read() == b"version one"
    new = writer.open("/brand-new.txt", "wb")
    new.write(b"unborn")
    new.flush()
    with pytest.raises(FileNotFoundError):
        reader.open("/brand-new.txt", "rb")
    assert reader.stat("/brand-new.txt").st_size == 6  # its stat answers what was written so far
    f.close()
    new.close()
    with reader.open("/versions.txt", "rb") as g:
        assert g.read() == b"version two, not closed yet"
    with reader.open("/brand-new.txt", "rb") as g:
        assert g.read() == b"unborn"
    reader.remove("/versions.txt")
    reader.remove("/brand-new.txt")
    writer.close()
    reader.close()


def test_bounded_connections_and_a_silent_client(sftp_node):
    from shoal.sftp.server import MAX_CONNECTIONS

    # more than MAX_CONNECTIONS idle TCP connections: the extra ones are closed at
    # once, and a client that never logs in does not keep the others from working
    socks = [socket.create_connection(("127.0.0.1", sftp_node.port), timeout=10) for _ in range(MAX_CONNECTIONS)]
    try:
        wait_until(lambda: _closed_at_once(sftp_node.port), 30, "a connection past the limit refused")
    finally:
        for s in socks:
            s.close()
    c = wait_until(lambda: sftp_node.client(), 30, "a login once the idle connections are gone",
                   ignore=(paramiko.SSHException, OSError, EOFError))
    assert isinstance(c.listdir("/"), list)
    c.close()


def _closed_at_once(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        try:
            return s.recv(64) == b""  # closed without the SSH banner
        except ConnectionResetError:
            return True
