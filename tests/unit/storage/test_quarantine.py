"""Share self-checks (storage.integrity) and quarantine on advise_corrupt_share.

Real shares from the immutable encoder, stored through the server's own
methods on a real disk; damage is one flipped byte in the file.
"""

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.formats import immutable_container as ic
from shoal.formats.share_layout import ShareLayout
from shoal.immutable.encoder import encode_all
from shoal.immutable.params import FileShape
from shoal.storage.integrity import ImmutableShareCheck, ShareDamage, check_immutable_share
from shoal.storage.quarantine import (
    ABSENT,
    GOOD,
    QUARANTINED,
    REASON_SUFFIX,
    UNCHECKED,
    quarantine_root,
)

K, N = 3, 10
SECRET = b"r" * 32


def encoded(size: int, segment_size: int, seed: int = 1) -> tuple[list[bytes], bytes]:
    rnd = random.Random(seed)
    shape = FileShape(size, K, N, segment_size)
    shares, result = encode_all(rnd.randbytes(16), shape, [rnd.randbytes(size)])
    return shares, result.storage_index


def store(server, si: bytes, shares: dict[int, bytes]) -> None:
    _, writers = server.allocate_buckets(si, SECRET, SECRET, set(shares), max(map(len, shares.values())))
    for shnum, writer in writers.items():
        writer.write(0, shares[shnum])
        writer.close()


def flip(path: str, offset: int, mask: int = 0x01) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ mask]))


def reader(data: bytes):
    return lambda offset, length: data[offset : offset + length]


SHARES, _SI = encoded(20_000, 3_000)  # 7 segments, tail shorter
LAYOUT = ShareLayout.parse(SHARES[0])


def regions() -> list[tuple[int, int]]:
    """[start, end) of every byte a damaged copy must be caught in (see integrity's docstring)."""
    lay = LAYOUT
    data_size = lay.plaintext_hash_tree - lay.data
    return [
        (0, 4),  # version
        (4 + 2 * lay.field_size, 4 + 3 * lay.field_size),  # data offset
        (4 + 4 * lay.field_size, lay.header_size),  # crypttext/block/share-hash/UEB offsets
        (lay.data, lay.data + data_size),  # blocks
        (lay.crypttext_hash_tree, lay.uri_extension + lay.field_size),  # trees, chain, UEB length
    ]


def test_good_shares_pass_whole_and_in_spans():
    for shnum, share in enumerate(SHARES):
        check_immutable_share(reader(share), shnum, span=1)
        check = ImmutableShareCheck(reader(share), shnum)
        assert check.num_segments == 7
        assert check.span_length(0, 7) == LAYOUT.plaintext_hash_tree - LAYOUT.data
        assert check.check_blocks(0, 2 * check.ueb.block_size) == 2
        assert check.check_blocks(6, 10**9) == 7


@pytest.mark.parametrize("size,segment_size", [(56, 57), (1000, 1002), (3001, 999), (40_000, 4_002)])
def test_every_shape_passes(size, segment_size):
    shares, _ = encoded(size, segment_size, seed=size)
    for shnum, share in enumerate(shares):
        check_immutable_share(reader(share), shnum)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_flipped_byte_in_a_checked_region_is_damage(data):
    start, end = data.draw(st.sampled_from(regions()))
    offset = data.draw(st.integers(start, end - 1))
    mask = data.draw(st.integers(1, 255))
    shnum = data.draw(st.integers(0, N - 1))
    damaged = bytearray(SHARES[shnum])
    damaged[offset] ^= mask
    with pytest.raises(ShareDamage):
        check_immutable_share(reader(bytes(damaged)), shnum)


def ueb_value_offset(share: bytes, key: bytes) -> int:
    lay = ShareLayout.parse(share)
    ueb_start = lay.uri_extension + lay.field_size
    at = share.index(key + b":", ueb_start)
    return share.index(b":", at + len(key) + 1) + 1


@pytest.mark.parametrize("key", [b"codec_params", b"share_root_hash", b"crypttext_root_hash", b"num_segments"])
def test_ueb_damage_is_found(key):
    damaged = bytearray(SHARES[4])
    damaged[ueb_value_offset(SHARES[4], key)] ^= 0x02
    with pytest.raises(ShareDamage):
        check_immutable_share(reader(bytes(damaged)), 4)


def test_truncated_share_and_wrong_share_number_are_damage():
    with pytest.raises(ShareDamage, match="ends inside"):
        check_immutable_share(reader(SHARES[0][:-10]), 0)
    with pytest.raises(ShareDamage, match="hash chain"):
        check_immutable_share(reader(SHARES[0]), 1)  # share 0's data claimed as share 1
    with pytest.raises(ShareDamage):
        check_immutable_share(reader(b"abc"), 0)


# -- quarantine on the server ---------------------------------------------------------


@pytest.fixture
def held(server):
    store(server, _SI, dict(enumerate(SHARES)))
    return server


def share_path(server, shnum: int) -> str:
    return server.layout.share_path(_SI, shnum)


def quarantined(server) -> list[str]:
    root = quarantine_root(server.layout)
    out = []
    for directory, _dirs, files in os.walk(root):
        out += [os.path.join(directory, f) for f in files if not f.endswith(REASON_SUFFIX)]
    return sorted(out)


def test_a_false_advisory_changes_nothing(held):
    before = open(share_path(held, 2), "rb").read()
    held.get_buckets(_SI)[2].advise_corrupt_share(b"I think block 3 is bad")
    held.advise_corrupt_share(b"immutable", _SI, 2, b"really")
    assert set(held.get_buckets(_SI)) == set(range(N))
    assert open(share_path(held, 2), "rb").read() == before
    assert quarantined(held) == []
    assert held.quarantine.counts["advisories-ignored-clean"] == 1  # the second was not re-hashed
    assert len(os.listdir(held.layout.advisory_dir)) == 2  # both recorded, as Tahoe records them


def test_a_damaged_share_is_quarantined_and_can_be_uploaded_again(held):
    path = share_path(held, 5)
    flip(path, ic.DATA_OFFSET + LAYOUT.data + 100)
    damaged = open(path, "rb").read()
    used = held.space.used
    held.get_buckets(_SI)[5].advise_corrupt_share(b"block 0 hash mismatch")
    assert not os.path.exists(path)
    (moved,) = quarantined(held)
    assert open(moved, "rb").read() == damaged
    reason = open(moved + REASON_SUFFIX, encoding="utf-8").read()
    assert "block 0 (offset" in reason and "client advisory: block 0 hash mismatch" in reason
    assert set(held.get_buckets(_SI)) == set(range(N)) - {5}
    assert used is None or held.space.used == used - len(damaged)
    already, writers = held.allocate_buckets(_SI, SECRET, SECRET, {5}, len(SHARES[5]))
    assert 5 not in already and set(writers) == {5}
    writers[5].write(0, SHARES[5])
    writers[5].close()
    assert held.get_buckets(_SI)[5].read(0, 10**6) == SHARES[5]
    assert held.quarantine.list()[0]["shnum"] == 5
    stats = held.stats()
    assert (stats["storage_server.shares_checked"], stats["storage_server.shares_quarantined"]) == (1, 1)


def test_a_damaged_container_header_is_quarantined(held):
    flip(share_path(held, 0), 3, 0x04)  # container version 2 -> 6
    assert 0 not in held.get_buckets(_SI)  # already not served: it does not parse
    assert held.quarantine.check(_SI, 0, "test").outcome == QUARANTINED
    assert held.quarantine.check(_SI, 0, "test").outcome == ABSENT


def test_the_last_share_leaves_no_empty_bucket(server):
    store(server, _SI, {7: SHARES[7]})
    flip(share_path(server, 7), ic.DATA_OFFSET + LAYOUT.crypttext_hash_tree + 5)
    server.advise_corrupt_share(b"immutable", _SI, 7, b"bad tree")
    assert not os.path.exists(server.layout.bucket_dir(_SI))
    assert server.get_buckets(_SI) == {}


def test_a_slot_holding_no_mutable_share_is_not_checked(server):
    si = bytes(16)
    secrets = (b"w" * 32, SECRET, SECRET)
    server.slot_testv_and_readv_and_writev(si, secrets, {0: ([], [(0, b"not really sdmf")], None)}, [])
    server.advise_corrupt_share(b"mutable", si, 0, b"bad signature")
    assert server.quarantine.check(si, 0, "test").outcome == UNCHECKED
    assert server.slot_readv(si, [0], [(0, 100)]) == {0: [b"not really sdmf"]}


def test_a_share_replaced_while_checked_is_not_moved(held):
    path = share_path(held, 1)
    identity = (os.stat(path).st_dev, os.stat(path).st_ino)
    # a lease added meanwhile renames a copy over the share
    held.add_lease(_SI, b"n" * 32, b"n" * 32)
    assert held.quarantine.move(_SI, 1, identity, "stale verdict", "test") is None
    assert os.path.exists(path)
    assert held.quarantine.check(_SI, 1, "test").outcome == GOOD
