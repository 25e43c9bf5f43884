"""The introducer protocol against Tahoe-LAFS 1.20's own code (the reference peer).

Announcements signed by either side verify on the other; a Tahoe
IntroducerClient publishes to and hears from shoal's introducer, and shoal's
IntroducerClient does the same with Tahoe's introducer; Tahoe reads shoal's
announcement cache; both order servers the same way.
"""

import json
import os
import pathlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import b2a
from shoal.introducer.client import FileSequencer, IntroducerClient
from shoal.introducer.files import format_cache
from shoal.introducer.server import IntroducerService
from shoal.placement.permute import permuted_servers, seed_for
from shoal.protocol.announcement import announcement_dict, sign, storage_announcement, unsign
from shoal.testing.wait import wait_until
from tests.unit.introducer.foolscap_harness import Harness, call, quiet_foolscap

SCRIPT = pathlib.Path(__file__).with_name("peer_introducer.py")
FURL = "pb://u33m4y7klhz3bypswqkozwetvabelhxt@tcp:127.0.0.1:9/shoal"


class PeerOps:
    """One peer process answering sign / unsign / load_cache / permute requests."""

    def __init__(self, peer: pathlib.Path) -> None:
        self.proc = subprocess.Popen(
            [str(peer / "python"), str(SCRIPT), "serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def __call__(self, **request: Any) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"peer died: {self.proc.stderr.read() if self.proc.stderr else ''}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(20)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe:
                pipe.close()


@pytest.fixture(scope="module")
def tahoe_ops(peer: pathlib.Path) -> Iterator[PeerOps]:
    ops = PeerOps(peer)
    try:
        yield ops
    finally:
        ops.close()


class PeerGrid:
    """Tahoe's IntroducerClient (and, without a FURL, Tahoe's introducer) in a peer process."""

    def __init__(self, peer: pathlib.Path, seed: bytes, introducer_furl: str | None = None) -> None:
        args = [str(peer / "python"), str(SCRIPT), "grid", seed.hex()]
        if introducer_furl:
            args.append(introducer_furl)
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[dict] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(json.loads(line))

    def wait(self, predicate: Any, timeout: float = 20.0) -> Any:
        def reported() -> Any:
            with self._lock:
                for line in self.lines:
                    if predicate(line):
                        return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"peer exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
            return None

        return wait_until(reported, timeout, f"the peer to report it (saw {self.lines})")

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe:
                pipe.close()


def _shoal_ann(key: SigningKey, seqnum: int = 1) -> dict:
    seed = b2a(key.verifying_key().to_string()[len(b"pub-v0-") :])
    return announcement_dict(
        "storage", storage_announcement(FURL, seed), nickname="shoal\u00e9", my_version="shoal/0.1.0",
        seqnum=seqnum, nonce=b2a(os.urandom(32)),
    )


def test_tahoe_signs_shoal_verifies(tahoe_ops: PeerOps) -> None:
    seed = os.urandom(32)
    ann = {"service-name": "storage", "nickname": "t\u00e9st", "seqnum": 3, "anonymous-storage-FURL": FURL}
    ann_t = tuple(bytes.fromhex(x) for x in tahoe_ops(op="sign", seed=seed.hex(), ann=ann)["ann_t"])
    key = SigningKey.from_seed(seed)
    assert unsign(ann_t) == (ann, key.verifying_key().server_id())
    assert sign(ann, key) == ann_t  # byte for byte


def test_shoal_signs_tahoe_verifies(tahoe_ops: PeerOps) -> None:
    key = SigningKey.generate()
    ann = _shoal_ann(key)
    ann_t = sign(ann, key)
    answer = tahoe_ops(op="unsign", ann_t=[x.hex() for x in ann_t])
    assert answer == {"ann": ann, "key_s": key.verifying_key().server_id().decode()}
    forged = (ann_t[0].replace(b"shoal", b"evil!"), ann_t[1], ann_t[2])
    assert "BadSignature" in tahoe_ops(op="unsign", ann_t=[x.hex() for x in forged])["error"]


def test_tahoe_reads_shoal_cache(tahoe_ops: PeerOps, tmp_path: pathlib.Path) -> None:
    key = SigningKey.generate()
    ann = _shoal_ann(key)
    path = tmp_path / "introducer_default_cache.yaml"
    path.write_bytes(format_cache([(key.verifying_key().server_id(), ann)]))
    delivered = tahoe_ops(op="load_cache", path=str(path))["delivered"]
    assert delivered == [[key.verifying_key().server_id().decode(), ann]]


def test_same_permuted_order(tahoe_ops: PeerOps) -> None:
    servers = []
    for i in range(8):
        key = SigningKey.generate()
        sid = key.verifying_key().server_id()
        ann: dict = {"anonymous-storage-FURL": FURL}
        if i % 3:
            ann["permutation-seed-base32"] = b2a(sid[3:])
        servers.append((sid if i != 7 else b"some-static-name", ann))
    for si in (os.urandom(16), os.urandom(16)):
        want = tahoe_ops(op="permute", si=si.hex(), servers=[[s.decode(), a] for s, a in servers])["order"]
        got = permuted_servers(si, [(s, seed_for(a, s)) for s, a in servers])
        assert [s.decode() for s in got] == want


class Heard:
    def __init__(self) -> None:
        self.anns: dict[bytes, dict] = {}

    def __call__(self, server_id: bytes, ann: dict) -> None:
        self.anns[server_id] = ann


def _shoal_client(h: Harness, furl: str, tmp_path: pathlib.Path, key: SigningKey) -> tuple[IntroducerClient, Heard]:
    ic = IntroducerClient(h.tub(), furl, nickname="shoal", sequencer=FileSequencer(str(tmp_path / "seqnum")),
                          cache_path=str(tmp_path / "cache.yaml"))
    heard = Heard()
    call(ic.subscribe_to, "storage", heard)
    seed = b2a(key.verifying_key().to_string()[len(b"pub-v0-") :])
    call(ic.publish, "storage", storage_announcement(FURL, seed), key)
    h.start(ic)
    return ic, heard


def test_tahoe_client_with_shoal_introducer(peer: pathlib.Path, tmp_path: pathlib.Path) -> None:
    quiet_foolscap()
    h = Harness()
    tahoe = None
    try:
        tub = h.tub()
        intro = IntroducerService()
        h.start(intro)
        furl = call(tub.registerReference, intro)
        tahoe_seed = os.urandom(32)
        tahoe_id = SigningKey.from_seed(tahoe_seed).verifying_key().server_id()
        tahoe = PeerGrid(peer, tahoe_seed, furl)
        key = SigningKey.generate()
        _, heard = _shoal_client(h, furl, tmp_path, key)
        # Tahoe hears shoal's announcement through shoal's introducer...
        line = tahoe.wait(lambda d: d.get("announcement", {}).get("key_s") == key.verifying_key().server_id().decode())
        assert line["announcement"]["ann"]["nickname"] == "shoal"
        # ...and shoal hears Tahoe's, which the introducer verified and holds
        h.wait_for(lambda: tahoe_id in heard.anns, timeout=20, what="Tahoe's announcement")
        assert heard.anns[tahoe_id]["my-version"] == "tahoe-lafs/1.20.0"
        held = {a["server_id"]: a for a in call(intro.status)["announcements"]}
        assert held[tahoe_id.decode()]["nickname"] == "tahoe-peer"
        assert {s["nickname"] for s in call(intro.status)["subscribers"]} == {"shoal", "tahoe-peer"}
    finally:
        if tahoe:
            tahoe.stop()
        h.close()


def test_shoal_client_with_tahoe_introducer(peer: pathlib.Path, tmp_path: pathlib.Path) -> None:
    quiet_foolscap()
    h = Harness()
    tahoe_seed = os.urandom(32)
    tahoe = PeerGrid(peer, tahoe_seed)
    try:
        furl = tahoe.wait(lambda d: "introducer" in d)["introducer"]
        key = SigningKey.generate()
        ic, heard = _shoal_client(h, furl, tmp_path, key)
        tahoe_id = SigningKey.from_seed(tahoe_seed).verifying_key().server_id()
        h.wait_for(lambda: tahoe_id in heard.anns, timeout=20, what="Tahoe's announcement")
        line = tahoe.wait(lambda d: d.get("announcement", {}).get("key_s") == key.verifying_key().server_id().decode())
        assert line["announcement"]["ann"]["seqnum"] == 1
        assert call(ic.status)["connected"] is True
    finally:
        tahoe.stop()
        h.close()
