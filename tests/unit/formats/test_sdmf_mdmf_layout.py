"""SDMF and MDMF share layouts (shoal.formats.mutable_share): packing and parsing."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.formats.errors import FormatError
from shoal.formats.mutable_share import (
    MDMF_HEADER_SIZE,
    MDMF_SHARE_DATA_OFFSET,
    SDMF_HEADER_SIZE,
    BadMutableShareError,
    MDMFGeometry,
    SignedPrefix,
    apply_writes,
    mdmf_segment_size,
    mdmf_write_vectors,
    pack_sdmf_share,
    unpack_header,
    unpack_share,
    unpack_share_hash_chain,
)

h32 = st.binary(min_size=32, max_size=32)
salt = st.binary(min_size=16, max_size=16)


def test_tahoe_sizes():
    assert SDMF_HEADER_SIZE == 107
    assert MDMF_HEADER_SIZE == 123
    assert MDMF_SHARE_DATA_OFFSET == 2167
    assert mdmf_segment_size(3) == 131073  # 128 KiB rounded up to a multiple of k
    assert mdmf_segment_size(1) == 131072


@st.composite
def sdmf_parts(draw):
    k = draw(st.integers(1, 20))
    n = draw(st.integers(k, 30))
    datalen = draw(st.integers(0, 5000))
    segsize = -(-datalen // k) * k
    prefix = SignedPrefix(0, draw(st.integers(0, 2**64 - 1)), draw(h32), draw(salt), k, n, segsize, datalen)
    chain = draw(st.dictionaries(st.integers(0, 2**16 - 1), h32, max_size=8))
    tree = draw(st.lists(h32, min_size=1, max_size=3))
    block = draw(st.binary(min_size=segsize // k, max_size=segsize // k)) if datalen else b""
    return prefix, draw(st.binary(max_size=300)), draw(st.binary(max_size=260)), chain, tree, block, draw(
        st.binary(max_size=1300)
    )


@given(sdmf_parts())
def test_sdmf_round_trip(parts):
    prefix, vk, sig, chain, tree, block, key = parts
    data = pack_sdmf_share(prefix, vk, sig, chain, tree, block, key)
    share = unpack_share(data)
    assert share.prefix == prefix
    assert (share.verification_key, share.signature, share.enc_privkey) == (vk, sig, key)
    assert share.share_hash_chain == chain
    assert share.block_hash_tree == tree
    assert share.blocks == ([(prefix.salt, block)] if prefix.data_length else [])
    assert data[:57] == prefix.checkstring()
    assert data[:75] == prefix.signable()
    assert share.offsets.eof == len(data)
    # the Tahoe field order: header, key, signature, chain, tree, data, private key
    assert data[SDMF_HEADER_SIZE:SDMF_HEADER_SIZE + len(vk)] == vk
    assert data.endswith(key)


def test_sdmf_known_bytes():
    prefix = SignedPrefix(0, 7, b"R" * 32, b"I" * 16, 3, 10, 6, 5)
    data = pack_sdmf_share(prefix, b"V" * 4, b"S" * 3, {2: b"A" * 32, 1: b"B" * 32}, [b"T" * 32], b"DD", b"KK")
    assert data[:75] == struct.pack(">BQ32s16sBBQQ", 0, 7, b"R" * 32, b"I" * 16, 3, 10, 6, 5)
    assert data[75:107] == struct.pack(">LLLLQQ", 111, 114, 182, 214, 216, 218)
    # the chain is sorted by node number
    assert data[114:182] == struct.pack(">H32s", 1, b"B" * 32) + struct.pack(">H32s", 2, b"A" * 32)


@st.composite
def mdmf_parts(draw):
    k = draw(st.integers(1, 10))
    n = draw(st.integers(k, 20))
    segsize = k * draw(st.integers(1, 40))
    datalen = draw(st.integers(0, 6 * segsize))
    prefix = SignedPrefix(1, draw(st.integers(0, 2**64 - 1)), draw(h32), None, k, n, segsize, datalen)
    blocks = {
        s: (draw(salt), draw(st.binary(min_size=prefix.block_size(s), max_size=prefix.block_size(s))))
        for s in range(prefix.num_segments)
    }
    chain = draw(st.dictionaries(st.integers(0, 600), h32, max_size=8))
    tree = draw(st.lists(h32, min_size=1, max_size=15))
    return prefix, draw(st.binary(max_size=1220)), chain, draw(st.binary(max_size=260)), draw(
        st.binary(max_size=292)
    ), blocks, tree


@given(mdmf_parts())
def test_mdmf_round_trip(parts):
    prefix, key, chain, sig, vk, blocks, tree = parts
    data = apply_writes(mdmf_write_vectors(prefix, key, chain, sig, vk, blocks, tree))
    share = unpack_share(data)
    assert share.prefix == prefix
    assert (share.verification_key, share.signature, share.enc_privkey) == (vk, sig, key)
    assert share.share_hash_chain == chain
    assert share.block_hash_tree == tree
    assert share.blocks == [blocks[s] for s in range(prefix.num_segments)]
    assert data[:41] == prefix.checkstring()
    assert data[:59] == prefix.signable()
    assert share.offsets.share_data == MDMF_SHARE_DATA_OFFSET
    assert share.offsets.enc_privkey == MDMF_HEADER_SIZE
    geo = MDMFGeometry(prefix.k, prefix.segment_size, prefix.data_length)
    assert share.offsets.block_hash_tree == geo.block_hash_tree_offset == MDMF_SHARE_DATA_OFFSET + geo.share_data_length


def test_mdmf_partial_writes_touch_only_their_segments():
    prefix = SignedPrefix(1, 1, b"R" * 32, None, 3, 10, 30, 100)
    full = {s: (bytes([s]) * 16, bytes([65 + s]) * prefix.block_size(s)) for s in range(4)}
    writes = mdmf_write_vectors(prefix, b"K", {}, b"S", b"V", {2: full[2]}, [b"T" * 32] * 7)
    geo = MDMFGeometry(3, 30, 100)
    assert [w[0] for w in writes] == [0, geo.block_offset(2), geo.block_hash_tree_offset]
    assert geo.block_length(3) == 16 + 4  # the tail: 10 bytes padded to 12, over k=3


def test_mdmf_fields_too_big_for_the_reserved_space():
    prefix = SignedPrefix(1, 1, b"R" * 32, None, 1, 1, 1, 0)
    with pytest.raises(BadMutableShareError):
        mdmf_write_vectors(prefix, b"K" * 1300, {}, b"S" * 260, b"V" * 600, {}, [b"T" * 32])


@settings(max_examples=300)
@given(st.binary(max_size=400), st.data())
def test_garbage_fails_cleanly(prefix_bytes, data):
    """Any bytes parse or raise FormatError, never anything else."""
    version = data.draw(st.sampled_from([b"\x00", b"\x01", b""]))
    blob = version + prefix_bytes
    try:
        unpack_share(blob)
    except FormatError:
        pass
    try:
        unpack_header(blob)
    except FormatError:
        pass


@given(sdmf_parts(), st.data())
def test_truncated_shares_fail_cleanly(parts, data):
    full = pack_sdmf_share(*parts)
    cut = data.draw(st.integers(0, len(full) - 1))
    if cut < len(full):
        with pytest.raises(FormatError):
            unpack_share(full[:cut])


def test_chain_of_odd_length_is_refused():
    with pytest.raises(BadMutableShareError):
        unpack_share_hash_chain(b"x" * 35)
