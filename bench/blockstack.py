"""Blockstack driver put/get rates, and BlobManager sync of many small blobs, on a
real local grid (issue #9 item 6).

Starts an introducer, storage nodes and a client node as processes
(shoal.testing.grid.start_grid), points the driver (shoal.apps.blockstack) at
the client's web API, and times: immutable put and get (SHA-256 checked), a
mutable put of a new id (creates an SDMF file: RSA keygen, then a directory
link), a mutable put that overwrites an existing id, and a mutable get.
Every operation goes through the driver's blocking HTTP calls, one at a time,
as a Blockstack client makes them.

The BlobManager part (the client node runs the blob service, tahoe.cfg
``[blobs] enabled = true``) syncs --blobs blobs of --blob-size bytes from one
device up to the service and down to a second device, once through /stream
and once one request per blob (Soledad measured 72.5 s for 1000 x 10 KB with
persistent connections, 194.6 s without).

    .venv/bin/python bench/blockstack.py [--count 40] [--size 4096] [--storage-nodes 5]
                                         [--blobs 1000] [--blob-size 10240]

The driver rows as bench/blobs.py prints them (issue #19: a new id >= 20/s),
`bench/blobs.py --no-workloads --scale '' --no-blobmanager [--key-pool 48]`:
5 storage nodes, 3-of-5, 40 x 4 KiB, one call at a time; ops/s, then CPU ms
per op of the client node + the storage nodes (summed). The machine has 2
cores shared with other sessions' test suites (load average 5 to 15 during
these runs): wall rates swing 2x from run to run, CPU per op far less. Two
rounds back to back, each five runs in a row (round 1 at load 5-8):

    code, [client]mutable.key_pool   new id          overwrite      get
    main (pool 2)                     6.0   131+37    12.1  50+28   66  9+8
    bsk  (pool 2)                    13.4    90+35    19.7  37+31   81  9+7
    bsk, pool 48                     16.1    46+40    20.2  34+29   92  8+6
    bsk merged into int4, pool 48    26.4    27+27    21.2  33+29  102  7+6
    round 2 (load 5-15): main 5.9 (102+29), bsk pool 2 4.3 (87+32), bsk pool
    48 11.9 (46+36), bsk+int4 pool 48 17.6 (25+27) new ids/s.

With a key pool the new ids' keys are made outside the timed puts: refilling
the 40 after the burst took 2.1-2.5 s of client CPU (55-62 ms a key); a new id
beyond the pool pays that on its own CPU again (the pool-2 rows).

Where a new id's time went on main (py-spy on the client node, 100 Hz, 40
puts): two web requests (PUT /uri?format=SDMF, then PUT t=uri to link); the
link's walk read the directory (server map and retrieve), its modify reused
that map but decrypted the directory's RSA key, and pycryptodome's import of
it ran primality tests on the reactor: 44% of the reactor's samples, ~70 ms a
put under load. RSA keygen in the CPU pool: the pool of 2 was empty after two
puts, so each put waited for a key made on the spot while the refill made
another (520 samples, the largest item). Now (bsk): one request, PUT
/uri/$DIRCAP/name?format=SDMF&replace=false, whose walk does not look the
name up (the link's overwrite=False gives the 409); the key is loaded without
the prime tests (its DER is vouched for by the writekey hash; 2.5 ms); and the
pool (a larger [client]mutable.key_pool) serves a burst, refilling after a
lull. int4's cache of this node's own versions then saves the modify's server
map, key decryption and retrieve (storage CPU 40 -> 27 ms a put). What is
left of a pooled new id is two publishes (the file's and the directory's),
the share and signature work around them, and the HTTP request. An overwrite
is GET + PUT If-Match the first time after a create (a create's answer has no
ETag yet) and one PUT If-Match after the driver's own write or read.
"""

import argparse
import hashlib
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from twisted.internet import defer  # noqa: E402

import shoal.apps.blockstack as driver  # noqa: E402
from shoal.apps.blobmanager import BlobManager  # noqa: E402
from shoal.testing.grid import Grid, wait_for_servers  # noqa: E402
from shoal.testing.processes import set_config, shoal_command  # noqa: E402
from shoal.testing.reactor_thread import call  # noqa: E402

Row = tuple[str, float, str]  # (workload, seconds, note), as bench/blobs.py prints them


def timed(label: str, count: int, size: int, fn, cpu=None) -> Row:  # type: ignore[no-untyped-def]
    """Run fn(0..count-1) one after another; with `cpu` (a (client, storage nodes) CPU
    seconds sampler) the note also gives the CPU milliseconds each op cost."""
    before = cpu() if cpu else None
    t0 = time.perf_counter()
    for i in range(count):
        assert fn(i), f"{label} #{i} failed"
    dt = time.perf_counter() - t0
    note = f"{label}: {count / dt:.1f} ops/s, {dt / count * 1000:.1f} ms/op"
    if before is not None:
        after = cpu()
        note += (f", cpu/op client {(after[0] - before[0]) / count * 1000:.0f} ms"
                 f" + storage {(after[1] - before[1]) / count * 1000:.0f} ms")
    print(f"{count} x {size} B  {note}", flush=True)
    return (f"{count} x {size // 1024 or size} {'KB' if size >= 1024 else 'B'}", dt, note)


def driver_rows(node_url: str, workdir: str, count: int = 40, size: int = 4096,
                cpu=None, settle=None) -> list[Row]:  # type: ignore[no-untyped-def]
    """The driver's put/get rates through the client node at node_url, one call at a time
    (with `cpu`, see timed, also the CPU each op cost; `settle(label)` is called, untimed,
    before the first puts, before the new-id puts and before the overwrites)."""
    ini = os.path.join(workdir, "blockstack-client.ini")
    with open(ini, "w", encoding="utf-8") as f:
        f.write(f"[shoal]\nnode_url = {node_url}\nstate_file = {workdir}/blockstack-driver.json\n")
    assert driver.storage_init({"path": ini})
    blobs = [os.urandom(size) for _ in range(count)]
    hashes = [hashlib.sha256(b).hexdigest() for b in blobs]
    n, s = count, size
    if settle is not None:
        settle("at the start")
    rows = [
        timed("immutable put", n, s, lambda i: driver.put_immutable_handler(hashes[i], blobs[i], "tx"), cpu),
        timed("immutable get", n, s, lambda i: driver.get_immutable_handler(hashes[i]) == blobs[i], cpu),
    ]
    if settle is not None:
        settle("before the new ids")
    rows.append(timed("mutable put, new id", n, s, lambda i: driver.put_mutable_handler(f"id{i}", blobs[i]), cpu))
    if settle is not None:
        settle("after the new ids")
    rows.append(timed("mutable put, overwrite", n, s,
                      lambda i: driver.put_mutable_handler(f"id{i}", blobs[(i + 1) % n]), cpu))
    urls = [driver.make_mutable_url(f"id{i}") for i in range(n)]
    rows.append(timed("mutable get", n, s, lambda i: driver.get_mutable_handler(urls[i]) == blobs[(i + 1) % n],
                      cpu))
    return rows


def start(base: str, storage_nodes: int, happy: str) -> Grid:
    grid = Grid(base)
    grid.start_introducer()
    for i in range(storage_nodes):
        grid.add_storage(f"storage{i + 1}")
    d = os.path.join(base, "client")
    shoal_command("create-client", "--webport", "tcp:0:interface=127.0.0.1", "--introducer",
                  grid.introducer_furl, "--shares-needed", "3", "--shares-happy", happy, "--shares-total", "10", d)
    set_config(d, "blobs", "enabled", "true")
    set_config(d, "blobs", "port", "tcp:0:interface=127.0.0.1")
    set_config(d, "blobs", "quota", "10GB")
    with open(os.path.join(d, "private", "blobs.tokens"), "w", encoding="utf-8") as f:
        f.write("bench:bench-token\n")
    grid.start_client("client")
    wait_for_servers(grid.client_url, storage_nodes)
    return grid


def wait_for_file(path: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def run(fn, *args):  # type: ignore[no-untyped-def]
    return call(lambda: defer.ensureDeferred(fn(*args)))


def blobmanager_rows(blobs_url: str, user: str, token: str, workdir: str, count: int = 1000,
                     size: int = 10 * 1024) -> list[Row]:
    """BlobManager sync of `count` blobs up from one device and down to another, through
    /stream and one request per blob (3 at once)."""
    url = blobs_url.rstrip("/") + "/blobs/"
    secret = os.urandom(512)
    rows: list[Row] = []
    for stream in (True, False):
        label = "/stream" if stream else "per request"
        ns = "bmstream" if stream else "bmsingle"
        up = BlobManager(os.path.join(workdir, f"up-{ns}"), url, None, secret, user, token,
                         use_stream=stream, upload_on_put=False)
        for i in range(count):
            run(up.put, f"blob{i:05d}", os.urandom(size), ns)
        t0 = time.perf_counter()
        progress = run(up.sync, ns)
        dt_up = time.perf_counter() - t0
        assert progress["SYNCED"] == count, progress
        down = BlobManager(os.path.join(workdir, f"down-{ns}"), url, None, secret, user, token,
                           use_stream=stream)
        t0 = time.perf_counter()
        progress = run(down.sync, ns)
        dt_down = time.perf_counter() - t0
        assert progress["SYNCED"] == count, progress
        workload = f"{count} x {size // 1024} KB"
        rows.append((workload, dt_up, f"BlobManager sync up, {label}"))
        rows.append((workload, dt_down, f"BlobManager sync down, {label}"))
        print(rows[-2], rows[-1], flush=True)
        run(up.close)
        run(down.close)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--storage-nodes", type=int, default=5)
    ap.add_argument("--blobs", type=int, default=1000, help="BlobManager blobs (0: skip)")
    ap.add_argument("--blob-size", type=int, default=10 * 1024)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as base:
        grid = start(os.path.join(base, "grid"), args.storage_nodes, str(min(args.storage_nodes, 7)))
        try:
            print(f"{args.storage_nodes} storage nodes, one client node, 3-of-10")
            rows = driver_rows(grid.client_url, base, args.count, args.size)
            if args.blobs:
                assert grid.client is not None
                url = wait_for_file(os.path.join(grid.client.nodedir, "private", "blobs.url"))
                rows += blobmanager_rows(url, "bench", "bench-token", base, args.blobs, args.blob_size)
        finally:
            grid.stop()
    print()
    for workload, seconds, note in rows:
        print(f"{workload:<16} {seconds:>9.2f} s  {note}")


if __name__ == "__main__":
    main()
