"""The systemd units of misc/systemd/ start a working grid and stop by SIGTERM.

There is no systemd to start services in this test environment (PID 1 is not
systemd), so the grid (an introducer, two storage nodes, a client) is started
through the very command lines of the units' ExecStart=, with what systemd
would give them (no stdin, the node directory named in the unit), and stopped
with the units' KillSignal. The test says which ran. Where `systemd-analyze`
exists, each unit is also verified by it (with ExecStart pointing at this
interpreter, as /opt/shoal does not exist here).
"""

import configparser
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shoal.testing.grid import shares_args, wait_for_servers
from shoal.testing.processes import create, create_storage_node
from shoal.testing.wait import wait_until

UNITS = Path(__file__).resolve().parents[2] / "misc" / "systemd"
KINDS = ("introducer", "storage", "client")


def read_unit(kind: str) -> configparser.RawConfigParser:
    unit = configparser.RawConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys are case-sensitive
    unit.read(UNITS / f"shoal-{kind}.service", encoding="utf-8")
    return unit


def exec_start(kind: str) -> tuple[list[str], str]:
    """The unit's ExecStart as argv (shoal's program) and the node directory it names."""
    argv = shlex.split(read_unit(kind)["Service"]["ExecStart"])
    assert argv[0].endswith("/bin/shoal") and argv[1] == "run", argv
    return argv, argv[-1]


@pytest.mark.parametrize("kind", KINDS)
def test_unit_runs_unprivileged_restarts_on_failure_and_keeps_state_in_the_node_dir(kind: str) -> None:
    service = read_unit(kind)["Service"]
    argv, nodedir = exec_start(kind)
    assert service["User"] not in ("", "root") and service["Group"] not in ("", "root")
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert "--allow-stdin-close" in argv  # systemd's stdin is /dev/null: the node must not stop at EOF
    assert nodedir == f"/var/lib/shoal/{kind}"
    assert service["ReadWritePaths"].split() == [nodedir]  # the node directory is the only state
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "true"
    assert read_unit(kind)["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize("kind", KINDS)
def test_systemd_analyze_verifies_the_unit(kind: str, tmp_path: Path) -> None:
    text = (UNITS / f"shoal-{kind}.service").read_text(encoding="utf-8")
    argv, _ = exec_start(kind)
    here = shlex.join([sys.executable, "-m", "shoal.main", *argv[1:]])
    unit = tmp_path / f"shoal-{kind}.service"
    unit.write_text(text.replace(shlex.join(argv), here), encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_a_unit_whose_node_cannot_start_fails_so_systemd_restarts_it(tmp_path: Path) -> None:
    nodedir = tmp_path / "storage"
    create_storage_node(str(nodedir))
    with open(nodedir / "tahoe.cfg", "a", encoding="utf-8") as f:
        f.write("[logging]\nlevel = LOUD\n")
    argv, unit_dir = exec_start("storage")
    argv = [sys.executable, "-m", "shoal.main", *(str(nodedir) if a == unit_dir else a for a in argv[1:])]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1  # non-zero: Restart=on-failure starts it again
    assert r.stderr.count("\n") == 1 and "tahoe.cfg: [logging]level: 'LOUD'" in r.stderr


class UnitProcess:
    """A node started from a unit's ExecStart, as systemd would: no stdin, SIGTERM to stop."""

    def __init__(self, kind: str, nodedir: str) -> None:
        argv, unit_dir = exec_start(kind)
        # the unit's program is shoal's console script; here it is this tree's shoal.main
        argv = [sys.executable, "-m", "shoal.main", *(nodedir if a == unit_dir else a for a in argv[1:])]
        self.kind, self.nodedir, self.argv = kind, nodedir, argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.wait_running(timeout=60)

    def wait_running(self, timeout: float) -> None:
        """Until the node's own `shoal node|introducer ID running; ...` line (web port listening,
        node.url written); other lines before it are skipped."""
        assert self.proc.stdout is not None
        fd, pending, lines = self.proc.stdout.fileno(), b"", []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            *complete, pending = (pending + chunk).split(b"\n")
            lines += complete
            if any(line.startswith(b"shoal ") and b" running" in line for line in complete):
                return
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"{self.kind} did not start: {lines!r} {self.proc.stderr.read()!r}")  # type: ignore[union-attr]

    def stop(self) -> tuple[int, str]:
        signal_name = read_unit(self.kind)["Service"]["KillSignal"]
        if self.proc.poll() is None:
            os.kill(self.proc.pid, getattr(signal, signal_name))
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.kind} ignored {signal_name} for 30 s") from None
        stderr = self.proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()  # type: ignore[union-attr]
        return code, stderr


def test_a_grid_started_through_the_units_uploads_and_stops_cleanly(tmp_path: Path, capsys) -> None:
    with capsys.disabled():
        print("\n[test_services] systemd not used (PID 1 is not systemd here): running each unit's "
              "ExecStart command line with stdin closed and stopping it with its KillSignal")
    create("create-introducer", "--hostname", "127.0.0.1", str(tmp_path / "introducer"))
    started: list[UnitProcess] = []
    try:
        started.append(UnitProcess("introducer", str(tmp_path / "introducer")))
        furl = (tmp_path / "introducer" / "private" / "introducer.furl").read_text().strip()
        for name in ("storage1", "storage2"):
            create_storage_node(str(tmp_path / name), "--introducer", furl)
        create("create-client", "--introducer", furl, "--webport", "tcp:0:interface=127.0.0.1",
               *shares_args(1, 2, 2), str(tmp_path / "client"))
        started += [UnitProcess("storage", str(tmp_path / "storage1")),
                    UnitProcess("storage", str(tmp_path / "storage2"))]
        client = UnitProcess("client", str(tmp_path / "client"))
        started.append(client)
        url = (tmp_path / "client" / "node.url").read_text().strip()
        wait_for_servers(url, 2, timeout=60)
        data = os.urandom(200_000)
        req = urllib.request.Request(url + "uri", data=data, method="PUT")
        with urllib.request.urlopen(req, timeout=60) as r:
            cap = r.read().decode("ascii")
        assert cap.startswith("URI:CHK:")
        with urllib.request.urlopen(url + "uri/" + urllib.request.quote(cap, safe=""), timeout=60) as r:
            assert r.read() == data
    finally:
        results = [(p, *p.stop()) for p in reversed(started)]
    for p, code, stderr in results:
        assert code == 0, (p.kind, code, stderr)
        assert "Traceback" not in stderr, stderr
        assert not os.path.exists(os.path.join(p.nodedir, "running.process"))  # the pid file went with it
        with open(os.path.join(p.nodedir, "logs", "shoal.log"), encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        messages = [r["message"] for r in records]
        assert any("running" in m for m in messages)
        assert "Received SIGTERM, shutting down." in messages and "Main loop terminated." in messages
        assert cap.split(":")[2] not in json.dumps(records)  # the cap's key never reached a log
    assert len(results) == 4
    wait_until(lambda: all(p.proc.poll() is not None for p, _, _ in results), 5, "every node process gone")
