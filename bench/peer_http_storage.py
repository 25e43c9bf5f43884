"""Tahoe-LAFS 1.20's HTTP storage client timing one storage server (run by bench/http_storage.py).

Run with the reference peer's Python: .venv-peer/bin/python bench/peer_http_storage.py NURL SHARES MIB CALLS
Prints one JSON line: seconds for the immutable writes (1 MiB PATCH chunks,
sequential as Tahoe's uploader sends them per share), the reads (1 MiB range
reads) and CALLS mutable read-test-write calls (1 KiB writes).
"""

import json
import os
import sys
import time

from allmydata.storage.http_client import (
    StorageClientFactory,
    StorageClientImmutables,
    StorageClientMutables,
    TestWriteVectors,
    WriteVector,
)
from hyperlink import DecodedURL
from twisted.internet import defer, task

MiB = 1024 * 1024


async def main(reactor, nurl, shares, mib, calls):
    client = await StorageClientFactory({"tcp": "tcp"}, None).create_storage_client(
        DecodedURL.from_text(nurl), reactor, None
    )
    imm, mut = StorageClientImmutables(client), StorageClientMutables(client)
    chunk, size = os.urandom(MiB), mib * MiB
    secret = os.urandom(32)
    t = time.perf_counter()
    for i in range(shares):
        si = i.to_bytes(16, "big")
        await imm.create(si, {0}, size, secret, secret, secret)
        for offset in range(0, size, MiB):
            await imm.write_share_chunk(si, 0, secret, offset, chunk)
    write = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(shares):
        si = i.to_bytes(16, "big")
        for offset in range(0, size, MiB):
            assert len(await imm.read_share_chunk(si, 0, offset, MiB)) == MiB
    read = time.perf_counter() - t
    slot = b"\xff" * 16
    t = time.perf_counter()
    for i in range(calls):
        await mut.read_test_write_chunks(
            slot, secret, secret, secret,
            {0: TestWriteVectors(write_vectors=[WriteVector((i % 64) * 1024, os.urandom(1024))])}, [],
        )
    mutable = time.perf_counter() - t
    await client.shutdown()
    print(json.dumps({"write": write, "read": read, "mutable": mutable}))


if __name__ == "__main__":
    nurl, shares, mib, calls = sys.argv[1], *map(int, sys.argv[2:5])
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, nurl, shares, mib, calls)))
