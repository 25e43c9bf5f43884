"""The `shoal` CLI, run as real processes, against a real shoal grid (introducer,
storage nodes, client started through the CLI): put/get/cp of immutable files,
streaming (bounded memory, chunked stdin), progress on a terminal only, and
one-line errors carrying the node's own text."""

import os
import pty
import subprocess
import sys
import threading
import time

import pytest

from shoal.testing.wait import wait_until
from tests.conftest import SHARED_SHARES

SHOAL = [sys.executable, "-m", "shoal.main"]


def shoal_cli(nodedir, *args: str, stdin: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `shoal -d NODEDIR ARGS...`; stdout/stderr captured as bytes."""
    return subprocess.run([*SHOAL, "-d", str(nodedir), *args], input=stdin, capture_output=True, timeout=timeout)


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode().strip()


@pytest.fixture(scope="module")
def client(shared_grid) -> str:
    """The shared grid's client node directory (the CLI reads node.url from it)."""
    assert shared_grid.client is not None
    return shared_grid.client.nodedir


def test_put_get_round_trip_through_files_and_stdout(client, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 11)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    cap = ok(shoal_cli(client, "put", str(src)))
    k, _happy, n = SHARED_SHARES
    assert cap.startswith("URI:CHK:") and cap.endswith(f":{k}:{n}:{len(data)}")
    out = tmp_path / "out.bin"
    assert ok(shoal_cli(client, "get", cap, str(out))) == ""
    assert out.read_bytes() == data
    r = shoal_cli(client, "get", cap)  # to stdout, byte for byte
    assert r.returncode == 0 and r.stdout == data
    into = tmp_path / "dir"
    into.mkdir()
    r = shoal_cli(client, "get", cap, str(into))  # a bare cap has no name to save under
    assert r.returncode == 2 and b"no name" in r.stderr
    assert os.listdir(into) == []


def test_stdin_goes_out_chunked_and_gives_the_same_cap(client, tmp_path):
    data = os.urandom(1_500_000)
    (tmp_path / "f").write_bytes(data)
    from_file = ok(shoal_cli(client, "put", str(tmp_path / "f")))
    from_stdin = ok(shoal_cli(client, "put", stdin=data))
    from_dash = ok(shoal_cli(client, "put", "-", stdin=data))
    assert from_file == from_stdin == from_dash  # convergent encryption: same bytes, same cap


def test_small_and_empty_files_are_literal(client, tmp_path):
    for data in (b"", b"hello, grid\n"):
        cap = ok(shoal_cli(client, "put", stdin=data))
        assert cap.startswith("URI:LIT:")
        assert shoal_cli(client, "get", cap).stdout == data


def test_cp_between_a_cap_and_local_files(client, tmp_path):
    data = os.urandom(700_000)
    (tmp_path / "a").write_bytes(data)
    cap = ok(shoal_cli(client, "put", str(tmp_path / "a")))
    ok(shoal_cli(client, "cp", cap, str(tmp_path / "b")))
    assert (tmp_path / "b").read_bytes() == data
    ok(shoal_cli(client, "cp", str(tmp_path / "a"), str(tmp_path / "c")))  # local to local works too
    assert (tmp_path / "c").read_bytes() == data
    r = shoal_cli(client, "cp", cap, str(tmp_path))  # into a directory: a bare cap has no name
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1


def test_errors_are_the_nodes_text_on_one_line(client, tmp_path):
    r = shoal_cli(client, "get", "URI:CHK:aaaa:bbbb:3:10:100", str(tmp_path / "x"))
    assert r.returncode == 1
    assert r.stderr.startswith(b"shoal: error: 400 Bad Request: ") and r.stderr.count(b"\n") == 1
    assert b"Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()  # nothing half-written
    # a well-formed cap whose shares exist nowhere: the node says so
    lost = "URI:CHK:ime6pvkaxuetdfah2p2f35pe54:4btz54xk3tew6nd4y2ojpxj4m6wxjqqlwnztgre6gnjgtucd5r4a:2:3:202000"
    r = shoal_cli(client, "get", lost, str(tmp_path / "y"))
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr
    assert not (tmp_path / "y").exists()
    # a missing child is Tahoe's HTML ErrorPage (a failure found walking the path): the CLI
    # shows its text on one line, not its markup
    dircap = ok(shoal_cli(client, "mkdir"))
    r = shoal_cli(client, "get", dircap + "/no-such-child", str(tmp_path / "z"))
    assert r.returncode == 1 and r.stderr == b"shoal: error: 404 Not Found: No such child: no-such-child\n"
    r = shoal_cli(client, "get", dircap + "/no-such-dir/deeper", str(tmp_path / "z"))
    assert r.returncode == 1 and r.stderr == b"shoal: error: 404 Not Found: No such child: no-such-dir\n"
    assert not (tmp_path / "z").exists()


def run_measured(cmd: list[str], stdout) -> tuple[int, int]:
    """(exit status, peak RSS in KiB) of one process, from its VmHWM (reset at exec,
    unlike ru_maxrss, which would count the forking test process)."""
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.05)
    return proc.returncode, peak


def test_transfers_stream_in_bounded_memory(client, tmp_path):
    size = 64 * 1024 * 1024
    src = tmp_path / "big"
    with open(src, "wb") as f:
        for _ in range(size // (8 << 20)):
            f.write(os.urandom(8 << 20))
    out = tmp_path / "cap"
    with open(out, "wb") as f:
        rc, put_rss = run_measured([*SHOAL, "-d", client, "put", str(src)], f)
    assert rc == 0
    cap = out.read_text().strip()
    with open(tmp_path / "back", "wb") as f:
        rc, get_rss = run_measured([*SHOAL, "-d", client, "get", cap], f)
    assert rc == 0
    assert os.path.getsize(tmp_path / "back") == size
    with open(src, "rb") as a, open(tmp_path / "back", "rb") as b:
        while chunk := a.read(8 << 20):
            assert chunk == b.read(8 << 20)
    print(f"CLI peak RSS for a 64 MiB file: put {put_rss // 1024} MiB, get {get_rss // 1024} MiB")
    assert 0 < put_rss < 60 * 1024 and 0 < get_rss < 60 * 1024  # buffering the file would need over 90


def test_progress_only_on_a_terminal(client, tmp_path):
    # stderr not a terminal: nothing on it at all
    quick = tmp_path / "other"
    quick.write_bytes(os.urandom(8 * 1024 * 1024))
    r = shoal_cli(client, "put", str(quick))
    assert r.returncode == 0 and r.stderr == b""
    # stderr a terminal: a bar once the transfer passes a second; stdout still only the cap.
    # stdin is fed in two halves, the second only once the bar is on the terminal, so the
    # transfer lasts past a second however fast the machine is.
    primary, secondary = pty.openpty()
    shown = bytearray()
    reader = threading.Thread(target=read_all, args=(primary, shown), daemon=True)
    reader.start()
    proc = subprocess.Popen([*SHOAL, "-d", client, "put", "--format=chk", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=secondary)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(os.urandom(4 * 1024 * 1024))
        proc.stdin.flush()
        wait_until(lambda: b"put stdin" in shown, 60, "the progress bar on the terminal")
        proc.stdin.write(os.urandom(4 * 1024 * 1024))
        proc.stdin.close()
        out = proc.stdout.read()
        assert proc.wait(timeout=300) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(secondary)
    reader.join(30)
    os.close(primary)
    assert out.decode().strip().startswith("URI:CHK:")
    assert b"MiB" in shown and b"put stdin" in shown, bytes(shown[-300:])


def read_all(fd: int, into: bytearray) -> None:
    """Append everything read from fd to `into` until the other side closes."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO once the other side is closed
            return
        if not chunk:
            return
        into += chunk
