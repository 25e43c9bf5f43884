"""What the Blockstack driver stores on the grid, as pure functions.

Facts implemented (shared/reference/app-apis.md section 2.1):
* immutable data is keyed by the SHA-256 of its bytes (lower-case hex) and must
  hash to that key when read back;
* mutable data is keyed by an opaque printable `data_id`; its URL comes from
  `make_mutable_url` and must let `get_mutable_handler` find the data again;
* deletes carry a tombstone (the user's signature), which the driver keeps;
* data comes back as it was put: str in, str out; bytes in, bytes out.

shoal's own layout (not a Blockstack fact): each mutable id is one mutable grid
file holding a *record*: the magic ``SBM1``, one kind byte (bytes data, text
data (UTF-8, handed back as str) or tombstone),
an 8-byte big-endian driver version, then the payload. The version grows by one
on every put or delete of that id; a client pins the highest version it wrote
or saw and never returns an older one (read-your-writes, monotonic reads).
An immutable file holds the data's bytes, with ``SBT1`` in front when the data
was a str (the SHA-256 key is always of the data's UTF-8 bytes).
Directory entry names are ``m-`` / ``i-`` / ``t-`` prefixes plus hex, so any
printable id is a safe child name. A mutable URL is
``shoal:<read-only cap of the driver's mutable directory>/<entry name>``, so any
shoal node can read it.
"""

import hashlib
import re
import struct
from urllib.parse import quote, unquote

import attrs

from shoal.errors import Fault, ShoalError

MAGIC = b"SBM1"
KIND_DATA = 0
KIND_TOMBSTONE = 1
KIND_TEXT = 2  # data put as str: handed back as str
TEXT_MAGIC = b"SBT1"  # prefix of an immutable file whose data was put as str
_HEADER = struct.Struct(">4sBQ")
URL_SCHEME = "shoal:"
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


class RecordError(ShoalError):
    """A mutable grid file does not hold a driver record (someone else's file, or damage):
    the cap the driver was given is wrong."""

    fault = Fault.CALLER


@attrs.frozen
class Record:
    kind: int
    version: int
    payload: bytes

    @property
    def is_tombstone(self) -> bool:
        return self.kind == KIND_TOMBSTONE

    def data(self) -> bytes | str:
        """The payload as it was put: str for a text record, else bytes."""
        return self.payload.decode("utf-8") if self.kind == KIND_TEXT else self.payload


def pack_record(record: Record) -> bytes:
    return _HEADER.pack(MAGIC, record.kind, record.version) + record.payload


def unpack_record(data: bytes) -> Record:
    if len(data) < _HEADER.size:
        raise RecordError(f"driver record is {len(data)} bytes, shorter than its {_HEADER.size}-byte header")
    magic, kind, version = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise RecordError(f"driver record starts with {magic!r}, not {MAGIC!r}")
    if kind not in (KIND_DATA, KIND_TOMBSTONE, KIND_TEXT):
        raise RecordError(f"driver record has unknown kind {kind}")
    return Record(kind, version, data[_HEADER.size:])


def as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def data_kind(data: bytes | str) -> int:
    """The record kind that keeps `data`'s type: KIND_TEXT for str, KIND_DATA for bytes."""
    return KIND_TEXT if isinstance(data, str) else KIND_DATA


def pack_immutable(data: bytes | str) -> bytes:
    """The bytes of an immutable file: text gets TEXT_MAGIC in front, bytes stay as they are."""
    return TEXT_MAGIC + data.encode("utf-8") if isinstance(data, str) else bytes(data)


def unpack_immutable(stored: bytes, key: str) -> bytes | str | None:
    """The data as it was put, if `stored` hashes to `key` (with or without the text
    prefix); None if it does not. The hash decides, so bytes that happen to start
    with TEXT_MAGIC are never mistaken for text."""
    if stored.startswith(TEXT_MAGIC) and sha256_hex(stored[len(TEXT_MAGIC):]) == key:
        try:
            return stored[len(TEXT_MAGIC):].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if sha256_hex(stored) == key:
        return stored
    return None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalize_hash(data_hash: str | bytes) -> str | None:
    """The lower-case hex SHA-256 key, or None if `data_hash` is not one."""
    text = data_hash.decode("ascii", "replace") if isinstance(data_hash, bytes) else str(data_hash)
    text = text.strip().lower()
    return text if _HASH_RE.match(text) else None


def mutable_name(data_id: str) -> str:
    return "m-" + data_id.encode("utf-8").hex()


def immutable_name(data_hash: str) -> str:
    return "i-" + data_hash


def tombstone_name(kind: str, key: str) -> str:
    return f"t-{kind}-" + key.encode("utf-8").hex()


def make_url(dircap: str, data_id: str) -> str:
    return URL_SCHEME + quote(dircap, safe="") + "/" + mutable_name(data_id)


def parse_url(url: str) -> tuple[str, str] | None:
    """(directory cap, entry name) of a URL made by make_url, else None."""
    if not isinstance(url, str) or not url.startswith(URL_SCHEME):
        return None
    dircap, sep, name = url[len(URL_SCHEME):].rpartition("/")
    if not sep or not dircap or not name.startswith("m-"):
        return None
    try:
        bytes.fromhex(name[2:]).decode("utf-8")
    except ValueError:
        return None
    return unquote(dircap), name
