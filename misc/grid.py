"""`make run`: a real local grid on 127.0.0.1 under _run/grid/ (ports chosen free).

Starts an introducer, 5 storage nodes and a client, each a `shoal run`
process; waits until the client sees every server; prints the client's web
URL and the grid's status; then runs until Ctrl-C and stops every process.
--once stops right after the status (used by the tests). A second run reuses
the same node directories (and their shares).
"""

import argparse
import os
import signal
import sys
import time

from shoal.testing.grid import start_grid, web_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=os.path.join(ROOT, "_run", "grid"))
    ap.add_argument("--storage-nodes", type=int, default=5)
    ap.add_argument("--once", action="store_true", help="stop as soon as the grid is up")
    args = ap.parse_args()
    os.makedirs(args.base, exist_ok=True)
    t = time.monotonic()
    print(f"starting an introducer, {args.storage_nodes} storage nodes and a client under {args.base} ...")
    grid = start_grid(args.base, args.storage_nodes)
    try:
        status = web_json(grid.client_url)
        print(f"grid up in {time.monotonic() - t:.1f}s; client web: {grid.client_url}")
        print(f"introducer: {grid.introducer_furl}")
        for s in status["servers"]:
            print(f"  {s['nickname']:<10} {s['nodeid'][:20]}...  {s['connection_status']}")
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
