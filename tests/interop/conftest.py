"""The reference peer: Tahoe-LAFS 1.20.0 in its own virtualenv (.venv-peer, made by
`make peer`). Without it these tests skip, unless SHOAL_REQUIRE_PEER=1 (set by
`make test`), when its absence is a failure."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PEER = ROOT / ".venv-peer" / "bin"
PEER_CLIENT = pathlib.Path(__file__).with_name("peer_client.py")


def peer_available() -> bool:
    return (PEER / "tahoe").exists()


@pytest.fixture(scope="session")
def peer() -> pathlib.Path:
    if not peer_available():
        if os.environ.get("SHOAL_REQUIRE_PEER") == "1":
            pytest.fail("the reference peer .venv-peer is missing (make peer)")
        pytest.skip("reference peer .venv-peer not installed (make peer)")
    return PEER


class TahoeNode:
    """A real Tahoe-LAFS 1.20 node process, stopped by its pid."""

    def __init__(self, peer: pathlib.Path, nodedir: pathlib.Path, wait_for: str = "private/storage.furl") -> None:
        self.nodedir = nodedir
        self.proc = subprocess.Popen(
            [str(peer / "tahoe"), "run", str(nodedir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        furl = nodedir / wait_for
        deadline = time.monotonic() + 60
        while not furl.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.poll() is not None else ""
                self.stop()
                raise RuntimeError(f"tahoe node in {nodedir} did not start: {out[-2000:]}")
            time.sleep(0.2)
        self.furl = furl.read_text().strip()
        if not self.furl.startswith("pb://"):
            return  # node.url: written once the web port listens
        # The FURL file may predate this run (a copied node): wait for the port.
        host, port = self.furl.split("@")[1].split("/")[0].split(",")[0].split(":")[1:3]
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"tahoe node in {nodedir} never listened on {port}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe:
                pipe.close()


class PeerClient:
    """Tahoe's own remote interfaces driving a storage server (see peer_client.py)."""

    def __init__(self, peer: pathlib.Path, furl: str) -> None:
        self.proc = subprocess.Popen(
            [str(peer / "python"), str(PEER_CLIENT), furl],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def __call__(self, **request: Any) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"peer client died: {self.proc.stderr.read() if self.proc.stderr else ''}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe:
                pipe.close()


def copy_node(src: pathlib.Path, dst: pathlib.Path) -> pathlib.Path:
    """Copy a stopped node directory, as an operator moving it would."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("running.process*", "logs", "*.log"))
    return dst


def tahoe_nurl(nodedir: pathlib.Path | str, furl: str) -> str:
    """The HTTPS NURL a Tahoe 1.20 storage node announces: its certificate's pin, the storage
    FURL's first location hint and swissnum."""
    from shoal.protocol.nurl import Nurl, spki_hash

    pem = (pathlib.Path(nodedir) / "private" / "node.pem").read_bytes()
    _, rest = furl.removeprefix("pb://").split("@", 1)
    hints, swissnum = rest.split("/", 1)
    host, port = hints.split(",")[0].removeprefix("tcp:").rsplit(":", 1)
    cert = pem[pem.index(b"-----BEGIN CERTIFICATE-----"):]
    return Nurl(spki_hash(cert), host, int(port), swissnum).to_text()
