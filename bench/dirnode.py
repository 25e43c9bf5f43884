"""Directory operations: shoal against Tahoe-LAFS 1.20 on the same grid, same run.

One Tahoe grid on 127.0.0.1 (an introducer and N storage nodes, 3-of-10,
happy 7) with two clients: a Tahoe client driven through its web API, and a
shoal client in this process (shoal.dirnode over a storage broker fed by the
same introducer; shoal's web API does not expose directories yet, so shoal's
figures leave out an HTTP round trip of a few milliseconds that Tahoe's include).

For directories of 10, 1,000 and 10,000 entries (SDMF; each entry a CHK file
cap with Tahoe-style link metadata), each client makes its own directory with
the entries in one request (Tahoe: t=mkdir-with-children), then times adding
one child (Tahoe: PUT /uri/$DIRCAP/name?t=uri) and listing (Tahoe: GET
?t=json; shoal: DirectoryNode.list), median of --repeat runs. shoal also lists
Tahoe's directory and must see the same entries. Creation is timed once; shoal's
includes its RSA key generation (pycryptodome, shown apart).

    python bench/dirnode.py [--sizes 10,1000,10000] [--repeat 5] [--storage-nodes 10]

Tahoe comes from .venv-peer (make peer).
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from updown import PEER, TahoeGrid  # noqa: E402  (bench/ is on sys.path when run as a script)

from shoal import cpu  # noqa: E402
from shoal.caps import CHKCap  # noqa: E402
from shoal.crypto import rsa  # noqa: E402
from shoal.testing import reactor_thread  # noqa: E402
from tests.interop.test_dirnode_interop import InProcessClient  # noqa: E402


def children(count: int) -> dict[str, tuple[None, str, dict]]:
    out = {}
    for i in range(count):
        cap = CHKCap(os.urandom(16), os.urandom(32), 3, 10, 1000 + i).to_string()
        t = 1_700_000_000.0 + i
        out[f"file-{i:05d}.dat"] = (None, cap, {"tahoe": {"linkcrtime": t, "linkmotime": t}})
    return out


def web(url: str, method: str, path: str, body: bytes | None = None, **query: str) -> bytes:
    q = ("?" + urllib.parse.urlencode(query)) if query else ""
    req = urllib.request.Request(url.rstrip("/") + path + q, data=body, method=method)
    with urllib.request.urlopen(req, timeout=1800) as r:
        return r.read()


def quoted(cap: str, name: str = "") -> str:
    return "/uri/" + urllib.parse.quote(cap, safe="") + ("/" + urllib.parse.quote(name) if name else "")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_size(count: int, repeat: int, turl: str, shoal: InProcessClient) -> dict[str, float]:
    kids = children(count)
    new_cap = CHKCap(os.urandom(16), os.urandom(32), 3, 10, 4242).to_string()
    out: dict[str, float] = {}

    # Tahoe: its own directory.
    body = json.dumps({n: ["filenode", {"ro_uri": ro, "metadata": md}] for n, (_, ro, md) in kids.items()}).encode()
    t = time.perf_counter()
    tcap = web(turl, "POST", "/uri", body, t="mkdir-with-children").decode()
    out["tahoe create"] = time.perf_counter() - t
    adds = [timed(lambda i=i: web(turl, "PUT", quoted(tcap, f"new-{i}"), new_cap.encode(), t="uri"))
            for i in range(repeat)]
    out["tahoe add"] = statistics.median(adds)
    out["tahoe list"] = statistics.median(timed(lambda: web(turl, "GET", quoted(tcap), t="json"))
                                          for _ in range(repeat))

    # shoal: its own directory.
    t = time.perf_counter()
    key = reactor_thread.call(cpu.run, rsa.generate_private_key)
    out["shoal keygen"] = time.perf_counter() - t
    d = shoal.run(shoal.maker.create_directory, kids, private_key=key)
    out["shoal create"] = time.perf_counter() - t
    adds = [timed(lambda i=i: shoal.run(d.set_child, f"new-{i}", new_cap)) for i in range(repeat)]
    out["shoal add"] = statistics.median(adds)
    out["shoal list"] = statistics.median(timed(lambda: shoal.run(d.list)) for _ in range(repeat))
    out["bytes"] = len(shoal.run(d._data))

    # Cross-check: shoal lists Tahoe's directory and sees every entry Tahoe lists.
    theirs = shoal.run(shoal.maker.node_for(tcap).list)
    _, info = json.loads(web(turl, "GET", quoted(tcap), t="json"))
    assert sorted(theirs) == sorted(info["children"]) and len(theirs) == count + repeat
    for name, (_kind, props) in info["children"].items():
        assert theirs[name].ro_cap == props["ro_uri"] and theirs[name].metadata == props["metadata"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--storage-nodes", type=int, default=10)
    args = ap.parse_args()
    if not (PEER / "tahoe").exists():
        print("tahoe: .venv-peer missing (make peer); this benchmark needs it")
        return 1
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = tempfile.mkdtemp(prefix="shoal-bench-dirnode-")
    grid = shoal = None
    try:
        print(f"starting a Tahoe introducer, {args.storage_nodes} storage nodes and a Tahoe client ...", flush=True)
        grid = TahoeGrid(os.path.join(tmp, "tahoe"), args.storage_nodes)
        furl = (pathlib.Path(tmp) / "tahoe" / "introducer" / "private" / "introducer.furl").read_text().strip()
        shoal = InProcessClient(furl, args.storage_nodes, k=3, happy=7, n=10)
        print(f"{'entries':>8} {'bytes':>10} | {'add: tahoe':>10} {'shoal':>8} {'ratio':>6} | "
              f"{'list: tahoe':>11} {'shoal':>8} {'ratio':>6} | {'create: tahoe':>13} {'shoal':>8} {'(keygen)':>9}")
        for count in sizes:
            r = bench_size(count, args.repeat, grid.client_url, shoal)
            print(f"{count:>8} {int(r['bytes']):>10} | {r['tahoe add'] * 1e3:>8.0f}ms {r['shoal add'] * 1e3:>6.0f}ms "
                  f"{r['tahoe add'] / r['shoal add']:>5.1f}x | {r['tahoe list'] * 1e3:>9.0f}ms "
                  f"{r['shoal list'] * 1e3:>6.0f}ms {r['tahoe list'] / r['shoal list']:>5.1f}x | "
                  f"{r['tahoe create'] * 1e3:>11.0f}ms {r['shoal create'] * 1e3:>6.0f}ms {r['shoal keygen'] * 1e3:>7.0f}ms",
                  flush=True)
        print("(ratio = Tahoe's time / shoal's; medians of", args.repeat, "runs)")
    finally:
        if shoal is not None:
            shoal.close()
        if grid is not None:
            grid.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
