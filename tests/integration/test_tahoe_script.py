"""A shoal node driven the way Tahoe 1.20's own integration harness drives a Tahoe node
(integration/util.py, test_runner.py): the same command lines with only the executable
swapped, waiting for the ``introducer running`` / ``client running`` text on stdout,
then for node.url, then HTTP; the eliot log from the global --eliot-destination."""

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from shoal.testing.processes import wait_for_readiness
from shoal.testing.wait import wait_until

SHOAL = [sys.executable, "-m", "shoal.main"]


def tahoe_style(*args: str) -> None:
    r = subprocess.run([*SHOAL, *args], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr


def run_until(nodedir: str, magic: bytes) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*SHOAL, "--eliot-destination", f"file:{nodedir}/logs/eliot.json", "run", nodedir],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        lines = wait_for_readiness(proc, 60)
    except BaseException:
        proc.kill()
        proc.wait(20)
        raise
    assert magic in b"\n".join(lines)
    assert lines[0] == f"running node in {nodedir!r}".encode()  # Tahoe's first line
    return proc


def stop(proc: subprocess.Popen) -> int:
    os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(30)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        assert pipe is not None
        pipe.close()
    return code


def eliot_messages(nodedir: str) -> list[dict]:
    with open(os.path.join(nodedir, "logs", "eliot.json"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def introducer(tmp_path_factory):
    nodedir = str(tmp_path_factory.mktemp("tahoe-script") / "introducer")
    tahoe_style("--quiet", "create-introducer", "--listen=tcp", "--hostname=127.0.0.1", nodedir)
    proc = run_until(nodedir, b"introducer running")
    furl_file = os.path.join(nodedir, "private", "introducer.furl")
    wait_until(lambda: os.path.exists(furl_file), 30, "introducer.furl")
    yield nodedir, open(furl_file).read().strip()
    stop(proc)


def test_client_as_tahoe_integration_runs_it(introducer, tmp_path):
    _, furl = introducer
    nodedir = str(tmp_path / "client")
    tahoe_style("--quiet", "create-node", "--basedir", nodedir, "--webport", "0", "--hostname", "127.0.0.1",
                "--introducer", furl, "--nickname", "n0", "--shares-needed", "1", "--shares-happy", "1",
                "--shares-total", "1")
    proc = run_until(nodedir, b"client running")
    try:
        url = wait_until(lambda: os.path.exists(os.path.join(nodedir, "node.url")) and
                         open(os.path.join(nodedir, "node.url")).read().strip(), 30, "node.url")
        with urllib.request.urlopen(url + "?t=json", timeout=30) as r:
            welcome = json.loads(r.read())
        assert "servers" in welcome
        wait_until(lambda: _connected(url), 30, "the client to see its own storage server")
        req = urllib.request.Request(url + "uri", data=b"x" * 100, method="PUT")
        with urllib.request.urlopen(req, timeout=30) as r:
            cap = r.read().decode()
        with urllib.request.urlopen(url + "uri/" + cap, timeout=30) as r:
            assert r.read() == b"x" * 100
        assert os.path.exists(os.path.join(nodedir, "running.process"))
    finally:
        assert stop(proc) == 0
    assert not os.path.exists(os.path.join(nodedir, "running.process"))
    messages = eliot_messages(nodedir)
    assert all(m["message_type"].startswith("eliot:") for m in messages)
    assert any(m.get("log_text") == "client running" or m.get("message") == ["client running"]
               for m in messages if m["message_type"] == "eliot:twisted")
    assert not any(cap.split(":")[2] in json.dumps(m) for m in messages)  # caps are censored


def test_introducer_eliot_log(introducer):
    nodedir, _ = introducer
    # Tahoe's own line comes through Twisted's log (shoal's stdlib records may say it too, first)
    messages = wait_until(lambda: [m for m in eliot_messages(nodedir) if m["message_type"] == "eliot:twisted"
                                   and "introducer running" in json.dumps(m)], 30, "the eliot line")
    assert messages


def _connected(url: str) -> bool:
    with urllib.request.urlopen(url + "?t=json", timeout=30) as r:
        servers = json.loads(r.read())["servers"]
    return any(s.get("connection_status", "").startswith("Connected") for s in servers)
