"""A storage client built from Tahoe-LAFS 1.20's own remote interfaces.

Run with the reference peer's Python (.venv-peer/bin/python), never imported
by shoal. Reads one JSON request per line on stdin, answers one JSON line on
stdout; bytes travel as base64. Ops: version, put (allocate, write, close),
get (every share of a storage index), add_lease, slot_write (test-and-write),
slot_read.
"""

import base64
import json
import sys

from allmydata import interfaces  # noqa: F401  registers Tahoe's RemoteInterfaces
from foolscap.api import Referenceable, Tub
from twisted.internet import defer, task


def b(s):
    return base64.b64decode(s)


def s(data):
    return base64.b64encode(data).decode()


class Canary(Referenceable):
    pass


async def handle(rref, req):
    op = req["op"]
    if op == "version":
        v = await rref.callRemote("get_version")
        inner = v[b"http://allmydata.org/tahoe/protocols/storage/v1"]
        return {"available-space": inner[b"available-space"],
                "application-version": v[b"application-version"].decode(errors="replace")}
    if op == "put":
        shares = {int(k): b(v) for k, v in req["shares"].items()}
        size = max(len(v) for v in shares.values())
        already, writers = await rref.callRemote(
            "allocate_buckets", b(req["si"]), b(req["renew"]), b(req["cancel"]), set(shares), size, Canary()
        )
        for sh, w in writers.items():
            await w.callRemote("write", 0, shares[sh])
            await w.callRemote("close")
        return {"already": sorted(already), "allocated": sorted(writers)}
    if op == "get":
        readers = await rref.callRemote("get_buckets", b(req["si"]))
        out = {}
        for sh, r in readers.items():
            out[str(sh)] = s(await r.callRemote("read", 0, req.get("length", 1 << 30)))
        return {"shares": out}
    if op == "add_lease":
        await rref.callRemote("add_lease", b(req["si"]), b(req["renew"]), b(req["cancel"]))
        return {}
    if op == "slot_write":
        tw = {int(sh): ([tuple([t[0], t[1], b(t[2]), b(t[3])]) for t in v["test"]],
                        [(w[0], b(w[1])) for w in v["write"]], v.get("new_length"))
              for sh, v in req["tw"].items()}
        ok, old = await rref.callRemote("slot_testv_and_readv_and_writev", b(req["si"]),
                                        tuple(b(x) for x in req["secrets"]), tw,
                                        [tuple(r) for r in req.get("read", [])])
        return {"ok": ok, "old": {str(k): [s(x) for x in v] for k, v in old.items()}}
    if op == "slot_read":
        data = await rref.callRemote("slot_readv", b(req["si"]), req.get("shares", []),
                                     [tuple(r) for r in req["read"]])
        return {"data": {str(k): [s(x) for x in v] for k, v in data.items()}}
    raise ValueError(f"unknown op {op}")


async def main(reactor, furl):
    tub = Tub()
    tub.startService()
    rref = await tub.getReference(furl)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = {"ok": True, "result": await handle(rref, json.loads(line))}
        except Exception as e:  # report remote failures to the test
            result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)
    await tub.stopService()


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1])))
