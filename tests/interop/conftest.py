"""The reference peer: Tahoe-LAFS 1.20.0 in its own virtualenv (.venv-peer, made by
`make peer`). Without it these tests skip, unless SHOAL_REQUIRE_PEER=1 (set by
`make test`), when its absence is a failure."""

import functools
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shoal.testing import ports
from shoal.testing.grid import Grid, wait_for_servers
from shoal.testing.processes import start_all, stop_all
from shoal.testing.wait import WaitTimeout, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
PEER = ROOT / ".venv-peer" / "bin"
PEER_CLIENT = pathlib.Path(__file__).with_name("peer_client.py")
PEER_HTTP_CLIENT = pathlib.Path(__file__).with_name("peer_http_client.py")  # Tahoe's HTTP storage client


def peer_available() -> bool:
    return (PEER / "tahoe").exists()


@pytest.fixture(scope="session")
def peer() -> pathlib.Path:
    if not peer_available():
        if os.environ.get("SHOAL_REQUIRE_PEER") == "1":
            pytest.fail("the reference peer .venv-peer is missing (make peer)")
        pytest.skip("reference peer .venv-peer not installed (make peer)")
    return PEER


class NodeExited(Exception):
    """The peer's node process ended while a test waited for it."""


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

        def alive_and(ready: Any) -> Any:
            if self.proc.poll() is not None:
                raise NodeExited(f"tahoe node in {nodedir} exited")
            return ready()

        try:
            wait_until(lambda: alive_and(furl.exists), 60, f"{furl} to be written", interval=0.1)
        except (WaitTimeout, NodeExited):
            out = self.proc.stdout.read().decode(errors="replace") if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"tahoe node in {nodedir} did not start: {out[-2000:]}") from None
        self.furl = furl.read_text().strip()
        if not self.furl.startswith("pb://"):
            return  # node.url: written once the web port listens
        # The FURL file may predate this run (a copied node): wait for the port.
        host, port = self.furl.split("@")[1].split("/")[0].split(",")[0].split(":")[1:3]

        def listening() -> bool:
            socket.create_connection((host, int(port)), timeout=1).close()
            return True

        try:
            wait_until(lambda: alive_and(listening), max(deadline - time.monotonic(), 1), f"port {port}",
                       interval=0.1, ignore=(OSError,))
        except (WaitTimeout, NodeExited):
            self.stop()
            raise RuntimeError(f"tahoe node in {nodedir} never listened on {port}") from None

    def terminate(self) -> None:
        """SIGTERM by pid without waiting (stop() waits): for stop_all."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

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


def free_port() -> int:
    """A port of this xdist worker's own block (shoal.testing.ports): no other worker's pick."""
    return ports.free_port()


def tahoe(peer: pathlib.Path, *args: str) -> None:
    """Run one `tahoe` command of the reference peer (create-node, create-client, ...)."""
    subprocess.run([str(peer / "tahoe"), *args], check=True, capture_output=True, timeout=120)


def tahoe_all(peer: pathlib.Path, *commands: tuple[str, ...]) -> None:
    """Run several `tahoe` commands at once (each pays Tahoe's start-up)."""
    with ThreadPoolExecutor(max_workers=max(len(commands), 1)) as pool:
        list(pool.map(lambda args: tahoe(peer, *args), commands))


def tahoe_client_args(nodedir: pathlib.Path, introducer_furl: str | None, *extra: str) -> tuple[str, ...]:
    """`tahoe create-client` arguments for a client on a free local web port."""
    intro = ("--introducer", introducer_furl) if introducer_furl else ()
    return ("create-client", *intro, *extra, "--webport", f"tcp:{free_port()}:interface=127.0.0.1", str(nodedir))


def tahoe_node_url(nodedir: pathlib.Path | str) -> str:
    path = os.path.join(str(nodedir), "node.url")
    wait_until(lambda: os.path.exists(path), 60, "the tahoe client to write node.url")
    with open(path) as f:
        return f.read().strip()


def start_tahoe_client(peer: pathlib.Path, nodedir: pathlib.Path, introducer_furl: str, *extra: str) -> TahoeNode:
    tahoe(peer, *tahoe_client_args(nodedir, introducer_furl, *extra))
    return TahoeNode(peer, nodedir, wait_for="node.url")


class PeerClient:
    """Tahoe's own remote interfaces driving a storage server (see peer_client.py)."""

    def __init__(self, peer: pathlib.Path, furl: str, script: pathlib.Path = PEER_CLIENT) -> None:
        self.proc = subprocess.Popen(
            [str(peer / "python"), str(script), furl],
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


# --- the shared mixed grid ----------------------------------------------------------

MIXED_SHARES = (2, 3, 4)  # k, happy, n of the mixed grid's Tahoe client
SHOAL_STORAGE = ("sstore1", "sstore2")
TAHOE_STORAGE = ("tstore1", "tstore2")


@pytest.fixture(scope="session")
def mixed_grid(peer, tmp_path_factory):
    """A shoal introducer with 2 shoal and 2 Tahoe storage nodes and a Tahoe client
    (MIXED_SHARES), every node started at once; shared by the modules that use this
    shape (each with its own files and directories). Yields grid (the shoal Grid),
    furl, turl (the Tahoe client's web URL) and storage (the four nicknames)."""
    tmp = tmp_path_factory.mktemp("mixed-grid")
    grid = Grid(str(tmp / "shoal"))
    tahoes: list[TahoeNode] = []
    try:
        grid.start_introducer()
        furl = grid.introducer_furl
        k, happy, n = MIXED_SHARES
        tahoe_all(peer, *(("create-node", "--hostname", "127.0.0.1", "--webport", "none", "--nickname", name,
                           "--introducer", furl, str(tmp / name)) for name in TAHOE_STORAGE),
                  tahoe_client_args(tmp / "tclient", furl, "--shares-needed", str(k), "--shares-happy", str(happy),
                                    "--shares-total", str(n)))
        started = start_all([*(functools.partial(TahoeNode, peer, tmp / name) for name in TAHOE_STORAGE),
                             functools.partial(TahoeNode, peer, tmp / "tclient", "node.url"),
                             *(functools.partial(grid.add_storage, name) for name in SHOAL_STORAGE)])
        tahoes += [node for node in started if isinstance(node, TahoeNode)]
        turl = tahoe_node_url(tmp / "tclient")
        wait_for_servers(turl, 4, timeout=90)
        yield types.SimpleNamespace(grid=grid, furl=furl, turl=turl, storage={*SHOAL_STORAGE, *TAHOE_STORAGE})
    finally:
        stop_all([*tahoes, *grid.clients, grid.client, *grid.storage, grid.introducer])


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
