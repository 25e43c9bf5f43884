"""Mutable files: create, publish (overwrite) and retrieve rates for 1 KiB SDMF
files, shoal against Tahoe-LAFS 1.20 on the same storage servers, same run.

Ten shoal storage servers run in a child process (real StorageServers behind
Foolscap on 127.0.0.1). Both clients use exactly those servers, 3-of-10:

* shoal: a MutableClient in this process (shoal.mutable's API; the web API
  does not serve mutable files yet), its reactor in a thread;
* Tahoe: a Tahoe 1.20 client node (from .venv-peer) whose private/servers.yaml
  lists the same servers, driven through its web API (PUT /uri?format=SDMF,
  PUT /uri/$CAP, GET /uri/$CAP) over keep-alive HTTP.

Each operation runs one at a time; create includes RSA-2048 key generation
(both clients generate keys). Rounds alternate between the two clients; the
median rate of each operation is printed (operations per second, ms each).

    python bench/mutable.py [--files 8] [--ops 40] [--rounds 3] [--only shoal|tahoe]
"""

import argparse
import http.client
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEER = ROOT / ".venv-peer" / "bin"
K, N = 3, 10
SIZE = 1024


def serve_grid() -> None:
    """(child) Run the storage servers; print their announcements; stop at EOF on stdin."""
    from shoal.testing.local_grid import LocalGrid

    grid = LocalGrid(N)
    print(json.dumps({s.server_id.decode(): s.announcement() for s in grid.servers}), flush=True)
    sys.stdin.read()
    grid.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rate(fn, count: int) -> float:
    """Operations per second of count calls fn(0), fn(1), ..."""
    start = time.perf_counter()
    for i in range(count):
        fn(i)
    return count / (time.perf_counter() - start)


def shoal_client(anns: dict):
    """(operations by name, cleanup) for a shoal MutableClient on these servers."""
    from foolscap.api import Tub
    from twisted.internet import defer

    from shoal.grid.storage_broker import StorageBroker
    from shoal.introducer.files import StaticServer
    from shoal.mutable import MutableClient
    from shoal.testing import reactor_thread
    from shoal.testing.round_trips import RoundTripCounter

    reactor_thread.ensure_running()

    def start():
        tub = Tub()
        tub.startService()
        broker = StorageBroker(tub)
        broker.set_static_servers([StaticServer(sid.encode(), ann) for sid, ann in anns.items()])
        broker.startService()
        return broker

    broker = reactor_thread.call(start)
    while reactor_thread.call(lambda: len(broker.get_connected_servers())) < N:
        time.sleep(0.05)
    client = MutableClient(broker, lease_secret=os.urandom(32), k=K, n=N)

    def run(fn, *a, **kw):
        return reactor_thread.call(lambda: defer.ensureDeferred(fn(*a, **kw)))

    data = os.urandom(SIZE)
    node = run(client.create, data, format="SDMF")
    assert run(node.download_best_version) == data
    ops = {
        "create": lambda i: run(client.create, data, format="SDMF"),
        "publish": lambda i: run(node.overwrite, data[:-4] + i.to_bytes(4, "big")),
        "retrieve": lambda i: run(node.download_best_version),
    }
    # round trips and storage requests of one of each (Foolscap: a listing read is one request)
    counter = reactor_thread.call(lambda: RoundTripCounter().install(broker))
    for op, fn in ops.items():
        reactor_thread.call(counter.reset)
        fn(0)
        print(f"shoal {op}: {counter.rounds} round trips, {counter.requests} requests ({dict(counter.calls)})")
    reactor_thread.call(counter.uninstall)
    return ops, lambda: reactor_thread.call(broker.stopService)


def tahoe_client(anns: dict, base: str):
    """(operations by name, cleanup) for a Tahoe client node on these servers."""
    from shoal.testing.grid import wait_for_servers

    tahoe = str(PEER / "tahoe")
    d = pathlib.Path(base) / "tclient"
    port = free_port()
    subprocess.run([tahoe, "create-client", "--shares-needed", str(K), "--shares-happy", "7",
                    "--shares-total", str(N), "--webport", f"tcp:{port}:interface=127.0.0.1", str(d)],
                   check=True, capture_output=True)
    (d / "private" / "servers.yaml").write_text(json.dumps({"storage": {s: {"ann": a} for s, a in anns.items()}}))
    proc = subprocess.Popen([tahoe, "run", str(d)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while not (d / "node.url").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        wait_for_servers(url, N, timeout=90)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

        def call(method: str, path: str, body: bytes | None = None) -> bytes:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            payload = r.read()
            if r.status >= 400:
                raise RuntimeError(f"tahoe {method} {path}: {r.status} {payload[:200]!r}")
            return payload

        data = os.urandom(SIZE)
        cap = call("PUT", "/uri?format=SDMF", data).decode()
        assert call("GET", f"/uri/{cap}") == data
        ops = {
            "create": lambda i: call("PUT", "/uri?format=SDMF", data),
            "publish": lambda i: call("PUT", f"/uri/{cap}", data[:-4] + i.to_bytes(4, "big")),
            "retrieve": lambda i: call("GET", f"/uri/{cap}"),
        }
    except BaseException:
        stop(proc)
        raise

    def cleanup() -> None:
        conn.close()
        stop(proc)

    return ops, cleanup


def stop(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(30)
    if proc.stdin:
        proc.stdin.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=8, help="files created (each with a new RSA key)")
    ap.add_argument("--ops", type=int, default=40, help="publishes and retrieves of one file")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (the median is shown)")
    ap.add_argument("--only", choices=["shoal", "tahoe"])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_grid()
        return 0
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdin and child.stdout
    samples: dict[str, dict[str, list[float]]] = {}
    clients = {}
    try:
        anns = json.loads(child.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="shoal-bench-mutable-") as base:
            try:
                if args.only != "tahoe":
                    clients["shoal"] = shoal_client(anns)
                if args.only != "shoal":
                    if (PEER / "tahoe").exists():
                        clients["tahoe"] = tahoe_client(anns, base)
                    else:
                        print("tahoe: .venv-peer missing (make peer); skipped")
                # rounds alternate between the clients, so load from elsewhere hits both alike
                for _ in range(args.rounds):
                    for name, (ops, _cleanup) in clients.items():
                        for op, fn in ops.items():
                            count = args.files if op == "create" else args.ops
                            samples.setdefault(name, {}).setdefault(op, []).append(rate(fn, count))
            finally:
                for _ops, cleanup in clients.values():
                    cleanup()
    finally:
        child.stdin.close()
        child.wait(60)
        child.stdout.close()
    results = {name: {op: statistics.median(v) for op, v in r.items()} for name, r in samples.items()}
    print(f"1 KiB SDMF files, {K}-of-{N}, {N} storage servers on 127.0.0.1 (one process), ops one at a time")
    for name, r in results.items():
        print(f"{name:6s} " + "  ".join(f"{op} {v:7.1f}/s ({1000 / v:6.1f} ms)" for op, v in r.items()))
    if len(results) == 2:
        s, t = results["shoal"], results["tahoe"]
        print("shoal/tahoe  " + "  ".join(f"{op} {s[op] / t[op]:.2f}x" for op in s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
