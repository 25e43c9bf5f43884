"""HTTP storage server throughput: shoal's against Tahoe-LAFS 1.20's, same client, same run.

Starts one shoal storage node and (when the reference peer .venv-peer is
installed) one Tahoe 1.20 storage node on loopback, and drives each, one
after the other, with Tahoe 1.20's own HTTP storage client
(bench/peer_http_storage.py, run by the peer's Python): --shares immutable
shares of --share-mib MiB written in 1 MiB PATCH chunks and read back in
1 MiB range reads, then --mutable-calls read-test-write calls. Both servers
do TLS and CBOR; the client is the same, so the difference is the server.

    python bench/http_storage.py [--shares 16] [--share-mib 4] [--mutable-calls 200]
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from shoal.protocol.nurl import Nurl, spki_hash
from shoal.testing.processes import create_storage_node, start_node

ROOT = pathlib.Path(__file__).resolve().parents[1]
PEER = ROOT / ".venv-peer" / "bin"
SCRIPT = pathlib.Path(__file__).with_name("peer_http_storage.py")


def nurl_of(nodedir: str) -> str:
    furl = pathlib.Path(nodedir, "private", "storage.furl").read_text().strip()
    port = int(furl.split("@")[1].split("/")[0].split(":")[-1])
    pin = spki_hash(pathlib.Path(nodedir, "private", "node.pem").read_bytes())
    return Nurl(pin, "127.0.0.1", port, furl.rsplit("/", 1)[1]).to_text()


def start_tahoe(nodedir: str) -> subprocess.Popen:
    subprocess.run([str(PEER / "tahoe"), "create-node", "--hostname", "127.0.0.1", "--webport", "none", nodedir],
                   check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([str(PEER / "tahoe"), "run", nodedir], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    furl = pathlib.Path(nodedir, "private", "storage.furl")
    deadline = time.monotonic() + 60
    while not furl.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the Tahoe node did not start")
        time.sleep(0.2)
    time.sleep(1.0)  # the FURL file is written just before the port listens
    return proc


def measure(nurl: str, args: argparse.Namespace) -> dict[str, float]:
    out = subprocess.run([str(PEER / "python"), str(SCRIPT), nurl, str(args.shares), str(args.share_mib),
                          str(args.mutable_calls)], check=True, capture_output=True, text=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(name: str, seconds: dict[str, float], args: argparse.Namespace) -> None:
    total = args.shares * args.share_mib * 1024 * 1024
    print(f"{name:6} immutable write {total / seconds['write'] / 1e6:7.1f} MB/s, "
          f"read {total / seconds['read'] / 1e6:7.1f} MB/s, "
          f"mutable {args.mutable_calls / seconds['mutable']:7.1f} calls/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=int, default=16)
    parser.add_argument("--share-mib", type=int, default=4)
    parser.add_argument("--mutable-calls", type=int, default=200)
    args = parser.parse_args()
    if not (PEER / "python").exists():
        sys.exit("needs the reference peer .venv-peer (make peer)")
    tmp = tempfile.mkdtemp(prefix="shoal-bench-http-")
    shoal_node = tahoe_proc = None
    try:
        shoal_dir, tahoe_dir = os.path.join(tmp, "shoal"), os.path.join(tmp, "tahoe")
        create_storage_node(shoal_dir)
        shoal_node = start_node(shoal_dir)
        tahoe_proc = start_tahoe(tahoe_dir)
        print(f"{args.shares} shares of {args.share_mib} MiB, 1 MiB chunks; {args.mutable_calls} mutable calls; "
              f"client: Tahoe 1.20's HTTP storage client")
        report("shoal", measure(nurl_of(shoal_dir), args), args)
        report("tahoe", measure(nurl_of(tahoe_dir), args), args)
    finally:
        if shoal_node is not None:
            shoal_node.stop()
        if tahoe_proc is not None and tahoe_proc.poll() is None:
            os.kill(tahoe_proc.pid, signal.SIGTERM)
            tahoe_proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
