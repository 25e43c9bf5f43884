"""Mutable share bytes against Tahoe-LAFS 1.20's own code, without a network.

A subprocess runs the reference peer's Python (.venv-peer): Tahoe's own
NodeMaker, Publish, Retrieve and MDMF update code over ten in-memory slot
servers (a small stand-in for the storage protocol, test vectors honoured).

* Tahoe -> shoal: Tahoe creates SDMF/MDMF files (and modifies them in place);
  shoal's pure core checks every share (fingerprint, signature, share hash
  chain, block hash tree) and decodes the plaintext.
* shoal -> Tahoe: shoal encodes shares; Tahoe's Retrieve reads them, then
  Tahoe overwrites / updates at an offset, and shoal reads Tahoe's result.
"""

import base64
import json
import random
import subprocess
import tempfile

import pytest

from shoal.caps import mutable_caps_from_private_key, parse_cap
from shoal.crypto import rsa
from shoal.formats.mutable_share import MDMF_VERSION, SDMF_VERSION, apply_writes, unpack_share
from shoal.mutable.encoder import WriteKeys, encode_version
from tests.interop.conftest import PEER, peer  # noqa: F401  (the fixture)
from tests.unit.mutable.share_reader import read_shares
from tests.unit.mutable.vector_keys import vector_key

K, N = 3, 10

PEER_SCRIPT = r'''
import base64, json, sys
from twisted.internet import defer, reactor, task, threads
from allmydata.client import KeyGenerator, SecretHolder
from allmydata.crypto import rsa
from allmydata.interfaces import MDMF_VERSION, SDMF_VERSION
from allmydata.mutable.publish import MutableData
from allmydata.node import config_from_string
from allmydata.nodemaker import NodeMaker
from allmydata.storage_client import StorageFarmBroker
from allmydata.util import base32
from allmydata.util.hashutil import tagged_hash


class MemorySlots:
    # an in-memory storage server's slot API (one storage index), test vectors honoured
    def __init__(self):
        self.shares = {}

    def callRemote(self, method, *args):
        return task.deferLater(reactor, 0, getattr(self, method), *args)

    def slot_readv(self, si, shnums, readv):
        return {sh: [d[o:o + n] for o, n in readv] for sh, d in self.shares.items()
                if not shnums or sh in shnums}

    def slot_testv_and_readv_and_writev(self, si, secrets, tw, readv):
        before = self.slot_readv(si, [], readv)
        for sh, (tests, _, _) in tw.items():
            cur = self.shares.get(sh, b"")
            if any(op != b"eq" or cur[o:o + n] != want for o, n, op, want in tests):
                return (False, before)
        for sh, (_, writes, new_length) in tw.items():
            buf = bytearray(self.shares.get(sh, b""))
            for o, data in writes:
                buf.extend(b"\0" * max(0, o - len(buf)))
                buf[o:o + len(data)] = data
            if new_length is not None:
                del buf[new_length:]
            self.shares[sh] = bytes(buf)
        return (True, before)

    def advise_corrupt_share(self, *args):
        return None


def grid(n=10):
    broker = StorageFarmBroker(True, None, config_from_string("/dev/null", "tub.port", ""))
    servers = []
    for i in range(n):
        sid = base32.b2a(tagged_hash(b"shoal-test-server", b"%d" % i)[:20])
        slots = MemorySlots()
        ann = {"anonymous-storage-FURL": "pb://%s@127.0.0.1:1/x" % sid.decode(),
               "permutation-seed-base32": sid}
        broker.test_add_rref(sid, slots, ann)
        servers.append(slots)
    nm = NodeMaker(broker, SecretHolder(b"lease secret", b"convergence secret"), None, None, None,
                   {"k": 3, "n": n}, SDMF_VERSION, KeyGenerator())
    return nm, servers


async def main(req):
    nm, servers = grid()
    version = MDMF_VERSION if req["format"] == "MDMF" else SDMF_VERSION
    if req["op"] == "create":
        priv, pub = rsa.create_signing_keypair_from_string(base64.b64decode(req["key"]))
        node = await nm.create_mutable_file(MutableData(base64.b64decode(req["data"])), version=version,
                                            keypair=(pub, priv))
        cap = node.get_uri().decode()
    else:
        for i, (shnum, data) in enumerate(sorted(req["shares"].items(), key=lambda t: int(t[0]))):
            servers[i % len(servers)].shares[int(shnum)] = base64.b64decode(data)
        cap = req["cap"]
        node = nm.create_from_cap(cap.encode())
    steps = [{"read": base64.b64encode(await node.download_best_version()).decode()}]
    for op in req.get("then", []):
        if op["op"] == "overwrite":
            await node.overwrite(MutableData(base64.b64decode(op["data"])))
        else:
            v = await node.get_best_mutable_version()
            await v.update(MutableData(base64.b64decode(op["data"])), op["offset"])
        steps.append({"read": base64.b64encode(await node.download_best_version()).decode()})
    shares = {}
    for s in servers:
        for shnum, data in s.shares.items():
            shares.setdefault(str(shnum), base64.b64encode(data).decode())
    return {"cap": cap, "steps": steps, "shares": shares}


async def serve():
    # one JSON request a line on stdin, one JSON answer a line on stdout; ends at EOF
    while True:
        line = await threads.deferToThread(sys.stdin.readline)
        if not line:
            return
        try:
            answer = {"ok": True, "result": await main(json.loads(line))}
        except Exception as e:
            answer = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


task.react(lambda reactor: defer.ensureDeferred(serve()))
'''


@pytest.fixture(scope="module")
def tahoe(peer):  # noqa: F811  (the imported fixture)
    """Ask the peer process (started once) to run one request."""
    errors = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [str(PEER / "python"), "-c", PEER_SCRIPT],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
    )
    assert proc.stdin and proc.stdout

    def call(**request):
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            errors.seek(0)
            pytest.fail(f"the peer died: {errors.read()[-3000:]}")
        answer = json.loads(line)
        assert answer["ok"], answer["error"]
        return answer["result"]

    try:
        yield call
    finally:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        errors.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def shoal_read(shares: dict[str, str], cap_text: str) -> bytes:
    """Check every share with shoal's core (all must pass), and decode from the last k."""
    cap = parse_cap(cap_text)
    return read_shares(
        {int(sh): base64.b64decode(text) for sh, text in shares.items()}, cap.fingerprint, cap.readkey,
        writekey=getattr(cap, "writekey", None), strict=True, last=True,
    )


CASES = [("SDMF", 0), ("SDMF", 1), ("SDMF", 5000), ("MDMF", 0), ("MDMF", 7), ("MDMF", 300_000)]


@pytest.mark.parametrize("fmt,size", CASES)
def test_tahoe_shares_read_by_shoal(tahoe, fmt, size):
    _, key, _ = vector_key(4 if fmt == "SDMF" else 5)
    data = random.Random(size).randbytes(size)
    then = [{"op": "overwrite", "data": b64(data + b"!")}]
    if fmt == "MDMF":
        then.append({"op": "update", "offset": size // 2, "data": b64(b"in the middle")})
    got = tahoe(op="create", format=fmt, key=b64(rsa.private_key_to_der(key)), data=b64(data), then=then)
    assert got["cap"] == mutable_caps_from_private_key(key, fmt == "MDMF")[0].to_string()
    expected = data + b"!"
    if fmt == "MDMF":
        expected = expected[: size // 2] + b"in the middle" + expected[size // 2 + 13:]
    assert base64.b64decode(got["steps"][-1]["read"]) == expected
    assert len(got["shares"]) == N
    assert shoal_read(got["shares"], got["cap"]) == expected


@pytest.mark.parametrize("fmt,size", CASES)
def test_shoal_shares_read_and_modified_by_tahoe(tahoe, fmt, size):
    _, key, _ = vector_key(6 if fmt == "SDMF" else 7)
    keys = WriteKeys.from_private_key(key)
    cap = mutable_caps_from_private_key(key, fmt == "MDMF")[0].to_string()
    data = random.Random(size + 1).randbytes(size)
    version = MDMF_VERSION if fmt == "MDMF" else SDMF_VERSION
    encoded = encode_version(data, version=version, seqnum=4, k=K, n=N, keys=keys)
    shares = {str(sh): b64(apply_writes(encoded.share_writes(sh, keys))) for sh in range(N)}
    # (Tahoe 1.20 cannot update an empty MDMF file in place, even its own: overwrite those)
    grow = fmt == "MDMF" and size > 0
    then = [{"op": "update", "offset": size, "data": b64(b"tahoe grew it")}] if grow else [
        {"op": "overwrite", "data": b64(data[::-1] + b"tahoe")}
    ]
    got = tahoe(op="read", format=fmt, cap=cap, shares=shares, then=then)
    assert base64.b64decode(got["steps"][0]["read"]) == data  # Tahoe's Retrieve reads shoal's shares
    expected = data + b"tahoe grew it" if grow else data[::-1] + b"tahoe"
    assert base64.b64decode(got["steps"][1]["read"]) == expected
    assert shoal_read(got["shares"], cap) == expected  # and shoal reads Tahoe's new version
    assert {unpack_share(base64.b64decode(s)).prefix.seqnum for s in got["shares"].values()} == {5}
