"""Tahoe-LAFS 1.20's own introducer code, driven for shoal's interop tests.

Run with the reference peer's Python (.venv-peer/bin/python); never imported
by shoal. Bytes travel as hex.

  peer_introducer.py serve        one JSON request per line on stdin, one JSON answer per line:
      {"op": "sign", "seed": hex32, "ann": {...}}           -> {"ann_t": [hex, hex, hex]}
      {"op": "unsign", "ann_t": [hex, hex, hex]}            -> {"ann": {...}, "key_s": str} or {"error": str}
      {"op": "load_cache", "path": str}                     -> {"delivered": [[key_s, ann], ...]}
      {"op": "permute", "si": hex, "servers": [[id, ann]]}  -> {"order": [id, ...]}
  peer_introducer.py grid SEED_HEX [INTRODUCER_FURL]
      Without a FURL, first runs Tahoe's IntroducerService and prints {"introducer": furl}.
      Then a Tahoe IntroducerClient connects to the introducer, publishes a storage
      announcement signed by the key from SEED_HEX, subscribes to "storage" and prints
      {"announcement": {"key_s": ..., "ann": ...}} for each one it receives.
      Runs until stdin is closed.
"""

import json
import os
import sys
import tempfile
import threading

from allmydata.crypto import ed25519
from allmydata.introducer.client import IntroducerClient
from allmydata.introducer.common import sign_to_foolscap, unsign_from_foolscap
from allmydata.introducer.server import IntroducerService
from allmydata.storage_client import _parse_announcement
from allmydata.util import base32
from allmydata.util.hashutil import permute_server_hash
from foolscap.api import Tub
from twisted.python.filepath import FilePath


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def key_from_seed(seed_hex):
    sk, vk = ed25519.signing_keypair_from_string(b"priv-v0-" + base32.b2a(bytes.fromhex(seed_hex)))
    return sk, vk


def oneshot(req):
    op = req["op"]
    if op == "sign":
        sk, _ = key_from_seed(req["seed"])
        return {"ann_t": [x.hex() for x in sign_to_foolscap(req["ann"], sk)]}
    if op == "unsign":
        try:
            ann, key_s = unsign_from_foolscap(tuple(bytes.fromhex(x) for x in req["ann_t"]))
        except Exception as e:
            return {"error": "%s: %s" % (type(e).__name__, e)}
        return {"ann": ann, "key_s": key_s.decode()}
    if op == "load_cache":
        ic = IntroducerClient(None, "pb://x@tcp:127.0.0.1:1/y", "n", "v", "1", None, FilePath(req["path"]))
        delivered = []
        ic.subscribe_to("storage", lambda key_s, ann: delivered.append([key_s.decode(), ann]))
        ic._load_announcements()
        return {"delivered": delivered}
    if op == "permute":
        si = bytes.fromhex(req["si"])
        servers = [(sid.encode(), ann) for sid, ann in req["servers"]]

        def key(item):
            sid, ann = item
            seed = _parse_announcement(sid, ann["anonymous-storage-FURL"].encode(), ann)[1]
            return permute_server_hash(si, seed)

        return {"order": [sid.decode() for sid, _ in sorted(servers, key=key)]}
    raise ValueError(op)


def grid(seed_hex, introducer_furl):
    from twisted.internet import reactor

    tmp = tempfile.mkdtemp()
    tub = Tub()
    listener = tub.listenOn("tcp:0:interface=127.0.0.1")
    tub.startService()
    tub.setLocation("tcp:127.0.0.1:%d" % listener.getPortnum())
    if introducer_furl is None:
        introducer_furl = tub.registerReference(IntroducerService())
        emit({"introducer": introducer_furl})
    counter = [0]

    def sequencer():
        counter[0] += 1
        return counter[0], base32.b2a(os.urandom(32))

    ic = IntroducerClient(tub, introducer_furl, "tahoe-peer", "tahoe-lafs/1.20.0", "1.0.0",
                          sequencer, FilePath(os.path.join(tmp, "cache.yaml")))
    ic.subscribe_to("storage", lambda key_s, ann: emit({"announcement": {"key_s": key_s.decode(), "ann": ann}}))
    sk, vk = key_from_seed(seed_hex)
    vk_text = ed25519.string_from_verifying_key(vk)[len(b"pub-v0-"):]
    ann = {
        "permutation-seed-base32": base32.b2a(vk_text).decode(),
        "anonymous-storage-FURL": "pb://u33m4y7klhz3bypswqkozwetvabelhxt@tcp:127.0.0.1:9/tahoe",
    }
    ic.setServiceParent(tub)
    ic.publish("storage", ann, sk)

    def wait_for_eof():
        sys.stdin.read()
        reactor.callFromThread(reactor.stop)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    reactor.run()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        for line in sys.stdin:
            emit(oneshot(json.loads(line)))
    else:
        grid(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
