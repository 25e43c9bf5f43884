"""A storage server's version answer (Tahoe-LAFS 1.20's get_version), parsed once.

The answer is a dict: b"http://allmydata.org/tahoe/protocols/storage/v1" ->
{feature name: value}, and b"application-version" -> bytes. A server that
leaves a field out is assumed to behave as Tahoe's defaults say; a field of
the wrong type is the server's fault (VersionError).
"""

from collections.abc import Mapping
from typing import Any

import attrs

from shoal.errors import Fault, ShoalError

PROTOCOL_KEY = b"http://allmydata.org/tahoe/protocols/storage/v1"
APPLICATION_VERSION_KEY = b"application-version"

DEFAULT_MAX_IMMUTABLE = 2**32 - 1
DEFAULT_MAX_MUTABLE = 2 * 1000 * 1000 * 1000
UNKNOWN_APPLICATION = b"unknown: no get_version()"


class VersionError(ShoalError):
    """A version answer of the wrong shape (the server's fault)."""

    fault = Fault.SERVER


def _int(v1: Mapping[Any, Any], key: bytes, default: int | None) -> int | None:
    value = v1.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VersionError(f"{key.decode()} is {type(value).__name__} {value!r:.40}, not a count of bytes")
    return value


def _bool(v1: Mapping[Any, Any], key: bytes, default: bool) -> bool:
    value = v1.get(key, default)
    if not isinstance(value, bool):
        # Tahoe writes these as Python booleans; Foolscap and CBOR keep them so
        raise VersionError(f"{key.decode()} is {type(value).__name__}, not a boolean")
    return value


@attrs.frozen
class ServerVersion:
    """What a storage server says of itself."""

    maximum_immutable_share_size: int = DEFAULT_MAX_IMMUTABLE
    maximum_mutable_share_size: int = DEFAULT_MAX_MUTABLE
    available_space: int | None = None
    tolerates_immutable_read_overrun: bool = False
    delete_mutable_shares_with_zero_length_writev: bool = False
    fills_holes_with_zero_bytes: bool = False
    prevents_read_past_end_of_share_data: bool = False
    application_version: bytes = UNKNOWN_APPLICATION

    @classmethod
    def parse(cls, answer: object) -> "ServerVersion":
        """The version from a get_version answer; VersionError if it has the wrong shape."""
        if not isinstance(answer, Mapping):
            raise VersionError(f"version answer is {type(answer).__name__}, not a dict")
        v1 = answer.get(PROTOCOL_KEY)
        if not isinstance(v1, Mapping):
            raise VersionError("version answer has no storage protocol v1 section")
        app = answer.get(APPLICATION_VERSION_KEY, UNKNOWN_APPLICATION)
        if isinstance(app, str):
            app = app.encode("utf-8")
        if not isinstance(app, bytes):
            raise VersionError(f"application-version is {type(app).__name__}, not bytes")
        max_immutable = _int(v1, b"maximum-immutable-share-size", DEFAULT_MAX_IMMUTABLE)
        max_mutable = _int(v1, b"maximum-mutable-share-size", DEFAULT_MAX_MUTABLE)
        return cls(
            maximum_immutable_share_size=DEFAULT_MAX_IMMUTABLE if max_immutable is None else max_immutable,
            maximum_mutable_share_size=DEFAULT_MAX_MUTABLE if max_mutable is None else max_mutable,
            available_space=_int(v1, b"available-space", None),
            tolerates_immutable_read_overrun=_bool(v1, b"tolerates-immutable-read-overrun", False),
            delete_mutable_shares_with_zero_length_writev=_bool(
                v1, b"delete-mutable-shares-with-zero-length-writev", False
            ),
            fills_holes_with_zero_bytes=_bool(v1, b"fills-holes-with-zero-bytes", False),
            prevents_read_past_end_of_share_data=_bool(v1, b"prevents-read-past-end-of-share-data", False),
            application_version=app[:1000],
        )

    @property
    def space(self) -> int:
        """Free space as the server reports it (else its largest share size), for placement."""
        return self.available_space if self.available_space is not None else self.maximum_immutable_share_size

    def to_wire(self) -> dict[bytes, Any]:
        """The get_version answer a server sends (Tahoe 1.20's keys)."""
        return {
            PROTOCOL_KEY: {
                b"maximum-immutable-share-size": self.maximum_immutable_share_size,
                b"maximum-mutable-share-size": self.maximum_mutable_share_size,
                b"available-space": self.available_space,
                b"tolerates-immutable-read-overrun": self.tolerates_immutable_read_overrun,
                b"delete-mutable-shares-with-zero-length-writev": self.delete_mutable_shares_with_zero_length_writev,
                b"fills-holes-with-zero-bytes": self.fills_holes_with_zero_bytes,
                b"prevents-read-past-end-of-share-data": self.prevents_read_past_end_of_share_data,
            },
            APPLICATION_VERSION_KEY: self.application_version,
        }
