"""Mutable shares checked by the server against their own signature and hashes
(storage.integrity.check_mutable_share), and quarantined when advised or scrubbed.

Shares are SDMF and MDMF versions made by shoal.mutable's encoder, which writes
Tahoe-LAFS 1.20's share format."""

import base64
import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.crypto import rsa
from shoal.formats.mutable_share import MDMF_VERSION, SDMF_VERSION, apply_writes, unpack_header
from shoal.mutable.encoder import WriteKeys, encode_version
from shoal.storage.integrity import ShareDamage, check_mutable_share
from shoal.storage.quarantine import ABSENT, GOOD, UNCHECKED
from tests.conftest import VECTORS

K, N = 3, 10


def _keys() -> WriteKeys:
    doc = json.loads((VECTORS / "tahoe-1.20.json").read_text())
    der = base64.urlsafe_b64decode(doc["mutable"][0]["private_key_der_b64url"] + "==")
    return WriteKeys.from_private_key(rsa.private_key_from_der(der))


KEYS = _keys()


def shares(contents: bytes, version: int, max_segment_size: int = 3_000) -> list[bytes]:
    encoded = encode_version(contents, version=version, seqnum=3, k=K, n=N, keys=KEYS,
                             max_segment_size=max_segment_size)
    return [apply_writes(encoded.share_writes(sh, KEYS)) for sh in range(N)]


SDMF = shares(b"sdmf contents " * 300, SDMF_VERSION)
MDMF = shares(b"mdmf contents " * 1000, MDMF_VERSION)  # 14000 bytes: 5 segments of 3000


@pytest.mark.parametrize("contents", [b"", b"x", b"y" * 10_000])
@pytest.mark.parametrize("version", [SDMF_VERSION, MDMF_VERSION])
def test_good_shares_pass(contents, version):
    for shnum, data in enumerate(shares(contents, version)):
        check_mutable_share(data, shnum)


def regions(data: bytes) -> list[tuple[int, int]]:
    """Every part of a share a flipped byte must be caught in (not the encrypted private key)."""
    prefix, o = unpack_header(data)
    out = [(0, 75 if prefix.version == SDMF_VERSION else 59)]  # signed prefix
    for name in ("verification_key", "signature", "share_hash_chain", "block_hash_tree", "share_data"):
        start, length = o.span(name)
        if name == "share_data" and prefix.version == MDMF_VERSION:
            length = o.block_hash_tree - o.share_data
        out.append((start, start + length))
    return out


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_any_flipped_byte_is_damage(data):
    version = data.draw(st.sampled_from([SDMF, MDMF]))
    shnum = data.draw(st.integers(0, N - 1))
    share = version[shnum]
    start, end = data.draw(st.sampled_from(regions(share)))
    offset = data.draw(st.integers(start, end - 1))
    damaged = bytearray(share)
    damaged[offset] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ShareDamage):
        check_mutable_share(bytes(damaged), shnum)


def test_a_share_under_another_number_is_damage():
    with pytest.raises(ShareDamage, match="share hash chain"):
        check_mutable_share(MDMF[2], 3)


def test_advised_and_scrubbed_mutable_shares(server):
    si = bytes(range(16))
    secrets = (b"w" * 32, b"r" * 32, b"c" * 32)
    vectors = {sh: ([], [(0, data)], None) for sh, data in enumerate(MDMF)}
    assert server.slot_testv_and_readv_and_writev(si, secrets, vectors, [])[0]
    server.advise_corrupt_share(b"mutable", si, 1, b"bad block (it is not)")
    assert server.quarantine.check(si, 1, "test").outcome == GOOD
    path = server.layout.share_path(si, 4)
    with open(path, "r+b") as handle:  # a byte of the first block, inside the container
        handle.seek(468 + 2167 + 16 + 5)
        byte = handle.read(1)[0]
        handle.seek(468 + 2167 + 16 + 5)
        handle.write(bytes([byte ^ 1]))
    server.advise_corrupt_share(b"mutable", si, 4, b"block 0 of share 4")
    assert sorted(server.slot_readv(si, [], [(0, 1)])) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    # share 4 can be written again
    assert server.slot_testv_and_readv_and_writev(si, secrets, {4: ([], [(0, MDMF[4])], None)}, [])[0]
    # the scrubber checks mutable shares too
    with open(server.layout.share_path(si, 7), "r+b") as handle:
        handle.seek(468 + 30)  # inside the signed root hash
        byte = handle.read(1)[0]
        handle.seek(468 + 30)
        handle.write(bytes([byte ^ 1]))
    while server.scrubber.run_slice(60.0):
        pass
    record = server.scrubber.status()["history"]["0"]
    assert record["shares-quarantined"] == 1 and record["shares-good"] == 9
    assert server.quarantine.check(si, 7, "test").outcome == ABSENT
    assert 7 not in server.slot_readv(si, [], [(0, 1)])


def test_slot_bytes_that_are_no_share_are_never_quarantined(server):
    """Slot data is the client's: opaque bytes, or a share whose writer sends it in
    several calls (here: its tail first, the gap zero-filled), is left in service."""
    secrets = (b"w" * 32, b"r" * 32, b"c" * 32)
    opaque, in_progress = bytes(range(1, 17)), bytes([15] * 16)
    half = len(MDMF[2]) // 2
    assert server.slot_testv_and_readv_and_writev(opaque, secrets, {
        0: ([], [(0, b"\x00opaque client bytes")], None),
        1: ([], [(0, b"\x01" + bytes(200))], None),
    }, [])[0]
    assert server.slot_testv_and_readv_and_writev(in_progress, secrets, {
        2: ([], [(half, MDMF[2][half:])], None),
    }, [])[0]
    for si, shnum in ((opaque, 0), (opaque, 1), (in_progress, 2)):
        server.advise_corrupt_share(b"mutable", si, shnum, b"this is no share")
        assert server.quarantine.check(si, shnum, "test").outcome == UNCHECKED
    while server.scrubber.run_slice(60.0):
        pass
    record = server.scrubber.status()["history"]["0"]
    assert record["shares-quarantined"] == 0 and record["shares-skipped-mutable"] == 3
    assert sorted(server.slot_readv(opaque, [], [(0, 1)])) == [0, 1]
    # the writer's last call completes the share, which is then proven good
    assert server.slot_testv_and_readv_and_writev(in_progress, secrets, {
        2: ([], [(0, MDMF[2][:half])], None),
    }, [])[0]
    assert server.quarantine.check(in_progress, 2, "test").outcome == GOOD
    assert server.slot_readv(in_progress, [2], [(0, len(MDMF[2]))]) == {2: [MDMF[2]]}


def test_a_slot_rewritten_while_it_is_scrubbed_is_not_quarantined(make_server, clock):
    """Versions replace each other (one call each, renamed into place) while the
    scrubber reads: it sees one whole version or the next, never a mix."""
    server = make_server()
    secrets = (b"w" * 32, b"r" * 32, b"c" * 32)
    si = bytes([7] * 16)
    versions = [SDMF, MDMF]
    stop = threading.Event()

    def rewrite() -> None:
        n = 0
        while not stop.is_set():
            version = versions[n % 2]
            vectors = {sh: ([], [(0, version[sh])], len(version[sh])) for sh in range(N)}
            assert server.slot_testv_and_readv_and_writev(si, secrets, vectors, [])[0]
            n += 1

    rewrite_once = {sh: ([], [(0, SDMF[sh])], None) for sh in range(N)}
    assert server.slot_testv_and_readv_and_writev(si, secrets, rewrite_once, [])[0]
    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for cycle in range(3):
            while server.scrubber.run_slice(60.0):
                pass
            clock.advance(8 * 24 * 3600)
            assert server.scrubber.status()["history"][str(cycle)]["shares-quarantined"] == 0
    finally:
        stop.set()
        writer.join()
    assert server.quarantine.list() == []
