"""A storage workload that runs until it is killed; test_storage_crash.py SIGKILLs it.

Usage: python crash_writer.py STORAGE_DIR SEED. Prints "ready" once the
server is up, then loops: upload three immutable shares in 4 KiB writes and
close them, add a lease (a container rewrite), write a new version of a
two-share mutable slot in one call (grow or shrink), run a crawler slice.
Every byte is a function of the storage index (immutable) or of the version
number stored in the first 8 bytes (mutable), so a checker can tell a whole
share from a partial one.
"""

import hashlib
import sys

from shoal.storage import StorageServer

NODEID = b"\x07" * 20
SLOT = b"\x5a" * 16
SLOT_SECRETS = (b"w" * 32, b"r" * 32, b"c" * 32)
CHUNK = 4096


def expand(seed: bytes, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def immutable_data(storage_index: bytes) -> bytes:
    return expand(storage_index, 5_000 + storage_index[0] * 100)


def mutable_data(version: int) -> bytes:
    size = 2_000 + (version * 7919) % 30_000
    return version.to_bytes(8, "big") + expand(b"v%d" % version, size)


def main() -> None:
    storage_dir, seed = sys.argv[1], sys.argv[2].encode()
    server = StorageServer(storage_dir, NODEID)
    print("ready", flush=True)
    n = 0
    while True:
        si = hashlib.sha256(b"imm" + seed + b"-%d" % n).digest()[:16]
        data = immutable_data(si)
        _, writers = server.allocate_buckets(si, b"R" * 32, b"C" * 32, {0, 1, 2}, len(data))
        for offset in range(0, len(data), CHUNK):
            for writer in writers.values():
                writer.write(offset, data[offset : offset + CHUNK])
        for writer in writers.values():
            writer.close()
        server.add_lease(si, b"S" * 32, b"D" * 32)
        current = server.slot_readv(SLOT, [0], [(0, 8)]).get(0, [b""])[0]
        version = int.from_bytes(current, "big") + 1 if current else 1
        new = mutable_data(version)
        vectors = {shnum: ([], [(0, new)], len(new)) for shnum in (0, 1)}
        server.slot_testv_and_readv_and_writev(SLOT, SLOT_SECRETS, vectors, [])
        server.crawler.run_slice(0.005)
        n += 1


if __name__ == "__main__":
    main()
