"""Upload/download through a client's web API: shoal against Tahoe-LAFS 1.20, same run.

For each implementation: an introducer, 10 storage nodes and a client on
127.0.0.1 (3-of-10, happy 7, default settings); uploads and downloads 1,
16 and 128 MiB of fresh random data (median of 3), then 200 files of
4 KiB; prints MB/s, files/s and the client's peak RSS, then shoal/Tahoe
ratios. Finally shoal uploads 1 GiB (streamed from a generator, never held
in memory here) to show the client's RSS stays flat.

    python bench/updown.py [--only shoal|tahoe] [--no-gib] [--repeat 3]

With --transports it instead runs three clients over the same kind of Tahoe
1.20 storage nodes: shoal over HTTPS (what it picks when servers announce
NURLs), shoal over Foolscap ([client]force_foolscap) and Tahoe 1.20's own
client (HTTPS by default), and prints the ratios to Tahoe; --sizes and
--small-files keep that run short.

    python bench/updown.py --transports --sizes 1,16 --small-files 50 --repeat 1 --storage-nodes 5

Tahoe comes from .venv-peer (make peer).
"""

import argparse
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from shoal.testing.grid import Grid, start_grid, wait_for_servers, web_json
from shoal.testing.processes import set_config, shoal_command, start_node

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEER = ROOT / ".venv-peer" / "bin"
MiB = 1024 * 1024


def rss_peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_now_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def put(url: str, data, length: int | None = None) -> str:
    headers = {"Content-Length": str(length)} if length is not None else {}
    req = urllib.request.Request(url.rstrip("/") + "/uri", data=data, method="PUT", headers=headers)
    with urllib.request.urlopen(req, timeout=3600) as r:
        return r.read().decode().strip()


def get(url: str, cap: str) -> int:
    total = 0
    with urllib.request.urlopen(url.rstrip("/") + "/uri/" + cap, timeout=3600) as r:
        while chunk := r.read(1 << 20):
            total += len(chunk)
    return total


class RandomStream:
    """A file-like of `size` fresh random bytes, produced as it is read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


# --- Tahoe grid ------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TahoeGrid:
    """Tahoe 1.20 introducer and storage nodes, and a client: Tahoe's, or shoal's (client="shoal",
    with extra tahoe.cfg settings)."""

    def __init__(self, base: str, storage_nodes: int, client: str = "tahoe",
                 client_config: tuple[tuple[str, str, str], ...] = ()) -> None:
        self.base = pathlib.Path(base)
        self.procs: list[subprocess.Popen] = []
        self.base.mkdir(parents=True, exist_ok=True)
        tahoe = str(PEER / "tahoe")
        intro = self.base / "introducer"
        subprocess.run([tahoe, "create-introducer", "--hostname", "127.0.0.1", str(intro)], check=True,
                       capture_output=True)
        self._run(intro)
        furl_file = intro / "private" / "introducer.furl"
        self._wait(lambda: furl_file.exists())
        furl = furl_file.read_text().strip()
        for i in range(storage_nodes):
            d = self.base / f"storage{i + 1}"
            subprocess.run([tahoe, "create-node", "--hostname", "127.0.0.1", "--webport", "none",
                            "--nickname", f"t{i + 1}", "--introducer", furl, str(d)], check=True,
                           capture_output=True)
            self._run(d)
        cdir = self.base / "client"
        self.shoal_client = None
        if client == "tahoe":
            subprocess.run([tahoe, "create-client", "--introducer", furl, "--webport",
                            f"tcp:{free_port()}:interface=127.0.0.1", str(cdir)], check=True, capture_output=True)
            for section, key, value in client_config:
                set_config(str(cdir), section, key, value)
            self.client_proc = self._run(cdir)
            self.client_pid = self.client_proc.pid
        else:
            shoal_command("create-client", "--webport", "tcp:0:interface=127.0.0.1", "--introducer", furl,
                          str(cdir))
            for section, key, value in client_config:
                set_config(str(cdir), section, key, value)
            self.shoal_client = start_node(str(cdir))
            self.client_pid = self.shoal_client.pid
        self._wait(lambda: (cdir / "node.url").exists())
        self.client_url = (cdir / "node.url").read_text().strip()
        wait_for_servers(self.client_url, storage_nodes, timeout=120)

    def _run(self, d: pathlib.Path) -> subprocess.Popen:
        p = subprocess.Popen([str(PEER / "tahoe"), "run", str(d)], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    @staticmethod
    def _wait(cond, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise RuntimeError("tahoe grid did not come up")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.shoal_client is not None:
            self.shoal_client.stop()
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()


class ShoalGrid:
    def __init__(self, base: str, storage_nodes: int) -> None:
        self.grid: Grid = start_grid(base, storage_nodes)
        self.client_url = self.grid.client_url
        assert self.grid.client is not None
        self.client_pid = self.grid.client.pid

    def stop(self) -> None:
        self.grid.stop()


# --- measurements ----------------------------------------------------------

def measure(name: str, grid, repeat: int, sizes: tuple[int, ...] = (1, 16, 128), small: int = 200,
            ) -> dict[str, float]:
    out: dict[str, float] = {}
    for mib in sizes:
        ups, downs = [], []
        for _ in range(repeat):
            data = os.urandom(mib * MiB)
            t = time.perf_counter()
            cap = put(grid.client_url, data)
            ups.append(mib * MiB / (time.perf_counter() - t) / 1e6)
            t = time.perf_counter()
            assert get(grid.client_url, cap) == len(data)
            downs.append(mib * MiB / (time.perf_counter() - t) / 1e6)
        out[f"up {mib} MiB"] = statistics.median(ups)
        out[f"down {mib} MiB"] = statistics.median(downs)
        print(f"  {name}: {mib:>3} MiB  up {out[f'up {mib} MiB']:7.1f} MB/s   down {out[f'down {mib} MiB']:7.1f} MB/s",
              flush=True)
    caps = []
    t = time.perf_counter()
    for _ in range(small):
        caps.append(put(grid.client_url, os.urandom(4096)))
    out["small up"] = small / (time.perf_counter() - t)
    t = time.perf_counter()
    for cap in caps:
        get(grid.client_url, cap)
    out["small down"] = small / (time.perf_counter() - t)
    out["rss"] = rss_peak_mib(grid.client_pid)
    print(f"  {name}: {small} x 4 KiB  up {out['small up']:6.1f} files/s   down {out['small down']:6.1f} files/s; "
          f"client peak RSS {out['rss']:.0f} MiB", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["shoal", "tahoe"])
    ap.add_argument("--no-gib", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--storage-nodes", type=int, default=10)
    ap.add_argument("--transports", action="store_true",
                    help="shoal over HTTPS, shoal over Foolscap and Tahoe, all on Tahoe storage nodes")
    ap.add_argument("--sizes", default="1,16,128", help="MiB per file, comma-separated")
    ap.add_argument("--small-files", type=int, default=200)
    args = ap.parse_args()
    if args.transports:
        return transports(args)
    results: dict[str, dict[str, float]] = {}
    tmp = tempfile.mkdtemp(prefix="shoal-bench-updown-")
    try:
        for name, cls in (("shoal", ShoalGrid), ("tahoe", TahoeGrid)):
            if args.only and args.only != name:
                continue
            if name == "tahoe" and not (PEER / "tahoe").exists():
                print("tahoe: .venv-peer missing (make peer); skipped")
                continue
            print(f"{name}: starting an introducer, {args.storage_nodes} storage nodes and a client ...", flush=True)
            grid = cls(os.path.join(tmp, name), args.storage_nodes)
            try:
                results[name] = measure(name, grid, args.repeat)
                if name == "shoal" and not args.no_gib:
                    before = rss_now_mib(grid.client_pid)
                    t = time.perf_counter()
                    put(grid.client_url, RandomStream(1024 * MiB), length=1024 * MiB)
                    dt = time.perf_counter() - t
                    print(f"  shoal: 1 GiB upload {1024 * MiB / dt / 1e6:.1f} MB/s; client RSS before "
                          f"{before:.0f} MiB, peak {rss_peak_mib(grid.client_pid):.0f} MiB", flush=True)
            finally:
                grid.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "shoal" in results and "tahoe" in results:
        s, t = results["shoal"], results["tahoe"]
        print("shoal/tahoe ratios:")
        for key in ("up 128 MiB", "down 128 MiB", "up 16 MiB", "down 16 MiB", "small up", "small down"):
            print(f"  {key:<14} {s[key] / t[key]:6.2f}x")
    return 0


def transports(args: argparse.Namespace) -> int:
    if not (PEER / "tahoe").exists():
        print("tahoe: .venv-peer missing (make peer)")
        return 1
    sizes = tuple(int(x) for x in args.sizes.split(","))
    n = args.storage_nodes  # 3-of-10, happy 7, scaled to the grid
    needed = max(1, round(0.3 * n))
    encoding = (("client", "shares.needed", str(needed)), ("client", "shares.happy", str(max(needed, round(0.7 * n)))),
                ("client", "shares.total", str(n)))
    runs = (
        ("shoal/HTTPS", "shoal", encoding),
        ("shoal/Foolscap", "shoal", (*encoding, ("client", "force_foolscap", "true"))),
        ("tahoe/HTTPS", "tahoe", encoding),
    )
    results: dict[str, dict[str, float]] = {}
    tmp = tempfile.mkdtemp(prefix="shoal-bench-transports-")
    try:
        for name, client, config in runs:
            print(f"{name}: {args.storage_nodes} Tahoe 1.20 storage nodes and a {client} client ...", flush=True)
            grid = TahoeGrid(os.path.join(tmp, name.replace("/", "-")), args.storage_nodes, client, config)
            try:
                if client == "shoal":
                    used = {s["protocol"] for s in web_json(grid.client_url)["servers"]}
                    print(f"  {name}: the client's welcome JSON says {sorted(used)}", flush=True)
                results[name] = measure(name, grid, args.repeat, sizes, args.small_files)
            finally:
                grid.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t = results["tahoe/HTTPS"]
    keys = [k for mib in sizes for k in (f"up {mib} MiB", f"down {mib} MiB")] + ["small up", "small down"]
    print(f"ratios to tahoe/HTTPS (higher is faster): {'':<2}" + "".join(f"{n:>16}" for n, _, _ in runs[:2]))
    for key in keys:
        print(f"  {key:<14}" + "".join(f"{results[n][key] / t[key]:15.2f}x" for n, _, _ in runs[:2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
