"""zfec segment codec: any k of n blocks give the segment back."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.codec import CodecError, CodecParams, SegmentCodec, next_multiple


@st.composite
def codec_case(draw):
    n = draw(st.integers(1, 20))
    k = draw(st.integers(1, n))
    segment_size = next_multiple(draw(st.integers(1, 3000)), k)
    data = draw(st.binary(min_size=0, max_size=segment_size))
    shares = draw(st.permutations(range(n)))[:k]
    return CodecParams(segment_size, k, n), data, shares


@given(codec_case())
def test_any_k_blocks_decode(case):
    params, data, chosen = case
    codec = SegmentCodec(params)
    blocks = codec.encode(data)
    assert len(blocks) == params.n and all(len(b) == params.block_size for b in blocks)
    # the first k blocks are the (padded) segment itself
    padded = data + b"\x00" * (params.segment_size - len(data))
    assert b"".join(blocks[: params.k]) == padded
    got = codec.decode({s: blocks[s] for s in chosen}, len(data))
    assert got == data


def test_params_serialise():
    p = CodecParams(131073, 3, 10)
    assert p.serialize() == b"131073-3-10" and CodecParams.parse(p.serialize()) == p


@pytest.mark.parametrize("k,n,size", [(0, 1, 0), (3, 2, 3), (3, 257, 3), (3, 10, 4)])
def test_bad_params(k, n, size):
    with pytest.raises(CodecError):
        CodecParams(size, k, n)


def test_too_few_blocks():
    codec = SegmentCodec(CodecParams(6, 3, 5))
    blocks = codec.encode(b"abcdef")
    with pytest.raises(CodecError):
        codec.decode({0: blocks[0], 4: blocks[4]})


def test_wrong_block_length():
    codec = SegmentCodec(CodecParams(6, 3, 5))
    blocks = codec.encode(b"abcdef")
    with pytest.raises(CodecError):
        codec.decode({0: blocks[0], 1: blocks[1], 2: b"x"})
