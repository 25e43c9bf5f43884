"""Soledad's blob rules (leap.soledad server ``_blobs/util.py``, ``common/blobs``):
what a user, blob id and namespace may be, the accepted flags, the listing
orders, and the ``Tag`` of a stored blob. Pure: no Twisted, no I/O.

* Names match ``^[a-zA-Z0-9_-]+$``; an absent namespace is ``default``.
* Flags are exactly PENDING, PROCESSING, PROCESSED, FAILED; a flags POST
  replaces the whole set (kept in the order given, duplicates dropped).
* ``order_by`` is ``date`` or ``+date`` (oldest first) or ``-date`` (newest
  first); anything else is refused (Soledad left such a request hanging).
* The Tag is the URL-safe base64 of the blob's last 16 bytes (the AES-GCM tag
  the client appended): 24 characters. Soledad's server could not tag a blob
  shorter than 16 bytes; shoal pads such a tail with zero bytes on the left,
  so every Tag, and every /stream frame header, keeps its fixed length.
"""

import base64
import re

from shoal.apps.blobs.errors import BadRequest, InvalidFlag, InvalidRequest
from shoal.encoding import bounded_json

VALID_NAME = re.compile(r"[a-zA-Z0-9_-]+")
DEFAULT_NAMESPACE = "default"
ACCEPTED_FLAGS = ("PENDING", "PROCESSING", "PROCESSED", "FAILED")
TAG_BYTES = 16
TAG_CHARS = 24
ORDERS = {"date": False, "+date": False, "-date": True}  # order_by -> newest first?


def check_name(kind: str, value: str) -> str:
    """`value` if it is a valid user / blob id / namespace; InvalidRequest otherwise."""
    if not isinstance(value, str) or not VALID_NAME.fullmatch(value):
        raise InvalidRequest(f"invalid {kind} {value!r}: must match {VALID_NAME.pattern}")
    return value


def namespace_or_default(value: str | None) -> str:
    return check_name("namespace", value) if value else DEFAULT_NAMESPACE


def check_flags(flags: object) -> list[str]:
    """The flag set a POST body (already JSON-decoded) asks for; InvalidFlag names
    the first flag outside ACCEPTED_FLAGS."""
    if not isinstance(flags, list):
        raise InvalidFlag(flags)
    out: list[str] = []
    for flag in flags:
        if not isinstance(flag, str) or flag not in ACCEPTED_FLAGS:
            raise InvalidFlag(flag)
        if flag not in out:
            out.append(flag)
    return out


def parse_flags_body(body: bytes) -> list[str]:
    try:
        decoded = bounded_json.loads(body)
    except bounded_json.JSONLimitError as e:
        # past the bounds Soledad never had: a plain 400, not Soledad's 500 for a bad body
        raise BadRequest(f"a flags POST body: {e}") from None
    except bounded_json.BadJSONError:
        raise InvalidRequest(f"a flags POST body is a JSON list, not {body[:60]!r}") from None
    return check_flags(decoded)


def newest_first(order_by: str | None) -> bool | None:
    """None: no ordering asked; else whether the newest blob comes first."""
    if order_by is None or order_by == "":
        return None
    try:
        return ORDERS[order_by]
    except KeyError:
        raise BadRequest(f"order_by must be one of {', '.join(ORDERS)}, not {order_by!r}") from None


def is_true(value: str | None) -> bool:
    """A query flag such as only_count=true / deleted=true (Soledad takes any
    non-empty value as set; shoal also reads 'false', '0' and 'no' as unset)."""
    return value is not None and value != "" and value.lower() not in ("false", "0", "no")


def tag_of(tail: bytes) -> str:
    """The Tag of a blob whose last (up to) 16 bytes are `tail`."""
    tail = tail[-TAG_BYTES:]
    return base64.urlsafe_b64encode(tail.rjust(TAG_BYTES, b"\x00")).decode("ascii")
