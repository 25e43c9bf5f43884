"""`make run`: a real local grid on 127.0.0.1 under _run/grid/ (ports chosen free).

Starts an introducer, 5 storage nodes and a client, each a `shoal run`
process; waits until the client sees every server; prints the client's web
URL and the grid's status; then runs until Ctrl-C and stops every process.
--once stops right after the status (used by the tests). A second run reuses
the same node directories (and their shares).
"""

import argparse
import hashlib
import os
import signal
import sys
import time
import urllib.request

from shoal.testing.grid import start_grid, web_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def round_trip(url: str, size: int = 8 * 1024 * 1024) -> None:
    """The main job: upload a sample file, print its cap, download it, check it."""
    sample = os.urandom(size)
    t = time.monotonic()
    req = urllib.request.Request(url + "uri", data=sample, method="PUT")
    with urllib.request.urlopen(req, timeout=600) as r:
        cap = r.read().decode().strip()
    up = time.monotonic() - t
    print(f"uploaded {size // (1024 * 1024)} MiB of random data in {up:.2f}s: {cap}")
    t = time.monotonic()
    with urllib.request.urlopen(url + "uri/" + cap, timeout=600) as r:
        back = r.read()
    down = time.monotonic() - t
    ok = hashlib.sha256(back).digest() == hashlib.sha256(sample).digest()
    print(f"downloaded it in {down:.2f}s: {'identical' if ok else 'MISMATCH'}")
    print(f"try: curl {url}uri/{cap} > copy")
    if not ok:
        raise SystemExit("round trip mismatch")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=os.path.join(ROOT, "_run", "grid"))
    ap.add_argument("--storage-nodes", type=int, default=5)
    ap.add_argument("--once", action="store_true", help="stop as soon as the grid is up")
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
        round_trip(grid.client_url)
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
