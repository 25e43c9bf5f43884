"""Storage node throughput over real Foolscap on loopback.

Starts one real storage node process, connects one client Tub, and measures:
immutable shares written per second and MB/s (allocate, 1 MiB writes, close),
shares read per second and MB/s (get_buckets, 1 MiB reads), and mutable
test-and-write calls per second (one share, 1 KiB writes, eq test).

    python bench/storage.py [--shares 64] [--share-mib 4] [--mutable-calls 500]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from foolscap.api import Referenceable, Tub
from twisted.internet import defer, task

from shoal.testing.processes import create_storage_node, start_node

MiB = 1024 * 1024


class Canary(Referenceable):
    pass


async def bench(reactor, args) -> None:
    tmp = tempfile.mkdtemp(prefix="shoal-bench-storage-")
    node = None
    try:
        nodedir = os.path.join(tmp, "node")
        create_storage_node(nodedir)
        node = start_node(nodedir)
        tub = Tub()
        tub.startService()
        rref = await tub.getReference(node.read_private("storage.furl"))
        canary = Canary()
        chunk = os.urandom(MiB)
        size = args.share_mib * MiB
        renew, cancel = os.urandom(32), os.urandom(32)

        t = time.perf_counter()
        for i in range(args.shares):
            si = i.to_bytes(16, "big")
            _, writers = await rref.callRemote("allocate_buckets", si, renew, cancel, {0}, size, canary)
            w = writers[0]
            await defer.gatherResults(
                [w.callRemote("write", off, chunk) for off in range(0, size, MiB)]
            )
            await w.callRemote("close")
        dt = time.perf_counter() - t
        total = args.shares * size
        print(f"immutable write: {args.shares / dt:7.1f} shares/s, {total / dt / 1e6:7.1f} MB/s "
              f"({args.shares} shares of {args.share_mib} MiB, 1 MiB writes pipelined per share)")

        t = time.perf_counter()
        for i in range(args.shares):
            readers = await rref.callRemote("get_buckets", i.to_bytes(16, "big"))
            r = readers[0]
            parts = await defer.gatherResults([r.callRemote("read", off, MiB) for off in range(0, size, MiB)])
            assert sum(len(p) for p in parts) == size
        dt = time.perf_counter() - t
        print(f"immutable read:  {args.shares / dt:7.1f} shares/s, {total / dt / 1e6:7.1f} MB/s")

        we = os.urandom(32)
        si = b"M" * 16
        secrets = (we, renew, cancel)
        data = os.urandom(1024)
        ok, _ = await rref.callRemote("slot_testv_and_readv_and_writev", si, secrets,
                                      {0: ([], [(0, data)], None)}, [])
        assert ok
        t = time.perf_counter()
        current = data
        for i in range(args.mutable_calls):
            new = i.to_bytes(4, "big") + data[4:]
            ok, _ = await rref.callRemote("slot_testv_and_readv_and_writev", si, secrets,
                                          {0: ([(0, len(current), b"eq", current)], [(0, new)], None)}, [])
            assert ok
            current = new
        dt = time.perf_counter() - t
        print(f"mutable test-and-write: {args.mutable_calls / dt:7.1f} calls/s (1 KiB share, eq test, atomic)")
        await tub.stopService()
    finally:
        if node is not None:
            node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shares", type=int, default=64)
    ap.add_argument("--share-mib", type=int, default=4)
    ap.add_argument("--mutable-calls", type=int, default=500)
    args = ap.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(bench(reactor, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
