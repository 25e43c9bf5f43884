"""Runs a storage scenario against Tahoe-LAFS 1.20's own StorageServer class (no network).

Run with the reference peer's Python (.venv-peer). Reads one JSON request on
stdin: {"storedir", "nodeid" (hex), "time", "ops"}; writes the list of
results as JSON. The same scenario runs against shoal's StorageServer in
test_storage_tahoe_peer.py, so results and files can be compared exactly.
Bytes travel as hex. This file imports Tahoe, never shoal.
"""

import json
import sys

from allmydata.storage.server import StorageServer
from twisted.internet.task import Clock


def unhex(value):
    return bytes.fromhex(value)


def main():
    request = json.loads(sys.stdin.read())
    clock = Clock()
    clock.advance(request["time"])
    server = StorageServer(request["storedir"], unhex(request["nodeid"]), clock=clock)
    writers = {}
    results = []
    for op in request["ops"]:
        try:
            results.append(run(server, clock, writers, op))
        except Exception as error:  # reported, compared by kind only
            results.append({"error": type(error).__name__})
    json.dump(results, sys.stdout)


def run(server, clock, writers, op):
    name, args = op[0], op[1:]
    if name == "advance":
        clock.advance(args[0])
        return None
    if name == "allocate":
        si, renew, cancel, shnums, size = args
        already, allocated = server.allocate_buckets(
            unhex(si), unhex(renew), unhex(cancel), set(shnums), size
        )
        for shnum, writer in allocated.items():
            writers[(si, shnum)] = writer
        return [sorted(already), sorted(allocated)]
    if name == "write":
        si, shnum, offset, data = args
        writers[(si, shnum)].write(offset, unhex(data))
        return None
    if name == "close":
        writers[(args[0], args[1])].close()
        return None
    if name == "abort":
        writers[(args[0], args[1])].abort()
        return None
    if name == "add_lease":
        si, renew, cancel = args
        server.add_lease(unhex(si), unhex(renew), unhex(cancel))
        return None
    if name == "buckets":
        return sorted(server.get_buckets(unhex(args[0])))
    if name == "read":
        si, shnum, offset, length = args
        return server.get_buckets(unhex(si))[shnum].read(offset, length).hex()
    if name == "readv":
        si, shares, vector = args
        answer = server.slot_readv(unhex(si), shares, [tuple(v) for v in vector])
        return {str(k): [d.hex() for d in v] for k, v in sorted(answer.items())}
    if name == "twrite":
        si, secrets, vectors, vector = args
        tw = {
            int(shnum): (
                [(o, n, unhex(op_), unhex(spec)) for o, n, op_, spec in tests],
                [(o, unhex(d)) for o, d in writes],
                new_length,
            )
            for shnum, (tests, writes, new_length) in vectors.items()
        }
        ok, answer = server.slot_testv_and_readv_and_writev(
            unhex(si), tuple(unhex(s) for s in secrets), tw, [tuple(v) for v in vector]
        )
        return [ok, {str(k): [d.hex() for d in v] for k, v in sorted(answer.items())}]
    raise ValueError(f"unknown op {name}")


if __name__ == "__main__":
    main()
