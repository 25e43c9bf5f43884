"""Both directions between shoal and a real Tahoe-LAFS 1.20 storage node.

Tahoe -> shoal: a Tahoe node stores real CHK shares (made by shoal's encoder)
and a mutable slot, written by a client using Tahoe's own remote interfaces;
shoal, started on a copy of that node directory, has the same identity and
FURL, serves every share byte for byte (and the file decodes), renews the
existing leases instead of adding new ones, and accepts mutable writes with
the same write enabler. shoal -> Tahoe: the reverse, read by Tahoe's client.
"""

import base64
import os

from shoal.crypto import hashes
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import b2a
from shoal.formats.immutable_container import ImmutableHeader
from shoal.immutable.decoder import FileIdentity
from shoal.immutable.encoder import encode_all
from shoal.immutable.local_decode import decode_segments
from shoal.immutable.params import EncodingParams, FileShape
from shoal.testing.processes import create_storage_node, start_node
from shoal.testing.sync_storage import foolscap_storage
from tests.interop.conftest import PeerClient, TahoeNode, copy_node

B = lambda data: base64.b64encode(data).decode()  # noqa: E731

PLAINTEXT = os.urandom(200_000)
LEASE_SECRET = b"L" * 32


def make_file():
    params = EncodingParams(3, 1, 5, 65536)
    shape = FileShape(len(PLAINTEXT), 3, 5, params.segment_size_for(len(PLAINTEXT)))
    key = convergent_key([PLAINTEXT], b"conv", 3, 5, shape.segment_size)
    shares, result = encode_all(key, shape, [PLAINTEXT])
    return shares, result


def lease_secrets(si: bytes, seed: bytes) -> tuple[bytes, bytes]:
    renew = hashes.bucket_renewal_secret(
        hashes.file_renewal_secret(hashes.client_renewal_secret(LEASE_SECRET), si), seed)
    cancel = hashes.bucket_cancel_secret(
        hashes.file_cancel_secret(hashes.client_cancel_secret(LEASE_SECRET), si), seed)
    return renew, cancel


def lease_count(nodedir, si: bytes, shnum: int) -> int:
    s = b2a(si)
    path = os.path.join(nodedir, "storage", "shares", s[:2], s, str(shnum))
    with open(path, "rb") as f:
        return ImmutableHeader.from_bytes(f.read(12)).lease_count


def decode(result, sources):
    cap = result.cap
    ident = FileIdentity(cap.ueb_hash, cap.needed, cap.total, cap.size, cap.key)
    return b"".join(decode_segments(ident, sources))


def test_tahoe_to_shoal(peer, tmp_path):
    tdir = tmp_path / "tahoe"
    import subprocess

    subprocess.run([str(peer / "tahoe"), "create-node", "--hostname", "127.0.0.1", "--webport", "none",
                    str(tdir)], check=True, capture_output=True)
    shares, result = make_file()
    si = result.storage_index
    tahoe = TahoeNode(peer, tdir)
    seed = base64.b32decode(tahoe.furl.split("@")[0].removeprefix("pb://").upper())
    renew, cancel = lease_secrets(si, seed)
    we = hashes.ssk_write_enabler_hash(b"W" * 16, seed)
    msi = b"m" * 16
    client = PeerClient(peer, tahoe.furl)
    try:
        client(op="put", si=B(si), renew=B(renew), cancel=B(cancel),
               shares={str(i): B(s) for i, s in enumerate(shares)})
        client(op="add_lease", si=B(si), renew=B(b"x" * 32), cancel=B(b"y" * 32))  # a second lease
        r = client(op="slot_write", si=B(msi), secrets=[B(we), B(renew), B(cancel)],
                   tw={"0": {"test": [], "write": [[0, B(b"mutable v1")]]}}, read=[])
        assert r["ok"]
    finally:
        client.close()
        tahoe.stop()
    before = lease_count(tdir, si, 0)
    assert before == 2

    sdir = copy_node(tdir, tmp_path / "shoal")
    node = start_node(str(sdir))
    try:
        assert node.read_private("storage.furl") == tahoe.furl  # same tub id and swissnum
        c = foolscap_storage(node.read_private("storage.furl"))
        readers = c.get_buckets(si)
        assert sorted(readers) == list(range(5))
        for sh, r in readers.items():
            assert r.read(0, len(shares[sh]) + 100) == shares[sh]
        sources = {sh: (f"shoal:{sh}", r.read) for sh, r in readers.items() if sh in (1, 3, 4)}
        assert decode(result, sources) == PLAINTEXT
        c.add_lease(si, renew, cancel)  # same renew secret: renews, no new lease
        assert lease_count(sdir, si, 0) == before
        assert c.slot_readv(msi, [], [(0, 10)]) == {0: [b"mutable v1"]}
        ok, _ = c.slot_testv_and_readv_and_writev(
            msi, (we, renew, cancel), {0: ([(0, 10, b"eq", b"mutable v1")], [(0, b"mutable v2")], None)}, [])
        assert ok
        c.close()
    finally:
        node.stop()


def test_shoal_to_tahoe(peer, tmp_path):
    sdir = tmp_path / "shoal"
    create_storage_node(str(sdir))
    shares, result = make_file()
    si = result.storage_index
    node = start_node(str(sdir))
    furl = node.read_private("storage.furl")
    seed = base64.b32decode(furl.split("@")[0].removeprefix("pb://").upper())
    renew, cancel = lease_secrets(si, seed)
    we = hashes.ssk_write_enabler_hash(b"W" * 16, seed)
    msi = b"n" * 16
    try:
        c = foolscap_storage(furl)
        _, writers = c.allocate_buckets(si, renew, cancel, set(range(5)), len(shares[0]))
        for sh, w in writers.items():
            w.write(0, shares[sh])
            w.close()
        ok, _ = c.slot_testv_and_readv_and_writev(msi, (we, renew, cancel), {2: ([], [(0, b"from shoal")], None)}, [])
        assert ok
        c.close()
    finally:
        node.stop()

    tdir = copy_node(sdir, tmp_path / "tahoe")
    tahoe = TahoeNode(peer, tdir)
    client = PeerClient(peer, tahoe.furl)
    try:
        assert tahoe.furl == furl
        got = client(op="get", si=B(si))["shares"]
        assert {int(k): base64.b64decode(v) for k, v in got.items()} == dict(enumerate(shares))
        data = client(op="slot_read", si=B(msi), read=[[0, 10]])["data"]
        assert base64.b64decode(data["2"][0]) == b"from shoal"
        r = client(op="slot_write", si=B(msi), secrets=[B(we), B(renew), B(cancel)],
                   tw={"2": {"test": [[0, 10, B(b"eq"), B(b"from shoal")]], "write": [[0, B(b"from tahoe")]]}},
                   read=[])
        assert r["ok"]
        client(op="add_lease", si=B(si), renew=B(renew), cancel=B(cancel))
    finally:
        client.close()
        tahoe.stop()
    assert lease_count(tdir, si, 0) == 1  # Tahoe renewed shoal's lease rather than adding one
