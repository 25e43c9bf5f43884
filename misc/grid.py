"""`make run`: a real local grid on 127.0.0.1 under _run/grid/ (ports chosen free).

Starts an introducer, 5 storage nodes and a client, each a `shoal run`
process; waits until the client sees every server; prints the client's web
URL and the grid's status; then does the main job with the `shoal` CLI, as a
person would: `shoal put` of a random sample file (progress bar on a
terminal), its cap and web URL, `shoal get` back into a file, and a check
that the bytes are identical. Then it runs until Ctrl-C and stops every
process. --once stops right after the round trip. A second run reuses the
same node directories (and their shares).
"""

import argparse
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.parse

from shoal.testing.grid import start_grid, web_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOAL = [sys.executable, "-m", "shoal.main"]


def file_digest(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.digest()


def write_sample(path: str, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            left -= len(chunk)


def round_trip(url: str, nodedir: str, workdir: str, size: int) -> None:
    """The main job, through the CLI: put a sample file, print its cap and URL, get it back, check it."""
    sample = os.path.join(workdir, "sample.bin")
    back = os.path.join(workdir, "sample.back")
    write_sample(sample, size)
    show = f"shoal -d {shlex.quote(nodedir)}"
    print(f"$ {show} put {sample}")
    t = time.monotonic()
    put = subprocess.run([*SHOAL, "-d", nodedir, "put", sample], stdout=subprocess.PIPE, text=True)
    if put.returncode != 0:
        raise SystemExit(f"shoal put failed (exit status {put.returncode})")
    cap = put.stdout.strip()
    up = time.monotonic() - t
    mib = size / (1024 * 1024)
    print(f"uploaded {mib:.0f} MiB of random data in {up:.2f}s ({mib / up:.1f} MiB/s)")
    print(f"  cap: {cap}")
    print(f"  web: {url}uri/{urllib.parse.quote(cap, safe=':')}")
    print(f"$ {show} get {cap[:24]}... {back}")
    t = time.monotonic()
    get = subprocess.run([*SHOAL, "-d", nodedir, "get", cap, back])
    if get.returncode != 0:
        raise SystemExit(f"shoal get failed (exit status {get.returncode})")
    down = time.monotonic() - t
    ok = file_digest(back) == file_digest(sample)
    print(f"downloaded it in {down:.2f}s ({mib / down:.1f} MiB/s): {'identical' if ok else 'MISMATCH'}")
    print(f"next: {show} create-alias tahoe; {show} put FILE tahoe:NAME; {show} ls -l   (shoal --help)")
    os.unlink(back)
    if not ok:
        raise SystemExit("round trip mismatch")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=os.path.join(ROOT, "_run", "grid"))
    ap.add_argument("--storage-nodes", type=int, default=5)
    ap.add_argument("--once", action="store_true", help="stop right after the round trip")
    ap.add_argument("--sample-mib", type=int, default=32, help="size of the sample file (default 32 MiB)")
    args = ap.parse_args()
    os.makedirs(args.base, exist_ok=True)
    t = time.monotonic()
    print(f"starting an introducer, {args.storage_nodes} storage nodes and a client under {args.base} ...")
    # 3-of-10 as Tahoe's default, with happiness lowered to fit the grid's size
    happy = str(min(7, args.storage_nodes))
    grid = start_grid(args.base, args.storage_nodes, client_args=("--shares-happy", happy))
    try:
        status = web_json(grid.client_url)
        print(f"grid up in {time.monotonic() - t:.1f}s; client web: {grid.client_url}")
        print(f"introducer: {grid.introducer_furl}")
        for s in status["servers"]:
            print(f"  {s['nickname']:<10} {s['nodeid'][:20]}...  {s['connection_status']}")
        assert grid.client is not None
        round_trip(grid.client_url, grid.client.nodedir, args.base, args.sample_mib * 1024 * 1024)
        if not args.once:
            print("Ctrl-C stops the grid.")
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping every node ...")
        grid.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
