"""The blob service (Soledad's blobs API) and the Blockstack driver, on a real grid.

Soledad's own benchmark (scripts/benchmark/legacy-vs-blobs, i7-4600U laptop,
one server writing to its local disk) measured 1 x 10 MB in 2.2 s and
1000 x 10 KB in 72.5 s through its blobs API with persistent connections.
Here the same two workloads go through shoal's blob service on a grid of
node processes on this machine (an introducer, --storage-nodes storage nodes,
a client node with [blobs] enabled; k-of-n 3-of-5, happy 4 by default), each
timed for the upload and for the download (each user's directories are made
by an untimed one-byte PUT first, as Soledad's figures leave out server setup):

* per request: PUT / GET /blobs/{user}/{id}, over --connections kept-alive
  connections in parallel (Soledad's BlobManager moves 3 blobs at once);
* /stream: POST /stream/{user}?direction=upload|download, --stream-batch
  blobs per request.

* PUT latency as a namespace grows (--scale 100,1000,10000): the namespace is
  filled through /stream with tiny (literal) blobs up to each size, then
  --latency-puts PUTs of 10 KB are timed one after another (median reported);
  the target is the largest size within 1.5x of the smallest.

    python bench/blobs.py [--storage-nodes 5] [--small 1000] [--connections 3] [--scale 100,1000,10000]

Targets (issue #19), printed beside the figures: 1000 x 10 KB one request each
at least 10x faster than Soledad's 72.5 s (<= 7.25 s), through /stream at
least 20x (<= 3.6 s).

Each upload and download phase also prints the CPU seconds the client node and
the storage nodes (summed) used in it: on this shared 2-core machine wall times
swing with the other sessions' load, CPU seconds much less.

Where the time goes (issue #19), figures of one run of int4 b24ebd8 (stop 28), the
machine nearly quiet (load average 1-5), 5 storage nodes, 3-of-5:

* /stream: a request's small blobs (56 B to 64 KiB) go to the grid as packs
  of up to 1 MiB (shoal.apps.blobs.packs), one immutable upload per pack
  instead of one per blob, and the download reads a pack's neighbours with
  one ranged read. 1,000 x 10 KB: upload 0.42 s (173.8x Soledad's 72.5 s),
  download 0.23 s (314.9x); before packs (same stop, machine loaded) 22.1 s
  and 13.0 s, 29.5 CPU-s for the upload.
* One request each, 3 connections: 40.8 s up (1.8x; was 46.7 s quiet at the
  last stop, 60.6 s loaded at the start of this one), 9.1 s down (8.0x).
  CPU per 1,000 PUTs: client 23.2 + storage 25.1 = 48 s, against 75 s at
  the start of this stop (loaded) and 68 s before; what saved it: the
  client's memory of the versions it published (shoal.mutable.own_versions:
  a directory edit is only the test-and-set writes), PUTs that arrive while
  an upload of their namespace is in flight packed together
  (shoal.apps.blobs.putqueue), and a pack's entries linked in one publish.
  What is left is latency, not CPU: each PUT waits for three rounds of
  requests to 5 storage nodes in turn (allocate, write the shares, write
  the directory's shares), each ending in fsyncs (~3 ms a file fsync on
  this disk), and 3 connections never have more than 3 blobs to batch.
  7.25 s needs ~22 ms a round of 3 blobs; acknowledging before the grid
  holds the blob and its entry would get there, but is not what a PUT's
  200 means here.
* Sharding a namespace from its first entry (FLAT_LIMIT 0 or 128) made the
  1,000 PUTs cost 101 CPU-seconds instead of 68 before own versions: ~250
  shard directories made (an RSA key, 42 ms of CPU, and two publishes each)
  and no batching, as the 3 connections' edits go to different shards (see
  shoal.apps.blobs.store).

The Blockstack driver's put/get rates come from `driver_rates` below (the
rows of bench/blockstack.py; its docstring has the figures and where the
time goes); --key-pool sets the client's [client]mutable.key_pool for them.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shoal.apps.blobs import parse_download_stream, upload_body  # noqa: E402
from shoal.testing.grid import Grid  # noqa: E402
from shoal.testing.processes import memory_kib  # noqa: E402
from tests.integration.test_blobs import BlobHTTP, start_blob_client  # noqa: E402

SOLEDAD = {"1 x 10 MB": 2.20, "1000 x 10 KB": 72.5}  # seconds, blobs with persistent connections
SPEEDUP_TARGETS = {"per request": 10, "/stream": 20}  # x faster than Soledad's 72.5 s (issue #19)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds of the client node and of all storage nodes between two calls."""

    def __init__(self, client_pid: int, storage_pids: list[int]) -> None:
        self.client_pid, self.storage_pids = client_pid, storage_pids
        self.mark()

    def now(self) -> tuple[float, float]:
        """CPU seconds used so far: (the client node, the storage nodes summed)."""
        return cpu_seconds(self.client_pid), sum(cpu_seconds(p) for p in self.storage_pids)

    def mark(self) -> None:
        self._start = self.now()

    def since(self) -> str:
        (client0, storage0), (client, storage) = self._start, self.now()
        self._start = (client, storage)
        return f"cpu: client {client - client0:.1f} s, storage nodes {storage - storage0:.1f} s"


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def check(status: int, body: bytes, what: str) -> None:
    if status != 200:
        raise SystemExit(f"{what}: HTTP {status}: {body[:200]!r}")


def per_request(url: str, user: str, blobs: dict[str, bytes], connections: int,
                cpu: "CpuMeter | None" = None) -> tuple[float, float]:
    ids = list(blobs)
    shards = [ids[i::connections] for i in range(connections)]

    def put(shard: list[str]) -> None:
        client = BlobHTTP(url, user, persistent=True)
        for blob_id in shard:
            status, _, body = client.blob("PUT", blob_id, body=blobs[blob_id])
            check(status, body, f"PUT {blob_id}")

    def get(shard: list[str]) -> None:
        client = BlobHTTP(url, user, persistent=True)
        for blob_id in shard:
            status, _, body = client.blob("GET", blob_id)
            check(status, body, f"GET {blob_id}")
            if body != blobs[blob_id]:
                raise SystemExit(f"GET {blob_id}: wrong bytes")

    with ThreadPoolExecutor(connections) as pool:
        up = timed(lambda: list(pool.map(put, shards)))
        if cpu is not None:
            print(f"  upload {cpu.since()}", flush=True)
        down = timed(lambda: list(pool.map(get, shards)))
        if cpu is not None:
            print(f"  download {cpu.since()}", flush=True)
    return up, down


def streamed(url: str, user: str, blobs: dict[str, bytes], batch: int,
             cpu: "CpuMeter | None" = None) -> tuple[float, float]:
    client = BlobHTTP(url, user, persistent=True)
    ids = list(blobs)
    batches = [ids[i:i + batch] for i in range(0, len(ids), batch)]

    def up() -> None:
        for b in batches:
            status, _, body = client.stream("upload", upload_body((i, blobs[i]) for i in b))
            check(status, body, "stream upload")

    def down() -> None:
        for b in batches:
            status, _, body = client.stream("download", json.dumps(b).encode())
            check(status, body, "stream download")
            if [f.data for f in parse_download_stream(body)] != [blobs[i] for i in b]:
                raise SystemExit("stream download: wrong bytes")

    up_s = timed(up)
    if cpu is not None:
        print(f"  upload {cpu.since()}", flush=True)
    down_s = timed(down)
    if cpu is not None:
        print(f"  download {cpu.since()}", flush=True)
    return up_s, down_s


FILL_PARALLEL = 4  # /stream fill requests in flight at once (their shard edits share publishes)
FILL_BATCH = 1000  # tiny blobs per fill request (the service's limit)
FILL_BYTES = 40  # a fill blob's size: at most 55 bytes is a literal cap, so no grid upload


def fill_namespace(url: str, user: str, namespace: str, start: int, stop: int) -> None:
    """Add entries start..stop-1 to a namespace through the real service: /stream uploads
    of FILL_BATCH tiny (literal) blobs, FILL_PARALLEL requests at once. Each costs only
    directory edits, and concurrent requests' edits of one shard go out in one publish."""
    batches = [range(i, min(i + FILL_BATCH, stop)) for i in range(start, stop, FILL_BATCH)]

    def send(batch: range) -> None:
        client = BlobHTTP(url, user)
        tiny = [(f"fill{i:07d}", os.urandom(FILL_BYTES)) for i in batch]
        status, _, body = client.stream("upload", upload_body(tiny), query=f"namespace={namespace}")
        check(status, body, f"fill {batch.start}..{batch.stop}")
        if batch.stop // 10_000 > batch.start // 10_000:
            print(f"  filled {batch.stop} ({time.strftime('%H:%M:%S')})", flush=True)

    with ThreadPoolExecutor(FILL_PARALLEL) as pool:
        list(pool.map(send, batches))


def put_latency_at_scale(url: str, user: str, sizes: list[int], puts: int,
                         cpu: "CpuMeter | None" = None) -> list[tuple[int, float]]:
    """(entries in the namespace, median seconds of one 10 KB PUT) at each size."""
    ns = "scale"
    filled = 0
    out = []
    for size in sorted(sizes):
        if filled < size:
            t = time.perf_counter()
            fill_namespace(url, user, ns, filled, size)
            print(f"filled to {size} entries in {time.perf_counter() - t:.1f} s"
                  + (f" ({cpu.since()})" if cpu else ""), flush=True)
            filled = size
        client = BlobHTTP(url, user, persistent=True)  # a new connection: the fill outlasts its idle timeout
        times = []
        for i in range(puts):
            data = os.urandom(10 * 1000)
            t = time.perf_counter()
            status, _, body = client.blob("PUT", f"probe{size:07d}x{i:03d}", query=f"namespace={ns}", body=data)
            times.append(time.perf_counter() - t)
            check(status, body, "latency PUT")
        filled += puts
        times.sort()
        out.append((size, times[len(times) // 2]))
        print(f"PUT latency at {size} entries: median {out[-1][1] * 1000:.0f} ms of {puts}"
              + (f" ({cpu.since()})" if cpu else ""), flush=True)
    return out


def rebuild_memory(grid: Grid, client_dir: str, user: str, namespace: str, k: int, happy: int, n: int
                   ) -> tuple[float, int, int, int]:
    """A second gateway on an empty disk with the first one's root cap reads `user` back from
    the grid (the first request that needs the index); (seconds, live blobs it counts,
    its RSS before in KiB, its peak RSS after in KiB)."""
    with open(os.path.join(client_dir, "private", "blobs.rootcap"), encoding="ascii") as f:
        root_cap = f.read().strip()
    node, url = start_blob_client(grid, "rebuilder", shares=(k, happy, n), quota="10GiB",
                                  max_objects="1000000", root_cap=root_cap)
    before = memory_kib(node.pid, "VmRSS")
    t = time.perf_counter()
    status, _, body = BlobHTTP(url, user).blob("GET", query=f"namespace={namespace}&only_count=true")
    seconds = time.perf_counter() - t
    check(status, body, "count after a rebuild")
    return seconds, int(json.loads(body)["count"]), before, memory_kib(node.pid, "VmHWM")


# --- Blockstack driver rates ------------------------------------------------------------
# The driver's engineer adds their measurements here: a function taking the running
# grid and the client node's directory, returning rows of (workload, seconds, note).


def wait_for_keys(node_url: str, want: int, label: str = "", cpu: CpuMeter | None = None,
                  timeout: float = 120) -> None:
    """Until the client node holds `want` RSA keys made ahead ([client]mutable.key_pool);
    prints how long that took and (with `cpu`) the client's CPU seconds meanwhile."""
    t = time.perf_counter()
    before = cpu.now()[0] if cpu is not None else None

    def ready() -> int:
        with urllib.request.urlopen(node_url.rstrip("/") + "/statistics?t=json", timeout=10) as r:
            return int(json.loads(r.read())["stats"].get("mutable.keys_ready") or 0)

    while ready() < want:
        if time.perf_counter() - t > timeout:
            raise SystemExit(f"the key pool did not reach {want} keys in {timeout} s")
        time.sleep(0.2)
    spent = f", client cpu {cpu.now()[0] - before:.1f} s" if cpu is not None and before is not None else ""
    print(f"key pool {label}: {want} keys ready after {time.perf_counter() - t:.1f} s more{spent}", flush=True)


def driver_rates(grid: Grid, client_dir: str, cpu: CpuMeter | None = None,
                 blobmanager: bool = True, key_pool: int = 0) -> list[tuple[str, float, str]]:
    """Blockstack driver put/get rates (with `cpu`, the CPU per op too; with `key_pool`,
    the new-id puts start with that many keys ready) and BlobManager sync, from
    bench/blockstack.py."""
    sys.path.insert(0, str(ROOT / "bench"))
    import blockstack as bs

    with open(os.path.join(client_dir, "private", "blobs.tokens"), encoding="utf-8") as f:
        user, _, token = f.readline().strip().partition(":")
    blobs_url = bs.wait_for_file(os.path.join(client_dir, "private", "blobs.url"))
    workdir = tempfile.mkdtemp(prefix="shoal-bench-driver-")
    node_url = bs.wait_for_file(os.path.join(client_dir, "node.url"))
    rows = bs.driver_rows(node_url, workdir, cpu=cpu.now if cpu is not None else None,
                          settle=(lambda label: wait_for_keys(node_url, key_pool, label, cpu)) if key_pool else None)
    return rows + (bs.blobmanager_rows(blobs_url, user, token, workdir) if blobmanager else [])


# -----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage-nodes", type=int, default=5)
    ap.add_argument("--shares", default="3,4,5", help="k,happy,n")
    ap.add_argument("--small", type=int, default=1000, help="how many 10 KB blobs")
    ap.add_argument("--connections", type=int, default=3)
    ap.add_argument("--stream-batch", type=int, default=1000)
    ap.add_argument("--scale", default="100,1000,10000", help="namespace sizes for the PUT latency ('' skips)")
    ap.add_argument("--latency-puts", type=int, default=15)
    ap.add_argument("--no-driver", action="store_true", help="skip the Blockstack driver and BlobManager rows")
    ap.add_argument("--key-pool", type=int, default=0,
                    help="the client's [client]mutable.key_pool, and wait for it to fill before the driver's new ids")
    ap.add_argument("--no-blobmanager", action="store_true", help="of the driver rows, skip BlobManager's")
    ap.add_argument("--no-rebuild", action="store_true", help="skip the rebuild of the scale namespace")
    ap.add_argument("--no-workloads", action="store_true", help="skip Soledad's two workloads")
    args = ap.parse_args()
    scale = [int(x) for x in args.scale.split(",") if x]
    k, happy, n = (int(x) for x in args.shares.split(","))
    base = tempfile.mkdtemp(prefix="shoal-bench-blobs-")
    grid = Grid(base)
    rows: list[tuple[str, str, float, float]] = []
    try:
        grid.start_introducer()
        with ThreadPoolExecutor(args.storage_nodes) as pool:
            list(pool.map(grid.add_storage, [f"storage{i + 1}" for i in range(args.storage_nodes)]))
        pool = {("client", "mutable.key_pool"): str(args.key_pool)} if args.key_pool else {}
        client, url = start_blob_client(grid, "client", shares=(k, happy, n), config=pool,
                                        quota="10GiB", max_objects=str(max([*scale, 0]) + 10_000))
        for user in ("alice", "bob", "streamer", "quota"):  # the root, user and namespace directories
            status, _, body = BlobHTTP(url, user).blob("PUT", "warm-up", body=b"w")  # (and their RSA keys)
            check(status, body, "warm-up PUT")
        small_name = f"{args.small} x 10 KB"
        cpu = CpuMeter(client.pid, [s.pid for s in grid.storage])
        print(f"grid: {args.storage_nodes} storage nodes, {k}-of-{n} happy {happy}; blob service {url}", flush=True)
        # fresh random bytes for every run: identical bytes would be deduplicated by
        # convergent encryption (the second upload finds its shares already there)
        workloads = not args.no_workloads
        for name, count, size, user in (("1 x 10 MB", 1, 10 * 1000 * 1000, "alice"),
                                        (small_name, args.small, 10 * 1000, "bob"))[:2 * workloads]:
            blobs = {f"blob{i:05d}": os.urandom(size) for i in range(count)}
            conns = min(args.connections, count)
            up, down = per_request(url, user, blobs, conns, cpu)
            rows.append((name, f"per request ({conns} conn)", up, down))
            print(rows[-1], flush=True)
        for name, count, size, user in (("1 x 10 MB", 1, 10 * 1000 * 1000, "streamer"),
                                        (small_name, args.small, 10 * 1000, "quota"))[:2 * workloads]:
            blobs = {f"blob{i:05d}": os.urandom(size) for i in range(count)}
            up, down = streamed(url, user, blobs, args.stream_batch, cpu)
            rows.append((name, f"/stream ({min(args.stream_batch, len(blobs))} per request)", up, down))
            print(rows[-1], flush=True)
        latency = put_latency_at_scale(url, "alice", scale, args.latency_puts, cpu) if scale else []
        rebuild = None
        if scale and not args.no_rebuild:
            rebuild = rebuild_memory(grid, client.nodedir, "alice", "scale", k, happy, n)
        driver = [] if args.no_driver else driver_rates(grid, client.nodedir, cpu, not args.no_blobmanager, args.key_pool)
    finally:
        grid.stop()
    print()
    print(f"{'workload':<16} {'path':<28} {'upload s':>9} {'download s':>11} {'Soledad (blobs) s':>18}")
    for name, path, up, down in rows:
        ref = SOLEDAD.get(name)
        print(f"{name:<16} {path:<28} {up:>9.2f} {down:>11.2f} {ref if ref is not None else '':>18}")
    for name, path, up, down in rows:
        ref = SOLEDAD.get(name)
        for kind, want in SPEEDUP_TARGETS.items():
            if ref is not None and name.startswith("1000 x") and path.startswith(kind):
                print(f"target {name} {kind}: >= {want}x faster than Soledad's {ref} s: upload {ref / up:.1f}x,"
                      f" download {ref / down:.1f}x -> {'met' if min(ref / up, ref / down) >= want else 'NOT met'}")
    if latency:
        base = latency[0][1]
        for size, seconds in latency:
            print(f"PUT latency at {size:>7} entries: {seconds * 1000:7.0f} ms ({seconds / base:.2f}x of {latency[0][0]})")
        worst = max(seconds for _, seconds in latency) / base
        print(f"target: latency at {latency[-1][0]} within 1.5x of {latency[0][0]}:"
              f" {worst:.2f}x -> {'met' if worst <= 1.5 else 'NOT met'}")
    if rebuild is not None:
        seconds, count, before, peak = rebuild
        print(f"rebuild on an empty disk: {count} live blobs of alice/scale in {seconds:.1f} s;"
              f" gateway RSS {before / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB")
    for workload, seconds, note in driver:
        print(f"{workload:<16} {'driver':<28} {seconds:>9.2f} {'':>11} {note}")


if __name__ == "__main__":
    main()
