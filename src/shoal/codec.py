"""zfec "crs" erasure coding of segments, as Tahoe-LAFS 1.20 uses it.

A segment of S bytes (S a multiple of k) is cut into k primary blocks of
S/k bytes; zfec adds n-k check blocks. Any k distinct blocks give the
segment back. The tail segment is shorter: it is padded with zero bytes to
the next multiple of k before encoding, and the padding is cut off after
decoding. Parameters serialise as b"<segment size>-<k>-<n>" in the UEB.
"""

from collections.abc import Mapping, Sequence

import attrs
import zfec

from shoal.errors import ShoalError

CODEC_NAME = b"crs"
MAX_SHARES = 256


class CodecError(ShoalError):
    """Bad codec parameters or blocks (its callers check both first: a bug)."""


def next_multiple(x: int, k: int) -> int:
    return -(-x // k) * k


def div_ceil(x: int, y: int) -> int:
    return -(-x // y)


@attrs.frozen
class CodecParams:
    """What one codec instance encodes: segment_size bytes into n blocks, any k of which suffice."""

    segment_size: int
    k: int
    n: int

    def __attrs_post_init__(self) -> None:
        if not (1 <= self.k <= self.n <= MAX_SHARES):
            raise CodecError(f"need 1 <= k <= n <= {MAX_SHARES}, got k={self.k} n={self.n}")
        if self.segment_size < 0 or self.segment_size % self.k:
            raise CodecError(f"segment size {self.segment_size} is not a multiple of k={self.k}")

    @property
    def block_size(self) -> int:
        return self.segment_size // self.k

    def serialize(self) -> bytes:
        return b"%d-%d-%d" % (self.segment_size, self.k, self.n)

    @classmethod
    def parse(cls, data: bytes) -> "CodecParams":
        parts = data.split(b"-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise CodecError(f"bad codec parameters {data[:40]!r}")
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))


class SegmentCodec:
    """Encode and decode segments of one fixed (padded) size."""

    def __init__(self, params: CodecParams) -> None:
        self.params = params
        self._encoder = zfec.Encoder(params.k, params.n)
        self._decoder = zfec.Decoder(params.k, params.n)

    def encode(self, segment: bytes, sharenums: Sequence[int] | None = None) -> list[bytes]:
        """Blocks of one segment for the given share numbers (default: all n).

        A segment shorter than segment_size (the tail) is padded with zeros.
        """
        p = self.params
        if len(segment) > p.segment_size:
            raise CodecError(f"segment of {len(segment)} bytes exceeds {p.segment_size}")
        if len(segment) < p.segment_size:
            segment = bytes(segment) + b"\x00" * (p.segment_size - len(segment))
        bs = p.block_size
        view = memoryview(segment)
        primaries = [view[i * bs : (i + 1) * bs] for i in range(p.k)]
        wanted = list(range(p.n)) if sharenums is None else list(sharenums)
        blocks = self._encoder.encode(primaries, wanted)
        return [bytes(b) for b in blocks]

    def decode(self, blocks: Mapping[int, bytes], length: int | None = None) -> bytes:
        """Segment from any k blocks {sharenum: block}; cut to length if given."""
        p = self.params
        if len(blocks) < p.k:
            raise CodecError(f"need {p.k} blocks to decode, got {len(blocks)}")
        chosen = sorted(blocks)[: p.k]
        for s in chosen:
            if not 0 <= s < p.n:
                raise CodecError(f"share number {s} out of range 0..{p.n - 1}")
            if len(blocks[s]) != p.block_size:
                raise CodecError(
                    f"block of share {s} is {len(blocks[s])} bytes, expected {p.block_size}"
                )
        if chosen == list(range(p.k)):
            primaries = [blocks[s] for s in chosen]
        else:
            primaries = self._decoder.decode([blocks[s] for s in chosen], chosen)
        out = b"".join(primaries)
        return out if length is None else out[:length]
