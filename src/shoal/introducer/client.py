"""The client side of Tahoe-LAFS 1.20's introducer protocol, for one introducer FURL.

It keeps a connection to the introducer (Foolscap's Reconnector retries with
exponential backoff), checks that it speaks introducer v2, publishes this
node's announcements (re-signing all of them with the next seqnum and a fresh
nonce whenever one changes), subscribes to the services it was asked for, and
verifies every announcement it receives (RIIntroducerSubscriberClient_v2):
unsigned or badly signed ones are logged and dropped, and an announcement
replaces an earlier one from the same signer only with a higher seqnum.

Received announcements are kept in private/introducer_<petname>_cache.yaml
(Tahoe's format, see shoal.introducer.files); the cache is read when the
service starts and its servers are reported at once, so a client whose
introducer is down still finds its storage servers.

The Tub must be running before this service starts.
"""

import time
from collections.abc import Callable
from typing import Any

from foolscap.api import Referenceable
from twisted.application import service
from twisted.logger import Logger
from zope.interface import implementer

from shoal import __version__
from shoal.crypto.ed25519 import SigningKey
from shoal.introducer.files import (
    SEQNUM_FILE,
    FileSequencer,
    IntroducerConfigError,
    StaticServer,
    cache_filename,
    format_cache,
    load_introducers_yaml,
    load_servers_yaml,
    parse_introducers_yaml,
    parse_servers_yaml,
    read_cache,
    write_atomically,
)
from shoal.protocol import connection_status
from shoal.protocol.announcement import (
    OLDEST_SUPPORTED,
    AnnouncementTuple,
    BadAnnouncementError,
    Verdict,
    announcement_dict,
    judge,
    sign,
    unsign,
)
from shoal.protocol.introducer import INTRODUCER_V2, RIIntroducerSubscriberClient_v2

__all__ = [
    "SEQNUM_FILE",
    "AnnouncementCallback",
    "FileSequencer",
    "IntroducerClient",
    "IntroducerConfigError",
    "StaticServer",
    "cache_filename",
    "load_introducers_yaml",
    "load_servers_yaml",
    "parse_introducers_yaml",
    "parse_servers_yaml",
]

_log = Logger()

MY_VERSION = f"shoal/{__version__}"

# Called with (server id b"v0-...", announcement dict) for each new or changed announcement.
AnnouncementCallback = Callable[[bytes, dict[str, Any]], object]


def censor_furl(furl: str) -> str:
    """A FURL without its secret swissnum, for display."""
    prefix, slash, _ = furl.rpartition("/")
    return f"{prefix}/[censored]" if slash else "[censored]"


@implementer(RIIntroducerSubscriberClient_v2)
class IntroducerClient(service.Service, Referenceable):  # type: ignore[misc]
    def __init__(
        self,
        tub: Any,
        introducer_furl: str,
        *,
        nickname: str,
        sequencer: Callable[[], tuple[int, str]],
        cache_path: str | None = None,
        my_version: str = MY_VERSION,
        oldest_supported: str = OLDEST_SUPPORTED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tub = tub
        self.introducer_furl = introducer_furl
        self._nickname = nickname
        self._my_version = my_version
        self._oldest_supported = oldest_supported
        self._sequencer = sequencer
        self._cache_path = cache_path
        self._clock = clock
        self._subscriber_info: dict[bytes, Any] = {
            b"version": 0,
            b"nickname": nickname,
            b"app-versions": [],
            b"my-version": my_version,
            b"oldest-supported": oldest_supported,
        }
        self._canary = Referenceable()
        self._reconnector: Any = None
        self._publisher: Any = None  # the introducer's RemoteReference, while connected
        self._since: float | None = None
        self._error: str | None = None
        # service name -> (service part of the announcement, signing key)
        self._outbound: dict[str, tuple[dict[str, Any], SigningKey]] = {}
        self._signed: dict[str, AnnouncementTuple] = {}
        self._local_subscribers: dict[str, list[AnnouncementCallback]] = {}
        self._subscriptions: set[str] = set()  # subscribe_v2 sent on this connection
        # (service name, key_s) -> (ann, received at): what the introducer told us this run
        self._inbound: dict[tuple[str, bytes], tuple[dict[str, Any], float]] = {}
        # the same, from the cache file, until the introducer says otherwise
        self._cached: dict[tuple[str, bytes], dict[str, Any]] = {}
        self._last_announcement_at: float | None = None
        self.counts = {
            "inbound_message": 0,
            "inbound_announcement": 0,
            "bad_announcement": 0,
            "wrong_service": 0,
            "duplicate_announcement": 0,
            "stale_announcement": 0,
            "update": 0,
            "new_announcement": 0,
            "outbound_message": 0,
        }

    # -- service --

    def startService(self) -> None:
        super().startService()
        self._load_cache()
        self._reconnector = self._tub.connectTo(self.introducer_furl, self._got_introducer)

    def stopService(self) -> Any:
        if self._reconnector is not None:
            self._reconnector.stopConnecting()
        self._publisher = None
        return super().stopService()

    # -- connection --

    def _got_introducer(self, rref: Any) -> None:
        d = rref.callRemote("get_version")
        d.addCallback(self._got_version, rref)
        d.addErrback(self._got_error)

    def _got_version(self, version: Any, rref: Any) -> None:
        if not isinstance(version, dict) or INTRODUCER_V2 not in version:
            self._error = "the introducer does not speak the introducer v2 protocol"
            _log.warn("introducer {furl}: {error}", furl=censor_furl(self.introducer_furl), error=self._error)
            return
        self._error = None
        self._publisher = rref
        self._since = self._clock()
        self._subscriptions.clear()
        rref.notifyOnDisconnect(self._disconnected, rref)
        self._maybe_publish()
        self._maybe_subscribe()

    def _got_error(self, f: Any) -> None:
        self._error = f.getErrorMessage()
        _log.warn("introducer {furl}: {error}", furl=censor_furl(self.introducer_furl), error=self._error)

    def _disconnected(self, rref: Any) -> None:
        if self._publisher is rref:
            self._publisher = None
            self._since = self._clock()
            self._subscriptions.clear()

    @property
    def connected(self) -> bool:
        return self._publisher is not None

    # -- publishing --

    def publish(self, service_name: str, ann: dict[str, Any], signing_key: SigningKey) -> None:
        """Announce a service (e.g. "storage") to this introducer, now or once connected."""
        seqnum, nonce = self._sequencer()
        self._outbound[service_name] = (dict(ann), signing_key)
        for name, (part, key) in self._outbound.items():
            ann_d = announcement_dict(
                name, part, nickname=self._nickname, my_version=self._my_version,
                oldest_supported=self._oldest_supported, seqnum=seqnum, nonce=nonce,
            )
            self._signed[name] = sign(ann_d, key)
        self._maybe_publish()

    def _maybe_publish(self) -> None:
        if self._publisher is None:
            return
        for ann_t in list(self._signed.values()):
            self.counts["outbound_message"] += 1
            d = self._publisher.callRemote("publish_v2", ann_t, self._canary)
            d.addErrback(self._publish_failed)

    def _publish_failed(self, f: Any) -> None:
        _log.warn("introducer {furl} refused our announcement: {e}",
                  furl=censor_furl(self.introducer_furl), e=f.getErrorMessage())

    # -- subscribing --

    def subscribe_to(self, service_name: str, callback: AnnouncementCallback) -> None:
        """Call callback(server_id, ann) for every known and every new or changed announcement."""
        self._local_subscribers.setdefault(service_name, []).append(callback)
        for (name, key_s), ann in list(self._current().items()):
            if name == service_name:
                self._call(callback, key_s, ann)
        self._maybe_subscribe()

    def _maybe_subscribe(self) -> None:
        if self._publisher is None:
            return
        for service_name in self._local_subscribers:
            if service_name in self._subscriptions:
                continue
            self._subscriptions.add(service_name)
            d = self._publisher.callRemote(
                "subscribe_v2", self, service_name.encode("utf-8"), self._subscriber_info
            )
            d.addErrback(self._subscribe_failed, service_name)

    def _subscribe_failed(self, f: Any, service_name: str) -> None:
        self._subscriptions.discard(service_name)
        _log.warn("introducer {furl}: subscribing to {name} failed: {e}",
                  furl=censor_furl(self.introducer_furl), name=service_name, e=f.getErrorMessage())

    def remote_announce_v2(self, announcements: Any) -> None:
        self.got_announcements(announcements)

    def got_announcements(self, announcements: Any) -> None:
        self.counts["inbound_message"] += 1
        changed = False
        for ann_t in announcements:
            try:
                ann, key_s = unsign(ann_t)
            except BadAnnouncementError as e:
                self.counts["bad_announcement"] += 1
                _log.warn("introducer {furl} sent a bad announcement, ignored: {why}",
                          furl=censor_furl(self.introducer_furl), why=str(e))
                continue
            changed |= self._process(ann, key_s)
        if changed:
            self._save_cache()

    def _process(self, ann: dict[str, Any], key_s: bytes) -> bool:
        self.counts["inbound_announcement"] += 1
        service_name = ann["service-name"]
        if service_name not in self._local_subscribers:
            self.counts["wrong_service"] += 1
            return False
        index = (service_name, key_s)
        old = self._inbound.get(index)
        verdict = judge(old[0] if old else None, ann)
        if verdict is Verdict.DUPLICATE:
            self.counts["duplicate_announcement"] += 1
            return False
        if not verdict.accepted:
            self.counts["stale_announcement"] += 1
            _log.info("not replacing the announcement of {key}: {verdict}",
                      key=key_s.decode("ascii"), verdict=verdict.value)
            return False
        self.counts["update" if verdict is Verdict.UPDATE else "new_announcement"] += 1
        now = self._clock()
        self._inbound[index] = (ann, now)
        self._last_announcement_at = now
        cached = self._cached.pop(index, None)
        if cached != ann:
            self._deliver(service_name, key_s, ann)
        return True

    def _deliver(self, service_name: str, key_s: bytes, ann: dict[str, Any]) -> None:
        for callback in list(self._local_subscribers.get(service_name, [])):
            self._call(callback, key_s, ann)

    @staticmethod
    def _call(callback: AnnouncementCallback, key_s: bytes, ann: dict[str, Any]) -> None:
        try:
            callback(key_s, ann)
        except Exception:
            _log.failure("announcement subscriber failed on {key}", key=key_s.decode("ascii"))

    def _current(self) -> dict[tuple[str, bytes], dict[str, Any]]:
        current = dict(self._cached)
        current.update({index: ann for index, (ann, _) in self._inbound.items()})
        return current

    # -- the cache --

    def _load_cache(self) -> None:
        if self._cache_path is None:
            return
        for key_s, ann in read_cache(self._cache_path):
            index = (ann["service-name"], key_s)
            if index in self._inbound:
                continue
            self._cached[index] = ann
            self._deliver(index[0], key_s, ann)

    def _save_cache(self) -> None:
        if self._cache_path is None:
            return
        entries = [(key_s, ann) for (_, key_s), (ann, _) in self._inbound.items()]
        try:
            write_atomically(self._cache_path, format_cache(entries))
        except OSError as e:
            _log.warn("cannot write the announcement cache {path}: {e}", path=self._cache_path, e=str(e))

    # -- status --

    def connection_status(self) -> connection_status.ConnectionStatus:
        if self._reconnector is None:
            return connection_status.unstarted()
        last_received = None
        if self._publisher is not None:
            last_received = self._publisher.getDataLastReceivedAt()
        return connection_status.from_reconnection_info(
            self._reconnector.getReconnectionInfo(), last_received, self._clock()
        )

    def status(self) -> dict[str, Any]:
        """JSON-ready view for the welcome page."""
        cs = self.connection_status()
        return {
            "furl": censor_furl(self.introducer_furl),
            "connected": self.connected,
            "summary": cs.summary,
            "since": self._since,
            "last_received_data": cs.last_received_time,
            "last_announcement_at": self._last_announcement_at,
            "announcements": len(self._inbound),
            "cached_announcements": len(self._cached),
            "error": self._error,
        }
