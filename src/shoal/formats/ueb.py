"""The URI extension block (UEB) of Tahoe-LAFS 1.20 CHK files.

A UEB is a flat map from names to values, serialized as the concatenation,
in sorted key order, of ``key:`` + netstring(value). Keys match
``[a-zA-Z_-]+``. Five keys hold integers written as decimal ASCII (size,
segment_size, num_segments, needed_shares, total_shares); every other value
is raw bytes. Tahoe 1.20 writes exactly eleven keys (see ``UEB_KEYS``);
uploads from before 1.0 also carried plaintext hashes, which readers ignore.

Each share stores the UEB at its end, preceded by its length; the CHK cap
holds the tagged hash of these exact bytes, so a reader must keep them as
they are. Tahoe's bucket reader treats a stated length of 2000 or more as
corruption, so no UEB may be longer than ``MAX_UEB_SIZE``.
"""

import re
from collections.abc import Mapping
from typing import Any

import attrs

from shoal.crypto.hashes import HASH_LENGTH
from shoal.encoding.netstring import netstring, split_netstring
from shoal.errors import EncodingError
from shoal.formats.errors import BadUEBError

MAX_UEB_SIZE = 1999  # the largest UEB a Tahoe 1.20 reader accepts
MAX_SHARES = 256  # zfec's limit on k and N
CODEC_NAME = b"crs"

INT_KEYS = frozenset({"size", "segment_size", "num_segments", "needed_shares", "total_shares"})
UEB_KEYS = (
    "codec_name",
    "codec_params",
    "tail_codec_params",
    "size",
    "segment_size",
    "num_segments",
    "needed_shares",
    "total_shares",
    "crypttext_hash",
    "crypttext_root_hash",
    "share_root_hash",
)
_HASH_KEYS = ("crypttext_hash", "crypttext_root_hash", "share_root_hash")

_KEY_BYTES = re.compile(rb"[a-zA-Z_-]+")
_KEY_TEXT = re.compile(r"[a-zA-Z_-]+")
_DECIMAL = re.compile(rb"0|[1-9][0-9]*")

UEBValue = int | bytes


def _encode_fields(fields: Mapping[str, UEBValue]) -> bytes:
    pieces = []
    for key in sorted(fields):
        if not isinstance(key, str) or not _KEY_TEXT.fullmatch(key):
            raise ValueError(f"UEB key {key!r} does not match [a-zA-Z_-]+")
        value = fields[key]
        if key in INT_KEYS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"UEB key {key!r} holds an int, not {type(value).__name__}")
            if value < 0:
                raise ValueError(f"UEB key {key!r} cannot hold the negative {value}")
            encoded = b"%d" % value
        else:
            if not isinstance(value, bytes):
                raise TypeError(f"UEB key {key!r} holds bytes, not {type(value).__name__}")
            encoded = value
        pieces.append(key.encode("ascii") + b":" + netstring(encoded))
    return b"".join(pieces)


def pack_ueb(fields: Mapping[str, UEBValue]) -> bytes:
    """Serialize a UEB map: sorted ``key:netstring(value)`` pairs.

    The five ``INT_KEYS`` must hold non-negative ints, every other key bytes,
    so that ``unpack_ueb`` gives back the same map.
    """
    data = _encode_fields(fields)
    if len(data) > MAX_UEB_SIZE:
        raise ValueError(f"UEB of {len(data)} bytes exceeds the {MAX_UEB_SIZE} Tahoe readers accept")
    return data


def unpack_ueb(data: bytes) -> dict[str, UEBValue]:
    """Parse a UEB into its map, the five ``INT_KEYS`` as ints.

    Keys may come in any order (Tahoe's reader does not care), but each only
    once; integers must be canonical decimal. Anything else is BadUEBError.
    """
    if not isinstance(data, bytes):
        raise TypeError("a UEB is bytes")
    if len(data) > MAX_UEB_SIZE:
        raise BadUEBError(f"UEB of {len(data)} bytes exceeds the maximum of {MAX_UEB_SIZE}")
    fields: dict[str, UEBValue] = {}
    pos = 0
    while pos < len(data):
        colon = data.find(b":", pos)
        if colon < 0:
            raise BadUEBError(f"UEB at offset {pos}: key without ':'")
        raw_key = data[pos:colon]
        if not _KEY_BYTES.fullmatch(raw_key):
            raise BadUEBError(f"UEB at offset {pos}: key {raw_key[:40]!r} does not match [a-zA-Z_-]+")
        key = raw_key.decode("ascii")
        if key in fields:
            raise BadUEBError(f"UEB at offset {pos}: key {key!r} appears twice")
        try:
            (value,), pos = split_netstring(data, count=1, start=colon + 1)
        except EncodingError as e:
            raise BadUEBError(f"UEB value of key {key!r}: {e}") from None
        if key in INT_KEYS:
            if not _DECIMAL.fullmatch(value):
                raise BadUEBError(f"UEB key {key!r}: {value[:40]!r} is not a decimal integer")
            fields[key] = int(value)
        else:
            fields[key] = value
    return fields


def _ceil_div(n: int, d: int) -> int:
    return -(-n // d)


def codec_params(segment_size: int, needed_shares: int, total_shares: int) -> bytes:
    """Tahoe's serialized erasure-code parameters: b"<segment size>-<k>-<N>"."""
    return b"%d-%d-%d" % (segment_size, needed_shares, total_shares)


def _number(fields: Mapping[str, UEBValue], key: str) -> int:
    value = fields[key]
    if not isinstance(value, int):  # unpack_ueb converts every INT_KEYS value
        raise BadUEBError(f"UEB key {key!r} is not an integer")
    return value


def _blob(fields: Mapping[str, UEBValue], key: str) -> bytes:
    value = fields[key]
    if not isinstance(value, bytes):  # unpack_ueb leaves every other value as bytes
        raise BadUEBError(f"UEB key {key!r} is not bytes")
    return value


def _int(_instance: object, attribute: "attrs.Attribute[int]", value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"UEB field {attribute.name} is an int, not {type(value).__name__}")


_bytes_field = attrs.validators.instance_of(bytes)


def _extra(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        and isinstance(item[1], bytes)
        for item in value
    ):
        raise TypeError("UEB extra fields are a tuple of (str key, bytes value) pairs")


@attrs.frozen
class UEB:
    """A validated, self-consistent URI extension block as Tahoe 1.20 writes it.

    ``extra`` keeps keys this version does not know (e.g. the old
    ``plaintext_hash``), sorted, so that ``to_bytes`` reproduces the bytes a
    UEB was read from: its hash is in the cap. Construct new ones with
    ``UEB.build``.
    """

    codec_name: bytes = attrs.field(validator=_bytes_field)
    codec_params: bytes = attrs.field(validator=_bytes_field)
    tail_codec_params: bytes = attrs.field(validator=_bytes_field)
    size: int = attrs.field(validator=_int)
    segment_size: int = attrs.field(validator=_int)
    num_segments: int = attrs.field(validator=_int)
    needed_shares: int = attrs.field(validator=_int)
    total_shares: int = attrs.field(validator=_int)
    crypttext_hash: bytes = attrs.field(validator=_bytes_field)
    crypttext_root_hash: bytes = attrs.field(validator=_bytes_field)
    share_root_hash: bytes = attrs.field(validator=_bytes_field)
    extra: tuple[tuple[str, bytes], ...] = attrs.field(default=(), validator=_extra)

    def __attrs_post_init__(self) -> None:
        problem = self._inconsistency()
        if problem is not None:
            raise BadUEBError(f"UEB {problem}")

    def _inconsistency(self) -> str | None:
        """What is wrong with these fields, or None."""
        k, n = self.needed_shares, self.total_shares
        if self.codec_name != CODEC_NAME:
            return f"codec_name {self.codec_name[:40]!r} is not {CODEC_NAME!r}"
        if not 1 <= k <= n <= MAX_SHARES:
            return f"needed_shares {k} / total_shares {n} are not 1 <= k <= N <= {MAX_SHARES}"
        if self.size < 1 or self.segment_size < 1:
            return f"size {self.size} and segment_size {self.segment_size} must be positive"
        if self.num_segments != _ceil_div(self.size, self.segment_size):
            return (
                f"num_segments {self.num_segments} is not ceil(size {self.size} / "
                f"segment_size {self.segment_size})"
            )
        expected = codec_params(self.segment_size, k, n)
        if self.codec_params != expected:
            return f"codec_params {self.codec_params[:40]!r} should be {expected!r}"
        expected = codec_params(self.tail_segment_size, k, n)
        if self.tail_codec_params != expected:
            return f"tail_codec_params {self.tail_codec_params[:40]!r} should be {expected!r}"
        for name in _HASH_KEYS:
            length = len(getattr(self, name))
            if length != HASH_LENGTH:
                return f"{name} is {length} bytes, not {HASH_LENGTH}"
        keys = [key for key, _ in self.extra]
        for key in keys:
            if not _KEY_TEXT.fullmatch(key) or key in UEB_KEYS:
                return f"extra key {key!r} is not a valid unknown UEB key"
        if keys != sorted(set(keys)):
            return "extra keys are not sorted and unique"
        length = len(_encode_fields(self.to_fields()))
        if length > MAX_UEB_SIZE:
            return f"of {length} bytes exceeds the maximum of {MAX_UEB_SIZE}"
        return None

    @classmethod
    def build(
        cls,
        *,
        size: int,
        segment_size: int,
        needed_shares: int,
        total_shares: int,
        crypttext_hash: bytes,
        crypttext_root_hash: bytes,
        share_root_hash: bytes,
    ) -> "UEB":
        """The UEB an uploader writes, deriving the codec fields as Tahoe does."""
        tail = size % segment_size if segment_size > 0 else 0
        tail = tail or segment_size
        tail_segment_size = _ceil_div(tail, needed_shares) * needed_shares if needed_shares else 0
        return cls(
            codec_name=CODEC_NAME,
            codec_params=codec_params(segment_size, needed_shares, total_shares),
            tail_codec_params=codec_params(tail_segment_size, needed_shares, total_shares),
            size=size,
            segment_size=segment_size,
            num_segments=_ceil_div(size, segment_size) if segment_size > 0 else 0,
            needed_shares=needed_shares,
            total_shares=total_shares,
            crypttext_hash=crypttext_hash,
            crypttext_root_hash=crypttext_root_hash,
            share_root_hash=share_root_hash,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "UEB":
        """Parse and validate a UEB; BadUEBError unless Tahoe 1.20 could have written it."""
        fields = unpack_ueb(data)
        missing = [key for key in UEB_KEYS if key not in fields]
        if missing:
            raise BadUEBError(f"UEB lacks the key(s) {', '.join(missing)}")
        extra = tuple(
            sorted((key, value) for key, value in fields.items()
                   if key not in UEB_KEYS and isinstance(value, bytes))
        )
        ueb = cls(
            codec_name=_blob(fields, "codec_name"),
            codec_params=_blob(fields, "codec_params"),
            tail_codec_params=_blob(fields, "tail_codec_params"),
            size=_number(fields, "size"),
            segment_size=_number(fields, "segment_size"),
            num_segments=_number(fields, "num_segments"),
            needed_shares=_number(fields, "needed_shares"),
            total_shares=_number(fields, "total_shares"),
            crypttext_hash=_blob(fields, "crypttext_hash"),
            crypttext_root_hash=_blob(fields, "crypttext_root_hash"),
            share_root_hash=_blob(fields, "share_root_hash"),
            extra=extra,
        )
        if ueb.to_bytes() != data:
            raise BadUEBError("UEB keys are not in sorted order as Tahoe writes them")
        return ueb

    def to_fields(self) -> dict[str, UEBValue]:
        """The UEB as the map ``pack_ueb`` serializes."""
        fields: dict[str, UEBValue] = {key: getattr(self, key) for key in UEB_KEYS}
        fields.update(self.extra)
        return fields

    def to_bytes(self) -> bytes:
        return pack_ueb(self.to_fields())

    @property
    def block_size(self) -> int:
        """Bytes per block of every segment but the last."""
        return _ceil_div(self.segment_size, self.needed_shares)

    @property
    def tail_data_size(self) -> int:
        """Bytes of file data in the last segment."""
        return self.size % self.segment_size or self.segment_size

    @property
    def tail_segment_size(self) -> int:
        """The last segment padded to a multiple of k, as the tail codec sees it."""
        return _ceil_div(self.tail_data_size, self.needed_shares) * self.needed_shares

    @property
    def tail_block_size(self) -> int:
        return self.tail_segment_size // self.needed_shares

    def check_matches_cap(self, needed_shares: int, total_shares: int, size: int) -> None:
        """Raise BadUEBError unless k, N and size agree with the cap's (which win)."""
        for name, cap_value in (
            ("needed_shares", needed_shares),
            ("total_shares", total_shares),
            ("size", size),
        ):
            mine = getattr(self, name)
            if mine != cap_value:
                raise BadUEBError(f"UEB {name} {mine} disagrees with the cap's {cap_value}")
