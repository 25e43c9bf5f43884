"""The introducer service of Tahoe-LAFS 1.20 (RIIntroducerPublisherAndSubscriberService_v2).

Publishers hand it signed announcements; it keeps one per (service name,
signer key), replacing it only with a higher seqnum, and relays each accepted
announcement to every subscriber of that service. A new subscriber is first
sent every announcement it asked for. Unsigned or badly signed announcements
are logged and refused (the publisher's call fails). Nothing is re-broadcast
to other introducers and nothing is written to disk: the node registers this
object in its Tub (furlFile=private/introducer.furl).
"""

import time
from collections.abc import Callable
from typing import Any

from foolscap.api import Referenceable
from foolscap.furl import decode_furl
from twisted.application import service
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger
from zope.interface import implementer

from shoal import __version__
from shoal.protocol.announcement import (
    ANONYMOUS_STORAGE_FURL,
    AnnouncementTuple,
    BadAnnouncementError,
    Verdict,
    judge,
    unsign,
)
from shoal.protocol.introducer import (
    APPLICATION_VERSION,
    INTRODUCER_V2,
    RIIntroducerPublisherAndSubscriberService_v2,
)

_log = Logger()

APP_VERSION = f"shoal/{__version__}".encode("ascii")


class _Stored:
    """One accepted announcement: the wire tuple as received (relayed verbatim) and its dict."""

    __slots__ = ("ann", "ann_t", "canary", "when")

    def __init__(self, ann_t: AnnouncementTuple, ann: dict[str, Any], canary: Any, when: float) -> None:
        self.ann_t = ann_t
        self.ann = ann
        self.canary = canary
        self.when = when


def _text(value: Any, default: str = "") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return default


def _remote_address(rref: Any) -> str:
    try:
        peer = rref.getPeer()
    except Exception:
        return "?"
    if isinstance(peer, IPv4Address | IPv6Address):
        return f"{peer.host}:{peer.port}"
    return str(peer)


def _hints(ann: dict[str, Any]) -> list[str]:
    furl = ann.get(ANONYMOUS_STORAGE_FURL)
    if not isinstance(furl, str):
        return []
    try:
        _, hints, _ = decode_furl(furl)
    except Exception:
        return []
    return [str(h) for h in hints]


@implementer(RIIntroducerPublisherAndSubscriberService_v2)
class IntroducerService(service.MultiService, Referenceable):  # type: ignore[misc]
    name = "introducer"

    def __init__(self, app_version: bytes = APP_VERSION, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._version: dict[bytes, Any] = {INTRODUCER_V2: {}, APPLICATION_VERSION: app_version}
        self._clock = clock
        # (service name, signer key b"v0-...") -> the announcement we hold
        self._announcements: dict[tuple[str, bytes], _Stored] = {}
        # service name -> {subscriber rref: (subscriber_info, when)}
        self._subscribers: dict[str, dict[Any, tuple[dict[str, Any], float]]] = {}
        self.counts = {
            "inbound_message": 0,
            "inbound_bad": 0,
            "inbound_duplicate": 0,
            "inbound_no_seqnum": 0,
            "inbound_old_replay": 0,
            "inbound_update": 0,
            "inbound_subscribe": 0,
            "outbound_message": 0,
            "outbound_announcements": 0,
        }

    # -- the remote interface --

    def remote_get_version(self) -> dict[bytes, Any]:
        return self._version

    def remote_publish_v2(self, announcement: Any, canary: Any) -> None:
        self.publish(announcement, canary)

    def remote_subscribe_v2(self, subscriber: Any, service_name: bytes, subscriber_info: dict[bytes, Any]) -> Any:
        info = {_text(k): v for k, v in subscriber_info.items()}
        return self.add_subscriber(subscriber, _text(service_name), info)

    # -- the logic --

    def publish(self, ann_t: Any, canary: Any = None) -> Verdict:
        """Accept (or refuse) one wire announcement; raise BadAnnouncementError if it is bad."""
        self.counts["inbound_message"] += 1
        try:
            ann, key_s = unsign(ann_t)
        except BadAnnouncementError as e:
            self.counts["inbound_bad"] += 1
            _log.warn("introducer: refused announcement: {why}", why=str(e))
            raise
        service_name = ann["service-name"]
        index = (service_name, key_s)
        old = self._announcements.get(index)
        verdict = judge(old.ann if old else None, ann)
        if verdict is Verdict.DUPLICATE:
            self.counts["inbound_duplicate"] += 1
        elif verdict is Verdict.NO_SEQNUM:
            self.counts["inbound_no_seqnum"] += 1
        elif verdict is Verdict.STALE:
            self.counts["inbound_old_replay"] += 1
            _log.info(
                "introducer: not replacing announcement of {key}: seqnum {new} is not above {old}",
                key=key_s.decode("ascii"), new=ann.get("seqnum"), old=old.ann.get("seqnum") if old else None,
            )
        if not verdict.accepted:
            return verdict
        if verdict is Verdict.UPDATE:
            self.counts["inbound_update"] += 1
        wire = (ann_t[0], ann_t[1], ann_t[2])
        self._announcements[index] = _Stored(wire, ann, canary, self._clock())
        for subscriber in list(self._subscribers.get(service_name, {})):
            self._send(subscriber, {wire})
        return verdict

    def add_subscriber(self, subscriber: Any, service_name: str, info: dict[str, Any]) -> Any:
        self.counts["inbound_subscribe"] += 1
        subscribers = self._subscribers.setdefault(service_name, {})
        if subscriber in subscribers:
            return None  # already subscribed: ignore, as Tahoe does
        subscribers[subscriber] = (info, self._clock())

        def _gone() -> None:
            subscribers.pop(subscriber, None)

        try:
            subscriber.notifyOnDisconnect(_gone)
        except Exception:  # already gone
            subscribers.pop(subscriber, None)
            return None
        current = {s.ann_t for (name, _), s in self._announcements.items() if name == service_name}
        if current:
            return self._send(subscriber, current)
        return None

    def _send(self, subscriber: Any, announcements: set[AnnouncementTuple]) -> "defer.Deferred[Any]":
        self.counts["outbound_message"] += 1
        self.counts["outbound_announcements"] += len(announcements)
        d: defer.Deferred[Any] = defer.maybeDeferred(subscriber.callRemote, "announce_v2", announcements)

        def _failed(f: Any) -> None:
            _log.info("introducer: subscriber failed to take announcements: {f}", f=f.getErrorMessage())

        d.addErrback(_failed)
        return d

    # -- for status pages --

    def status(self) -> dict[str, Any]:
        """JSON-ready view: announcements held, subscribers connected, counters."""
        announcements = []
        for (service_name, key_s), s in sorted(self._announcements.items()):
            canary_connected = None
            if s.canary is not None and hasattr(s.canary, "isConnected"):
                canary_connected = bool(s.canary.isConnected())
            seqnum = s.ann.get("seqnum")
            announcements.append({
                "service_name": service_name,
                "server_id": key_s.decode("ascii"),
                "nickname": _text(s.ann.get("nickname")),
                "version": _text(s.ann.get("my-version")),
                "seqnum": seqnum if isinstance(seqnum, int) else None,
                "announced_at": s.when,
                "connection_hints": _hints(s.ann),
                "publisher_connected": canary_connected,
                "announcement": s.ann,
            })
        subscribers = []
        for service_name, subs in sorted(self._subscribers.items()):
            for rref, (info, when) in subs.items():
                try:
                    tubid = rref.getRemoteTubID() or "?"
                except Exception:
                    tubid = "?"
                subscribers.append({
                    "service_name": service_name,
                    "nickname": _text(info.get("nickname"), "?"),
                    "version": _text(info.get("my-version"), "?"),
                    "app_versions": info.get("app-versions", {}),
                    "subscribed_at": when,
                    "remote_address": _remote_address(rref),
                    "tubid": _text(tubid, "?"),
                })
        return {
            "announcements": announcements,
            "subscribers": subscribers,
            "counts": dict(self.counts),
        }
