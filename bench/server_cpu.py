"""Storage server CPU per GB of immutable upload over HTTPS (shoal's storage node, one process).

Starts one shoal storage node on loopback and drives it with shoal's own
HTTP client (grid/https_pool: blocking stdlib ssl, cheap on the client
side): --shares shares of --share-mib MiB, each written in 1 MiB PATCH
chunks, --parallel shares at a time, then reads them back in 1 MiB range
reads. Prints the server's CPU seconds (user+system, /proc) per GB written
and read, and the wall time. With --py-spy FILE the node is recorded by
py-spy during the writes (flamegraph SVG, or --py-spy-format raw).

With --compare-src DIR a second node runs another tree's code (e.g. main's
src/) and the rounds alternate between the two, so both are measured under
the same load.

    PYTHONPATH=src python bench/server_cpu.py [--shares 32] [--share-mib 4] [--parallel 4] [--repeat 3]
                                              [--compare-src /path/to/other/src]
"""

import argparse
import concurrent.futures
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from shoal.grid.https_pool import Request, ServerPool
from shoal.protocol import http_bodies as bodies
from shoal.protocol import http_storage as hs
from shoal.protocol.http_storage import Endpoint, Secret
from shoal.protocol.nurl import spki_hash
from shoal.testing.processes import create_storage_node, start_node

MiB = 1024 * 1024
PY_SPY = pathlib.Path(sys.executable).with_name("py-spy")


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_pool(nodedir: str) -> tuple[ServerPool, bytes]:
    furl = pathlib.Path(nodedir, "private", "storage.furl").read_text().strip()
    port = int(furl.split("@")[1].split("/")[0].split(":")[-1])
    pin = spki_hash(pathlib.Path(nodedir, "private", "node.pem").read_bytes())
    pool = ServerPool("127.0.0.1", port, pin.encode("ascii"),
                      lambda der: spki_hash(der).encode("ascii"), max_idle=16)
    return pool, furl.rsplit("/", 1)[1].encode("ascii")


def upload_share(pool: ServerPool, swissnum: bytes, si: bytes, size: int, chunk: bytes) -> None:
    secrets = {Secret.LEASE_RENEW: b"r" * 32, Secret.LEASE_CANCEL: b"c" * 32, Secret.UPLOAD: b"u" * 32}
    auth = [(hs.AUTHORIZATION, hs.authorization_header(swissnum))]
    cbor = [(hs.CONTENT_TYPE, hs.CBOR_MIME_TYPE.encode()), (hs.ACCEPT, hs.CBOR_MIME_TYPE.encode())]
    sec = [(hs.SECRETS_HEADER, v) for v in hs.secret_headers(secrets)]
    body = bodies.AllocateRequest({0}, size).encode()
    answer = pool.request(Request(b"POST", hs.path_for(Endpoint.IMMUTABLE_ALLOCATE, si).encode(),
                                  auth + cbor + sec, [body]))
    assert answer.status == 200, answer
    upload = [(hs.SECRETS_HEADER, hs.secret_header(Secret.UPLOAD, secrets[Secret.UPLOAD]))]
    path = hs.path_for(Endpoint.IMMUTABLE_WRITE, si, 0).encode()
    for offset in range(0, size, len(chunk)):
        piece = chunk[: size - offset]
        rng = b"bytes %d-%d/*" % (offset, offset + len(piece) - 1)
        answer = pool.request(Request(b"PATCH", path, auth + cbor + upload + [(hs.CONTENT_RANGE, rng)], [piece]))
        assert answer.status in (200, 201), answer


def read_share(pool: ServerPool, swissnum: bytes, si: bytes, size: int) -> None:
    auth = [(hs.AUTHORIZATION, hs.authorization_header(swissnum))]
    path = hs.path_for(Endpoint.IMMUTABLE_READ, si, 0).encode()
    for offset in range(0, size, MiB):
        rng = b"bytes=%d-%d" % (offset, min(size, offset + MiB) - 1)
        answer = pool.request(Request(b"GET", path, auth + [(hs.RANGE, rng)], max_body=2 * MiB))
        assert answer.status == 206 and len(answer.body) == min(MiB, size - offset), answer.status


def run(pool: ServerPool, swissnum: bytes, pid: int, args: argparse.Namespace, round_: int,
        spy: str | None) -> tuple[float, float, float, float]:
    size = args.share_mib * MiB
    chunk = os.urandom(MiB)
    sis = [(round_ * 100000 + i).to_bytes(16, "big") for i in range(args.shares)]
    recorder = None
    if spy:
        recorder = subprocess.Popen([str(PY_SPY), "record", "-p", str(pid), "-o", spy, "-r", "200",
                                     "--format", args.py_spy_format, "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as ex:
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        list(ex.map(lambda si: upload_share(pool, swissnum, si, size, chunk), sis))
        c1, t1 = cpu_seconds(pid), time.perf_counter()
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(60)
        c2, t2 = cpu_seconds(pid), time.perf_counter()
        list(ex.map(lambda si: read_share(pool, swissnum, si, size), sis))
        c3, t3 = cpu_seconds(pid), time.perf_counter()
    gb = args.shares * size / 1e9
    return (c1 - c0) / gb, t1 - t0, (c3 - c2) / gb, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=int, default=32)
    parser.add_argument("--share-mib", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--py-spy", metavar="FILE", help="record the node during the first round's writes")
    parser.add_argument("--py-spy-format", default="flamegraph", choices=["flamegraph", "raw", "speedscope"])
    parser.add_argument("--compare-src", metavar="DIR", help="also run a node on this src/ tree, alternating")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="shoal-bench-srvcpu-")
    nodes: list[tuple[str, object, ServerPool, bytes]] = []
    try:
        trees = [("this", os.environ.get("PYTHONPATH", ""))]
        if args.compare_src:
            trees.append(("other", os.path.abspath(args.compare_src)))
        for name, src in trees:
            nodedir = os.path.join(tmp, name)
            saved = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = src
            try:
                create_storage_node(nodedir)
                node = start_node(nodedir)
            finally:
                if saved is None:
                    del os.environ["PYTHONPATH"]
                else:
                    os.environ["PYTHONPATH"] = saved
            nodes.append((name, node, *node_pool(nodedir)))
        mib = args.shares * args.share_mib
        print(f"{args.shares} shares x {args.share_mib} MiB ({mib} MiB), 1 MiB PATCH chunks, "
              f"{args.parallel} at a time; server CPU s/GB (user+sys); trees: "
              + ", ".join(f"{name}={src or '(installed)'}" for name, src in trees))
        for r in range(args.repeat):
            for name, node, pool, swissnum in nodes:
                spy = args.py_spy if r == 0 and name == "this" else None
                w_cpu, w_wall, r_cpu, r_wall = run(pool, swissnum, node.pid, args, r, spy)  # type: ignore[attr-defined]
                print(f"round {r} {name:5}: write {w_cpu:5.2f} s/GB ({mib / w_wall:6.1f} MiB/s)   "
                      f"read {r_cpu:5.2f} s/GB ({mib / r_wall:6.1f} MiB/s)", flush=True)
    finally:
        for _name, node, pool, _swissnum in nodes:
            pool.close()
            node.stop()  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
