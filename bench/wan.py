"""shoal against Tahoe-LAFS 1.20 on a wide-area grid: real hosts, real round trips.

Every node runs in its own network namespace (shoal.testing.netgrid): an
introducer, STORAGE storage hosts and a client for each implementation
(3-of-10, happy 7 by default), all links 100 Mbit/s. For each link setting
(round trip 0, 50 and 150 ms; then 50 ms with the client's uplink at 10
Mbit/s) both grids run the same operations through their client's web API:
one big file up and down, many 4 KiB files up and down, an SDMF mutable
file created, read and overwritten, a directory made, files linked into it
and listed. It prints seconds per operation (the median of --repeat runs), the ratio Tahoe/shoal (above 1:
shoal is faster), and the round trips each operation waits, estimated as
(t(RTT) - t(0)) / RTT.

    sudo python bench/wan.py [--storage 10] [--big-mib 16] [--small 100] [--rtts 0,50,150] [--repeat 3]

Needs root (namespaces) and Tahoe 1.20 in .venv-peer (make peer).
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from shoal.testing.grid import shares_args, wait_for_servers
from shoal.testing.netgrid import NetGrid, unavailable
from shoal.testing.processes import start_all
from shoal.testing.wait import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[1]
TAHOE = ROOT / ".venv-peer" / "bin" / "tahoe"
MiB = 1024 * 1024
LINK_MBIT = 100
UPLINK_MBIT = 10


# -- web API operations (the same requests for both implementations) ---------------

def request(url: str, method: str = "GET", data: bytes | None = None, timeout: float = 600) -> bytes:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {url} answered {e.code}: {e.read()[:2000].decode(errors='replace')}") from None


def put(base: str, data: bytes, path: str = "uri") -> str:
    return request(base + path, "PUT", data).decode().strip()


def get(base: str, cap: str) -> bytes:
    return request(base + "uri/" + urllib.parse.quote(cap))


def timed(fn: Callable[[], object]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def operations(base: str, big_mib: int, small: int) -> dict[str, float]:
    """Seconds per operation (small files and directory links: per file)."""
    out: dict[str, float] = {}
    big = os.urandom(big_mib * MiB)
    caps: dict[str, str] = {}
    out[f"{big_mib} MiB upload"] = timed(lambda: caps.__setitem__("big", put(base, big)))
    out[f"{big_mib} MiB download"] = timed(lambda: get(base, caps["big"]))
    files = [os.urandom(4096) for _ in range(small)]
    small_caps: list[str] = []
    out["4 KiB upload"] = timed(lambda: small_caps.extend(put(base, f) for f in files)) / small
    out["4 KiB download"] = timed(lambda: [get(base, c) for c in small_caps]) / small
    out["mutable create"] = timed(lambda: caps.__setitem__("mut", put(base, b"v1" * 1000, "uri?format=SDMF")))
    out["mutable read"] = timed(lambda: get(base, caps["mut"]))
    out["mutable write"] = timed(lambda: put(base, b"v2" * 1000, "uri/" + urllib.parse.quote(caps["mut"])))
    out["mkdir"] = timed(lambda: caps.__setitem__("dir", request(base + "uri?t=mkdir", "POST", b"").decode()))
    d = base + "uri/" + urllib.parse.quote(caps["dir"])
    links = small_caps[:20]
    out["link into dir"] = timed(lambda: [request(f"{d}/f{i}?t=uri", "PUT", c.encode())
                                          for i, c in enumerate(links)]) / max(len(links), 1)
    listing: list = []
    out["list dir"] = timed(lambda: listing.extend(json.loads(request(d + "?t=json"))))
    assert listing[0] == "dirnode" and len(listing[1]["children"]) == len(links), listing
    return out


def median_of(repeat: int, run: Callable[[], dict[str, float]]) -> dict[str, float]:
    runs = [run() for _ in range(repeat)]
    return {op: statistics.median(r[op] for r in runs) for op in runs[0]}


# -- the two grids on one set of namespaces -----------------------------------------

def tahoe(*args: str) -> None:
    r = subprocess.run([str(TAHOE), *args], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"tahoe {args[0]} failed: {r.stdout} {r.stderr}")


def start_tahoe(grid: NetGrid, host: str, nodedir: str, ready: str) -> subprocess.Popen:
    proc = grid.popen(host, [str(TAHOE), "run", nodedir], stdin=subprocess.PIPE,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"tahoe node {nodedir} exited")
        return os.path.exists(os.path.join(nodedir, ready))

    wait_until(up, 180, f"tahoe node {nodedir} to write {ready}", interval=0.2)
    return proc


def build(grid: NetGrid, storage: int, k: int, happy: int, n: int) -> tuple[dict[str, str], list]:
    """Both grids; returns the client web URLs and the Tahoe processes (to stop)."""
    shoal_storage = [f"ss{i}" for i in range(storage)]
    tahoe_storage = [f"ts{i}" for i in range(storage)]
    for name in ("sintro", *shoal_storage, "sclient", "tintro", *tahoe_storage, "tclient"):
        grid.add_host(name)
    grid.start_introducer("sintro")
    tdir = os.path.join(grid.base, "tahoe")
    os.makedirs(tdir)
    tahoe("create-introducer", *grid.listen_args("tintro"), os.path.join(tdir, "tintro"))
    procs = [start_tahoe(grid, "tintro", os.path.join(tdir, "tintro"), "private/introducer.furl")]
    with open(os.path.join(tdir, "tintro", "private", "introducer.furl")) as f:
        tfurl = f.read().strip()
    creates = [("create-node", *grid.listen_args(h), "--webport", "none", "--nickname", h,
                "--introducer", tfurl, os.path.join(tdir, h)) for h in tahoe_storage]
    creates.append(("create-client", *grid.web_args("tclient"), "--introducer", tfurl,
                    *shares_args(k, happy, n), os.path.join(tdir, "tclient")))
    start_all([lambda c=c: tahoe(*c) for c in creates])  # type: ignore[misc]
    starters: list[Callable[[], object]] = [
        *(lambda h=h: start_tahoe(grid, h, os.path.join(tdir, h), "private/storage.furl") for h in tahoe_storage),
        lambda: start_tahoe(grid, "tclient", os.path.join(tdir, "tclient"), "node.url"),
        *(lambda h=h: grid.add_storage(h) for h in shoal_storage),
        lambda: grid.add_client("sclient", *shares_args(k, happy, n)),
    ]
    started = start_all(starters)  # type: ignore[arg-type]
    procs += [p for p in started if isinstance(p, subprocess.Popen)]
    urls = {"shoal": grid.web_url("sclient"), "tahoe": grid.web_url("tclient")}
    for url in urls.values():
        wait_for_servers(url, storage, timeout=180)
    return urls, procs


def set_links(grid: NetGrid, rtt: float, client_up: float | None) -> None:
    for name in grid.hosts:
        up = client_up if name in ("sclient", "tclient") and client_up else LINK_MBIT
        grid.set_link(name, delay=rtt / 4, up_mbit=up, down_mbit=LINK_MBIT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", type=int, default=10)
    ap.add_argument("--big-mib", type=int, default=16)
    ap.add_argument("--small", type=int, default=100, help="4 KiB files per run")
    ap.add_argument("--rtts", default="0,50,150", help="round trips in ms (0 is the baseline)")
    ap.add_argument("--shares", default="3,7,10", help="k,happy,n")
    ap.add_argument("--repeat", type=int, default=3, help="runs per link setting (medians are printed)")
    args = ap.parse_args()
    if (why := unavailable()) is not None:
        sys.exit(f"wan.py: {why}")
    if not TAHOE.exists():
        sys.exit("wan.py: Tahoe 1.20 is not installed in .venv-peer (make peer)")
    k, happy, n = (int(x) for x in args.shares.split(","))
    if happy > args.storage:
        sys.exit(f"wan.py: happiness {happy} needs at least {happy} storage hosts (--storage {args.storage})")
    rtts = [int(x) / 1000 for x in args.rtts.split(",")]
    if 0 not in rtts:
        rtts.insert(0, 0.0)
    scenarios = [(f"RTT {r * 1000:.0f} ms", r, None) for r in rtts]
    scenarios.append((f"RTT 50 ms, client uplink {UPLINK_MBIT} Mbit/s", 0.05, UPLINK_MBIT))
    grid = NetGrid(tempfile.mkdtemp(prefix="shoal-wan-"))
    procs: list[subprocess.Popen] = []
    try:
        start = time.monotonic()
        urls, procs = build(grid, args.storage, k, happy, n)
        print(f"{args.storage} storage hosts per implementation, {k}-of-{n} happy {happy}, links "
              f"{LINK_MBIT} Mbit/s; grids up in {time.monotonic() - start:.0f} s", flush=True)
        results: dict[str, dict[str, dict[str, float]]] = {}
        for label, rtt, up in scenarios:
            set_links(grid, rtt, up)
            results[label] = {impl: median_of(args.repeat, lambda u=url: operations(u, args.big_mib, args.small))
                              for impl, url in urls.items()}
            report(label, results[label], rtt, results[scenarios[0][0]])
        summary(results, scenarios)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(30)
        grid.close()


def report(label: str, res: dict[str, dict[str, float]], rtt: float, base: dict[str, dict[str, float]]) -> None:
    print(f"\n{label}")
    print(f"  {'operation':<18} {'shoal s':>9} {'tahoe s':>9} {'tahoe/shoal':>11} {'RTTs shoal':>10} {'RTTs tahoe':>10}")
    for op in res["shoal"]:
        s, t = res["shoal"][op], res["tahoe"][op]
        rs = (s - base["shoal"][op]) / rtt if rtt else float("nan")
        rt = (t - base["tahoe"][op]) / rtt if rtt else float("nan")
        print(f"  {op:<18} {s:9.3f} {t:9.3f} {t / s:11.1f} {rs:10.1f} {rt:10.1f}", flush=True)


def summary(results: dict[str, dict[str, dict[str, float]]], scenarios: list) -> None:
    print("\nGeometric mean of tahoe/shoal per link setting (small-file, mutable and directory operations):")
    for label, _rtt, _up in scenarios:
        res = results[label]
        ops = [op for op in res["shoal"] if "MiB" not in op]
        ratios = [res["tahoe"][op] / res["shoal"][op] for op in ops]
        print(f"  {label:<40} {statistics.geometric_mean(ratios):6.1f}x")


if __name__ == "__main__":
    main()
