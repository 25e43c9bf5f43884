"""Tahoe-LAFS 1.20's own HTTP storage client (allmydata.storage.http_client) driving a server by NURL.

Run with the reference peer's Python (.venv-peer/bin/python NURL), never
imported by shoal. Reads one JSON request per line on stdin, answers one JSON
line on stdout; bytes travel as base64. Ops: version, create, write, abort,
list, read, lease, advise, rtw, mutable_read, mutable_list. A refusal comes
back as {"ok": true, "result": {"status": <code>}} so tests can check codes.
"""

import base64
import json
import sys

from allmydata.storage.http_client import (
    ClientException,
    ReadVector,
    StorageClientFactory,
    StorageClientGeneral,
    StorageClientImmutables,
    StorageClientMutables,
    TestVector,
    TestWriteVectors,
    WriteVector,
)
from hyperlink import DecodedURL
from twisted.internet import defer, task, threads


def b(s):
    return base64.b64decode(s)


def s(data):
    return base64.b64encode(data).decode()


async def handle(client, req):
    general = StorageClientGeneral(client)
    imm = StorageClientImmutables(client)
    mut = StorageClientMutables(client)
    op = req["op"]
    if op == "version":
        v = await general.get_version()
        inner = v[b"http://allmydata.org/tahoe/protocols/storage/v1"]
        return {"available-space": inner[b"available-space"],
                "application-version": v[b"application-version"].decode()}
    if op == "create":
        result = await imm.create(b(req["si"]), set(req["shares"]), req["size"], b(req["upload"]),
                                  b(req["renew"]), b(req["cancel"]))
        return {"already": sorted(result.already_have), "allocated": sorted(result.allocated)}
    if op == "write":
        progress = await imm.write_share_chunk(b(req["si"]), req["shnum"], b(req["upload"]), req["offset"],
                                               b(req["data"]))
        return {"finished": progress.finished,
                "required": [[r.start, r.stop] for r in progress.required.ranges()]}
    if op == "abort":
        await imm.abort_upload(b(req["si"]), req["shnum"], b(req["upload"]))
        return {}
    if op == "list":
        return {"shares": sorted(await imm.list_shares(b(req["si"])))}
    if op == "read":
        data = await imm.read_share_chunk(b(req["si"]), req["shnum"], req["offset"], req["length"])
        return {"data": s(data)}
    if op == "lease":
        await general.add_or_renew_lease(b(req["si"]), b(req["renew"]), b(req["cancel"]))
        return {}
    if op == "advise":
        api = imm if req["kind"] == "immutable" else mut
        await api.advise_corrupt_share(b(req["si"]), req["shnum"], req["reason"])
        return {}
    if op == "rtw":
        vectors = {
            int(sh): TestWriteVectors(
                test_vectors=[TestVector(t[0], t[1], b(t[2])) for t in v["test"]],
                write_vectors=[WriteVector(w[0], b(w[1])) for w in v["write"]],
                new_length=v.get("new_length"),
            )
            for sh, v in req["tw"].items()
        }
        result = await mut.read_test_write_chunks(
            b(req["si"]), b(req["we"]), b(req["renew"]), b(req["cancel"]), vectors,
            [ReadVector(r[0], r[1]) for r in req.get("read", [])],
        )
        return {"success": result.success,
                "reads": {str(k): [s(x) for x in v] for k, v in result.reads.items()}}
    if op == "mutable_read":
        data = await mut.read_share_chunk(b(req["si"]), req["shnum"], req["offset"], req["length"])
        return {"data": s(data)}
    if op == "mutable_list":
        return {"shares": sorted(await mut.list_shares(b(req["si"])))}
    raise ValueError(f"unknown op {op}")


async def main(reactor, nurl_text):
    factory = StorageClientFactory({"tcp": "tcp"}, None)
    client = await factory.create_storage_client(DecodedURL.from_text(nurl_text), reactor, None)
    while True:
        line = await threads.deferToThread(sys.stdin.readline)
        if not line:
            break
        req = json.loads(line)
        try:
            answer = {"ok": True, "result": await handle(client, req)}
        except ClientException as e:
            answer = {"ok": True, "result": {"status": e.code}}
        except Exception as e:  # noqa: BLE001  reported to the test
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    await client.shutdown()


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, sys.argv[1])))
