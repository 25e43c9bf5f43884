"""Signed introducer announcements, as Tahoe-LAFS 1.20 builds, signs and checks them.

An announcement is a JSON object. A storage server's holds
"anonymous-storage-FURL" and "permutation-seed-base32" (and
"anonymous-storage-NURLs" when it speaks HTTP); the introducer client puts its
own fields first and the sequence fields last, so the key order of the JSON
text (which is what gets signed) is:

    version (0), nickname, app-versions ([]), my-version, oldest-supported,
    service-name, <the service's keys>, seqnum, nonce

The JSON text is Python's default json.dumps (", " and ": " separators,
ASCII-only with \\u escapes), encoded as UTF-8. On the wire it travels as the
3-tuple of bytes

    (json_bytes, b"v0-" + base32(ed25519 signature of json_bytes),
     b"v0-" + base32(32-byte public key))

and the signer's key string b"v0-..." is the server id. Unsigned (None) or
badly signed announcements are rejected.

A pure module: bytes and dicts in, dicts and verdicts out.
"""

import enum
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from shoal.crypto.ed25519 import BadKeyError, SigningKey, VerifyingKey
from shoal.encoding import bounded_json
from shoal.encoding.base32 import a2b, b2a_bytes
from shoal.errors import EncodingError, Fault, ShoalError

# The largest announcement message we accept (a real one is about 1 KB).
MAX_ANNOUNCEMENT_SIZE = 256 * 1024

KEY_PREFIX = b"v0-"
SERVICE_STORAGE = "storage"
ANONYMOUS_STORAGE_FURL = "anonymous-storage-FURL"
ANONYMOUS_STORAGE_NURLS = "anonymous-storage-NURLs"
PERMUTATION_SEED = "permutation-seed-base32"

# Tahoe 1.20's client says it is compatible back to this version.
OLDEST_SUPPORTED = "1.0.0"

_KEY_RE = re.compile(rb"\Av0-[a-z2-7]{52}\Z")
_SIG_RE = re.compile(rb"\Av0-[a-z2-7]{103}\Z")  # 64 bytes of base32

AnnouncementTuple = tuple[bytes, bytes, bytes]


class BadAnnouncementError(ShoalError):
    """An announcement that is unsigned, badly signed or malformed (the sender's fault)."""

    fault = Fault.SERVER


def storage_announcement(
    furl: str, permutation_seed_base32: str, nurls: Iterable[str] | None = None
) -> dict[str, Any]:
    """The service-specific part of a storage server's announcement, keys in Tahoe's order.

    Tahoe sends the NURLs as a set (in no particular order); shoal sorts them.
    """
    ann: dict[str, Any] = {PERMUTATION_SEED: permutation_seed_base32}
    if nurls is not None:
        ann[ANONYMOUS_STORAGE_NURLS] = sorted(nurls)
    ann[ANONYMOUS_STORAGE_FURL] = furl
    return ann


def announcement_dict(
    service_name: str,
    ann: Mapping[str, Any],
    *,
    nickname: str,
    my_version: str,
    oldest_supported: str = OLDEST_SUPPORTED,
    seqnum: int,
    nonce: str,
) -> dict[str, Any]:
    """The full announcement an introducer client signs, keys in Tahoe's order."""
    ann_d: dict[str, Any] = {
        "version": 0,
        "nickname": nickname,
        "app-versions": [],
        "my-version": my_version,
        "oldest-supported": oldest_supported,
        "service-name": service_name,
    }
    ann_d.update(ann)
    ann_d["seqnum"] = seqnum
    ann_d["nonce"] = nonce
    return ann_d


def encode(ann_d: Mapping[str, Any]) -> bytes:
    """UTF-8 of json.dumps with Python's defaults, as Tahoe writes it."""
    try:
        return json.dumps(ann_d).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise BadAnnouncementError(f"announcement is not JSON-serializable: {e}") from None


def sign(ann_d: Mapping[str, Any], signing_key: SigningKey) -> AnnouncementTuple:
    """The wire tuple (json bytes, b"v0-" signature, b"v0-" key) for ann_d."""
    msg = encode(ann_d)
    sig = KEY_PREFIX + b2a_bytes(signing_key.sign(msg))
    return (msg, sig, key_string(signing_key.verifying_key()))


def key_string(key: VerifyingKey) -> bytes:
    """b"v0-" + base32(public key): the server id an announcement is filed under."""
    return key.server_id()


def unsign(ann_t: object) -> tuple[dict[str, Any], bytes]:
    """Check a wire announcement; return (announcement dict, signer key b"v0-...").

    Raises BadAnnouncementError for anything else: wrong shape or types,
    missing or malformed signature or key, a signature that does not verify,
    a message that is not a UTF-8 JSON object with a text "service-name".
    """
    if not isinstance(ann_t, tuple | list) or len(ann_t) != 3:
        raise BadAnnouncementError("an announcement is a 3-tuple (message, signature, key)")
    msg, sig_vs, key_vs = ann_t
    if sig_vs is None or key_vs is None:
        raise BadAnnouncementError("unsigned announcement (only signed announcements are accepted)")
    if not (isinstance(msg, bytes) and isinstance(sig_vs, bytes) and isinstance(key_vs, bytes)):
        raise BadAnnouncementError("announcement message, signature and key must be bytes")
    if len(msg) > MAX_ANNOUNCEMENT_SIZE:
        raise BadAnnouncementError(f"announcement of {len(msg)} bytes is over the {MAX_ANNOUNCEMENT_SIZE}-byte limit")
    if not _KEY_RE.match(key_vs):
        raise BadAnnouncementError(f"announcement key is not a v0- Ed25519 key: {key_vs[:70]!r}")
    if not _SIG_RE.match(sig_vs):
        raise BadAnnouncementError(f"announcement signature is not a v0- Ed25519 signature: {sig_vs[:20]!r}...")
    try:
        key = VerifyingKey.from_raw(a2b(key_vs[len(KEY_PREFIX) :]))
        signature = a2b(sig_vs[len(KEY_PREFIX) :])
        key.verify(signature, msg)
    except (BadKeyError, EncodingError) as e:
        raise BadAnnouncementError(f"bad signature on announcement from {key_vs.decode('ascii')}: {e}") from None
    return (decode(msg, key_vs), key_vs)


def decode(msg: bytes, key_vs: bytes = b"?") -> dict[str, Any]:
    """Parse a (verified) announcement message into its dict."""
    who = key_vs.decode("ascii", "replace")
    try:
        ann = bounded_json.loads(msg)
    except bounded_json.BadJSONError as e:
        raise BadAnnouncementError(f"announcement from {who} is not UTF-8 JSON: {e}") from None
    if not isinstance(ann, dict):
        raise BadAnnouncementError(f"announcement from {who} is not a JSON object")
    if not isinstance(ann.get("service-name"), str):
        raise BadAnnouncementError(f"announcement from {who} has no text 'service-name'")
    return ann


class Verdict(enum.Enum):
    """What to do with an announcement for an index (service name, signer key) already seen."""

    NEW = "new"  # nothing known for this index: store and deliver
    UPDATE = "update"  # a newer announcement: replace and deliver
    DUPLICATE = "duplicate"  # exactly the one we hold: ignore
    NO_SEQNUM = "no-seqnum"  # the old one had a seqnum, this one has none: ignore
    STALE = "stale"  # seqnum not higher than the one we hold (a replay?): ignore

    @property
    def accepted(self) -> bool:
        return self in (Verdict.NEW, Verdict.UPDATE)


def _seqnum(ann: Mapping[str, Any]) -> int | None:
    value = ann.get("seqnum")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def judge(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> Verdict:
    """Tahoe's replacement rule, the same in introducer server and client.

    An identical announcement is a duplicate; if the one we hold carries a
    seqnum, the new one must carry a higher integer seqnum to replace it.
    """
    if old is None:
        return Verdict.NEW
    if old == new:
        return Verdict.DUPLICATE
    if "seqnum" in old:
        new_seqnum = _seqnum(new)
        if new_seqnum is None:
            return Verdict.NO_SEQNUM
        old_seqnum = _seqnum(old)
        if old_seqnum is not None and new_seqnum <= old_seqnum:
            return Verdict.STALE
    return Verdict.UPDATE
