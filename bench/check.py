"""Check and verify rates: shoal's checker beside Tahoe-LAFS 1.20's, on the same grid, same run.

One grid: a shoal introducer and 10 shoal storage nodes on 127.0.0.1, a shoal
client (uploads, 3-of-10) and a Tahoe 1.20 client that joins the same
introducer. The same files are then checked by both checkers:

- shoal: shoal.checker.FileChecker in this process (its own Tub and storage
  broker fed by the introducer), one file at a time;
- Tahoe: its client's web API, ``POST /uri/$CAP?t=check[&verify=true]&output=JSON``,
  one file at a time.

Files: 100 of 4 KiB, and 4 of 32 MiB (default; --big-mib). Rates: check
files/s, verify files/s and verify MB/s (file bytes per second; verifying
reads N/k times that from the servers). Every answer must say healthy.

    python bench/check.py [--small 100] [--big 4] [--big-mib 32] [--only shoal|tahoe]

Tahoe comes from .venv-peer (make peer).
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from foolscap.api import Tub
from twisted.internet import defer

from shoal.checker import FileChecker
from shoal.grid.storage_broker import StorageBroker, foolscap_connector
from shoal.introducer.client import IntroducerClient
from shoal.testing import reactor_thread
from shoal.testing.grid import start_grid, wait_for_servers

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEER = ROOT / ".venv-peer" / "bin"
MiB = 1024 * 1024
NODES = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put(url: str, data: bytes) -> str:
    req = urllib.request.Request(url.rstrip("/") + "/uri", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=3600) as r:
        return r.read().decode().strip()


def tahoe_check(url: str, cap: str, verify: bool) -> dict[str, Any]:
    query = "t=check&output=JSON" + ("&verify=true" if verify else "")
    req = urllib.request.Request(f"{url.rstrip('/')}/uri/{cap}?{query}", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.loads(r.read().decode())


class TahoeClient:
    def __init__(self, base: str, furl: str) -> None:
        self.dir = os.path.join(base, "tahoe-client")
        subprocess.run([str(PEER / "tahoe"), "create-client", "--introducer", furl, "--webport",
                        f"tcp:{free_port()}:interface=127.0.0.1", self.dir], check=True, capture_output=True)
        self.proc = subprocess.Popen([str(PEER / "tahoe"), "run", self.dir], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url_file = os.path.join(self.dir, "node.url")
        deadline = time.monotonic() + 120
        while not os.path.exists(url_file):
            if time.monotonic() > deadline:
                raise RuntimeError("the Tahoe client never wrote node.url")
            time.sleep(0.2)
        with open(url_file) as f:
            self.url = f.read().strip()
        wait_for_servers(self.url, NODES, timeout=120)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class ShoalChecker:
    """A FileChecker in this process, on a broker fed by the grid's introducer."""

    def __init__(self, furl: str) -> None:
        self.tub: Any = None
        self.ic: Any = None
        self.broker: Any = None
        reactor_thread.call(self._start, furl)
        deadline = time.monotonic() + 60
        while reactor_thread.call(lambda: len(self.broker.get_connected_servers())) < NODES:
            if time.monotonic() > deadline:
                raise RuntimeError("the in-process broker did not connect to every server")
            time.sleep(0.1)
        self.checker = FileChecker(self.broker, lease_secret=os.urandom(32))

    def _start(self, furl: str) -> None:
        self.tub = Tub()
        self.tub.startService()
        self.broker = StorageBroker(foolscap_connector(self.tub))
        self.ic = IntroducerClient(self.tub, furl, nickname="bench", sequencer=lambda: (0, ""))
        self.broker.use_introducer(self.ic)
        self.ic.startService()
        self.broker.startService()

    def check(self, cap: str, verify: bool) -> Any:
        return reactor_thread.call(lambda: defer.ensureDeferred(self.checker.check(cap, verify=verify)))

    def stop(self) -> None:
        def stop() -> Any:
            return defer.DeferredList([
                defer.maybeDeferred(self.broker.stopService),
                defer.maybeDeferred(self.ic.stopService),
                defer.maybeDeferred(self.tub.stopService),
            ])

        reactor_thread.call(stop)


def rate(name: str, what: str, caps: list[str], size: int, fn: Any) -> tuple[float, float]:
    t = time.perf_counter()
    for cap in caps:
        assert fn(cap), f"{name}: {cap} is not healthy"
    dt = time.perf_counter() - t
    files, mbs = len(caps) / dt, len(caps) * size / dt / 1e6
    print(f"  {name:5} {what:<22} {files:8.1f} files/s {mbs:9.1f} MB/s", flush=True)
    return files, mbs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=100)
    ap.add_argument("--big", type=int, default=4)
    ap.add_argument("--big-mib", type=int, default=32)
    ap.add_argument("--only", choices=["shoal", "tahoe"])
    args = ap.parse_args()
    tahoe_ok = (PEER / "tahoe").exists() and args.only != "shoal"
    if not tahoe_ok and args.only != "shoal":
        print("tahoe: .venv-peer missing (make peer); measuring shoal only")
    tmp = tempfile.mkdtemp(prefix="shoal-bench-check-")
    grid = tahoe = shoal = None
    results: dict[str, dict[str, tuple[float, float]]] = {"shoal": {}, "tahoe": {}}
    try:
        print(f"starting a shoal introducer, {NODES} shoal storage nodes and a shoal client ...", flush=True)
        grid = start_grid(os.path.join(tmp, "grid"), NODES)
        furl = grid.introducer_furl
        small = [put(grid.client_url, os.urandom(4096)) for _ in range(args.small)]
        big = [put(grid.client_url, os.urandom(args.big_mib * MiB)) for _ in range(args.big)]
        print(f"uploaded {len(small)} x 4 KiB and {len(big)} x {args.big_mib} MiB", flush=True)
        runs: list[tuple[str, Any]] = []
        if args.only != "tahoe":
            shoal = ShoalChecker(furl)
            runs.append(("shoal", lambda cap, verify: shoal.check(cap, verify).healthy))
        if tahoe_ok:
            print("starting a Tahoe 1.20 client on the same introducer ...", flush=True)
            tahoe = TahoeClient(tmp, furl)
            runs.append(("tahoe", lambda cap, verify: tahoe_check(tahoe.url, cap, verify)["results"]["healthy"]))
        for name, fn in runs:
            out = results[name]
            out["check small"] = rate(name, "check 4 KiB", small, 4096, lambda c, f=fn: f(c, False))
            out["verify small"] = rate(name, "verify 4 KiB", small, 4096, lambda c, f=fn: f(c, True))
            out["check big"] = rate(name, f"check {args.big_mib} MiB", big, args.big_mib * MiB,
                                    lambda c, f=fn: f(c, False))
            out["verify big"] = rate(name, f"verify {args.big_mib} MiB", big, args.big_mib * MiB,
                                     lambda c, f=fn: f(c, True))
    finally:
        for thing in (shoal, tahoe, grid):
            if thing is not None:
                thing.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if results["shoal"] and results["tahoe"]:
        print("shoal/tahoe ratios (files/s):")
        for key in results["shoal"]:
            print(f"  {key:<14} {results['shoal'][key][0] / results['tahoe'][key][0]:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
