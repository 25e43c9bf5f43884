"""PUT and GET of a big file through the web API of a real client node on a real local grid.

Starts an introducer, storage nodes and a client as processes
(shoal.testing.grid.start_grid), streams SIZE bytes of random data from a
file on disk into `PUT /uri` and back out of `GET /uri/$CAP`, and reports
MB/s for each and the client node's peak RSS (VmHWM, which covers the whole
life of the process: both transfers). Target: < 200 MiB.

    .venv/bin/python bench/web.py [--size-mib 1024] [--storage-nodes 5]
"""

import argparse
import hashlib
import http.client
import os
import sys
import tempfile
import time
from urllib.parse import quote, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from shoal.testing.grid import start_grid  # noqa: E402

CHUNK = 1024 * 1024


def rss_mib(pid: int, field: str = "VmHWM") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_file(path: str, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


def put(url: str, path: str, size: int) -> str:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=3600)
    with open(path, "rb") as f:
        conn.request("PUT", "/uri", body=f, headers={"Content-Length": str(size)})
        r = conn.getresponse()
        body = r.read().decode()
    conn.close()
    if r.status != 200:
        raise SystemExit(f"PUT failed: {r.status} {body}")
    return body.strip()


def get(url: str, cap: str) -> tuple[str, int, float]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=3600)
    conn.request("GET", "/uri/" + quote(cap))
    r = conn.getresponse()
    if r.status != 200:
        raise SystemExit(f"GET failed: {r.status} {r.read()[:500]!r}")
    h = hashlib.sha256()
    n = 0
    first: float | None = None
    started = time.monotonic()
    while True:
        block = r.read(CHUNK)
        if not block:
            break
        if first is None:
            first = time.monotonic() - started
        h.update(block)
        n += len(block)
    conn.close()
    return h.hexdigest(), n, first or 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--storage-nodes", type=int, default=5)
    args = p.parse_args()
    size = args.size_mib * 1024 * 1024
    base = tempfile.mkdtemp(prefix="shoal-bench-web-")
    source = os.path.join(base, "source.bin")
    print(f"writing {args.size_mib} MiB of random data ...", flush=True)
    digest = make_file(source, size)
    n = args.storage_nodes
    grid = start_grid(base, storage_nodes=n,
                      client_args=("--shares-needed", "3", "--shares-happy", str(n), "--shares-total", str(n)))
    try:
        assert grid.client is not None
        pid = grid.client.pid
        url = grid.client_url
        print(f"grid: {n} storage nodes, 3-of-{n}; client pid {pid}, RSS at start "
              f"{rss_mib(pid, 'VmRSS'):.0f} MiB", flush=True)
        t0 = time.monotonic()
        cap = put(url, source, size)
        t_put = time.monotonic() - t0
        print(f"PUT  {args.size_mib} MiB: {t_put:.1f} s, {size / t_put / 1e6:.1f} MB/s; "
              f"client peak RSS so far {rss_mib(pid):.0f} MiB", flush=True)
        t0 = time.monotonic()
        got, count, first = get(url, cap)
        t_get = time.monotonic() - t0
        ok = got == digest and count == size
        print(f"GET  {args.size_mib} MiB: {t_get:.1f} s, {size / t_get / 1e6:.1f} MB/s, first byte after "
              f"{first * 1000:.0f} ms; content {'verified' if ok else 'WRONG'}", flush=True)
        peak = rss_mib(pid)
        print(f"client node peak RSS (VmHWM): {peak:.0f} MiB (target < 200 MiB)", flush=True)
        if not ok:
            raise SystemExit(1)
    finally:
        grid.stop()
        import shutil

        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
