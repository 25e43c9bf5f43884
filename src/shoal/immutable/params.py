"""Encoding parameters of an immutable file and everything derived from them.

Tahoe-LAFS 1.20 shrinks the segment size for small files: the effective
segment size is min(max segment size, file size) rounded up to a multiple
of k, and that effective size is what enters the convergent-key tag.
"""

import attrs

from shoal.codec import CodecParams, div_ceil, next_multiple
from shoal.errors import Fault, ShoalError

DEFAULT_MAX_SEGMENT_SIZE = 1024 * 1024  # Tahoe 1.20's default (was 128 KiB before 1.19)
LIT_THRESHOLD = 55  # files of this many bytes or fewer become URI:LIT: caps
DEFAULT_K, DEFAULT_HAPPY, DEFAULT_N = 3, 7, 10


class ParameterError(ShoalError):
    """Encoding parameters that cannot work (the user's or the config's)."""

    fault = Fault.CALLER


@attrs.frozen
class EncodingParams:
    """What a user chooses: k-of-n, happiness, maximum segment size."""

    k: int = DEFAULT_K
    happy: int = DEFAULT_HAPPY
    n: int = DEFAULT_N
    max_segment_size: int = DEFAULT_MAX_SEGMENT_SIZE

    def __attrs_post_init__(self) -> None:
        if not (1 <= self.k <= self.n <= 256):
            raise ParameterError(f"need 1 <= needed <= total <= 256, got {self.k} and {self.n}")
        if not (1 <= self.happy <= self.n):
            raise ParameterError(f"need 1 <= happy <= total, got happy={self.happy} n={self.n}")
        if self.max_segment_size < 1:
            raise ParameterError(f"max segment size must be positive, got {self.max_segment_size}")

    def segment_size_for(self, file_size: int) -> int:
        return next_multiple(min(self.max_segment_size, file_size), self.k)


@attrs.frozen
class FileShape:
    """How a file of `size` bytes splits into segments and blocks (all derived)."""

    size: int
    k: int
    n: int
    segment_size: int

    def __attrs_post_init__(self) -> None:
        if self.size < 1 or self.segment_size < 1 or self.segment_size % self.k:
            raise ParameterError(
                f"bad file shape: size={self.size} segment_size={self.segment_size} k={self.k}"
            )

    @property
    def num_segments(self) -> int:
        return div_ceil(self.size, self.segment_size)

    @property
    def tail_size(self) -> int:
        return self.size - (self.num_segments - 1) * self.segment_size

    @property
    def codec_params(self) -> CodecParams:
        return CodecParams(self.segment_size, self.k, self.n)

    @property
    def tail_codec_params(self) -> CodecParams:
        return CodecParams(next_multiple(self.tail_size, self.k), self.k, self.n)

    @property
    def block_size(self) -> int:
        return self.segment_size // self.k

    @property
    def tail_block_size(self) -> int:
        return self.tail_codec_params.block_size

    @property
    def share_data_size(self) -> int:
        """Bytes of blocks in each share."""
        return self.block_size * (self.num_segments - 1) + self.tail_block_size

    def segment_length(self, segnum: int) -> int:
        return self.tail_size if segnum == self.num_segments - 1 else self.segment_size

    def block_length(self, segnum: int) -> int:
        return self.tail_block_size if segnum == self.num_segments - 1 else self.block_size

    @property
    def num_share_hashes(self) -> int:
        """Entries in each share's hash chain: the leaf plus one sibling per level."""
        return (self.n - 1).bit_length() + 1
