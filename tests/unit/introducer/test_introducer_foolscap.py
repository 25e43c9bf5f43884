"""Introducer server and client over real Foolscap on 127.0.0.1."""

import pathlib
from typing import Any

from foolscap.api import Referenceable, Tub
from zope.interface import implementer

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import b2a
from shoal.introducer.client import FileSequencer, IntroducerClient
from shoal.introducer.server import IntroducerService
from shoal.protocol.announcement import announcement_dict, sign, storage_announcement
from shoal.protocol.introducer import INTRODUCER_V2, RIIntroducerPublisherAndSubscriberService_v2
from tests.unit.introducer.foolscap_harness import Harness, call

FURL = "pb://u33m4y7klhz3bypswqkozwetvabelhxt@tcp:127.0.0.1:9/swiss"


class Received:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, dict]] = []

    def __call__(self, server_id: bytes, ann: dict) -> None:
        self.calls.append((server_id, ann))

    def latest(self) -> dict[bytes, dict]:
        return dict(self.calls)


def _introducer(h: Harness) -> tuple[IntroducerService, str, Tub]:
    tub = h.tub()
    intro = IntroducerService()
    furl = call(tub.registerReference, intro)
    h.start(intro)
    return intro, furl, tub


def _client(
    h: Harness, furl: str, tmp_path: pathlib.Path, name: str, cache: bool = True, tub: Tub | None = None
) -> IntroducerClient:
    ic = IntroducerClient(
        tub or h.tub(), furl, nickname=name,
        sequencer=FileSequencer(str(tmp_path / f"{name}-seqnum")),
        cache_path=str(tmp_path / f"{name}-cache.yaml") if cache else None,
    )
    return ic


def _storage_ann(key: SigningKey, furl: str = FURL) -> dict:
    return storage_announcement(furl, b2a(key.verifying_key().to_string()[7:]))


def test_publish_and_subscribe(harness: Harness, tmp_path: pathlib.Path) -> None:
    intro, furl, _ = _introducer(harness)
    assert call(intro.remote_get_version)[INTRODUCER_V2] == {}
    key = SigningKey.generate()
    server = _client(harness, furl, tmp_path, "server")
    call(server.publish, "storage", _storage_ann(key), key)
    harness.start(server)
    client = _client(harness, furl, tmp_path, "client")
    got = Received()
    call(client.subscribe_to, "storage", got)
    harness.start(client)

    harness.wait_for(lambda: got.calls, what="the announcement")
    server_id, ann = got.calls[0]
    assert server_id == key.verifying_key().server_id()
    assert ann["service-name"] == "storage" and ann["nickname"] == "server"
    assert ann["anonymous-storage-FURL"] == FURL and ann["seqnum"] == 1 and ann["version"] == 0
    assert call(server.status)["connected"] and call(client.status)["connected"]
    assert call(client.status)["summary"].startswith("Connected to tcp:127.0.0.1:")

    status = harness.wait_for(lambda: (s := intro.status())["subscribers"] and s)
    [a] = status["announcements"]
    assert a["server_id"] == server_id.decode() and a["nickname"] == "server" and a["seqnum"] == 1
    assert a["connection_hints"] == ["tcp:127.0.0.1:9"] and a["publisher_connected"] is True
    [sub] = status["subscribers"]
    assert sub["service_name"] == "storage" and sub["nickname"] == "client"
    assert sub["remote_address"].startswith("127.0.0.1:")
    # the cache holds what we heard
    assert "key_s: " + server_id.decode() in (tmp_path / "client-cache.yaml").read_text()


def test_higher_seqnum_replaces_and_replays_are_ignored(harness: Harness, tmp_path: pathlib.Path) -> None:
    intro, furl, _ = _introducer(harness)
    key = SigningKey.generate()
    server = _client(harness, furl, tmp_path, "server")
    harness.start(server)
    client = _client(harness, furl, tmp_path, "client")
    got = Received()
    call(client.subscribe_to, "storage", got)
    harness.start(client)
    call(server.publish, "storage", _storage_ann(key), key)
    harness.wait_for(lambda: got.calls)
    first_t = server._signed["storage"]

    call(server.publish, "storage", _storage_ann(key, FURL + "2"), key)
    harness.wait_for(lambda: len(got.calls) == 2, what="the update")
    assert got.calls[1][1]["seqnum"] == 2 and got.calls[1][1]["anonymous-storage-FURL"] == FURL + "2"
    assert [a["seqnum"] for a in call(intro.status)["announcements"]] == [2]

    # a replay of the first one is not taken by the introducer, nor by a client
    verdict = call(intro.publish, first_t, None)
    assert verdict.value == "stale" and intro.counts["inbound_old_replay"] == 1
    call(client.got_announcements, {first_t})
    assert len(got.calls) == 2 and client.counts["stale_announcement"] == 1
    # the same one again is a duplicate
    call(client.got_announcements, {server._signed["storage"]})
    assert len(got.calls) == 2 and client.counts["duplicate_announcement"] >= 1


def test_forged_and_unsigned_refused_by_introducer(harness: Harness, tmp_path: pathlib.Path) -> None:
    intro, furl, _ = _introducer(harness)
    key, forger = SigningKey.generate(), SigningKey.generate()
    ann_d = announcement_dict("storage", _storage_ann(key), nickname="x", my_version="v", seqnum=1, nonce="n")
    good = sign(ann_d, key)
    forged = (good[0], sign(ann_d, forger)[1], good[2])  # someone else's signature
    tub = harness.tub()
    rref = call(tub.getReference, furl)
    canary = Referenceable()
    for bad in [forged, (good[0], None, None), (b"{}", good[1], good[2]), "junk"]:
        def publish(bad: Any = bad) -> Any:
            return rref.callRemote("publish_v2", bad, canary).addErrback(lambda f: f.getTraceback())

        failure = call(publish)
        assert failure is not None and "BadAnnouncementError" in str(failure)
    assert intro.counts["inbound_bad"] == 4
    assert call(intro.status)["announcements"] == []
    call(rref.callRemote, "publish_v2", good, canary)
    assert len(call(intro.status)["announcements"]) == 1


@implementer(RIIntroducerPublisherAndSubscriberService_v2)
class RogueIntroducer(Referenceable):  # type: ignore[misc]
    """Sends whatever it was given to every subscriber."""

    def __init__(self, anns: set) -> None:
        self.anns = anns

    def remote_get_version(self) -> dict:
        return {INTRODUCER_V2: {}, b"application-version": b"rogue"}

    def remote_publish_v2(self, ann: Any, canary: Any) -> None:
        pass

    def remote_subscribe_v2(self, subscriber: Any, service_name: bytes, info: dict) -> Any:
        return subscriber.callRemote("announce_v2", self.anns)


def test_client_ignores_forged_announcements(harness: Harness, tmp_path: pathlib.Path) -> None:
    key, forger = SigningKey.generate(), SigningKey.generate()
    ann_d = announcement_dict("storage", _storage_ann(key), nickname="x", my_version="v", seqnum=1, nonce="n")
    good = sign(ann_d, key)
    forged_d = dict(ann_d, nickname="evil", seqnum=5)
    forged = (sign(forged_d, forger)[0], good[1], good[2])  # claims key's identity
    other = sign(dict(ann_d, nickname="other"), forger)
    tub = harness.tub()
    furl = call(tub.registerReference, RogueIntroducer({good, forged, (b"x", None, None), other}))
    client = _client(harness, furl, tmp_path, "client")
    got = Received()
    call(client.subscribe_to, "storage", got)
    harness.start(client)
    harness.wait_for(lambda: len(got.calls) == 2)
    assert got.latest() == {
        key.verifying_key().server_id(): ann_d,
        forger.verifying_key().server_id(): dict(ann_d, nickname="other"),
    }
    assert client.counts["bad_announcement"] == 2


def test_cache_reused_when_introducer_is_down(harness: Harness, tmp_path: pathlib.Path) -> None:
    intro, furl, intro_tub = _introducer(harness)
    key = SigningKey.generate()
    server = _client(harness, furl, tmp_path, "server")
    call(server.publish, "storage", _storage_ann(key), key)
    harness.start(server)
    client = _client(harness, furl, tmp_path, "client")
    got = Received()
    call(client.subscribe_to, "storage", got)
    harness.start(client)
    harness.wait_for(lambda: got.calls)
    harness.stop(client)
    harness.stop(server)
    harness.stop(intro)
    harness.stop_tub(intro_tub)

    # a fresh client with the same cache: the server is reported before (without) the introducer
    again = _client(harness, furl, tmp_path, "client")
    got2 = Received()
    call(again.subscribe_to, "storage", got2)
    harness.start(again)
    assert got2.calls == got.calls
    status = call(again.status)
    assert status["connected"] is False and status["cached_announcements"] == 1
    # and a subscriber that comes late still hears of it
    got3 = Received()
    call(again.subscribe_to, "storage", got3)
    assert got3.calls == got.calls


def test_not_v2_introducer_is_reported(harness: Harness, tmp_path: pathlib.Path) -> None:
    class Old(RogueIntroducer):
        def remote_get_version(self) -> dict:
            return {b"http://allmydata.org/tahoe/protocols/introducer/v1": {}}

    tub = harness.tub()
    furl = call(tub.registerReference, Old(set()))
    client = _client(harness, furl, tmp_path, "client", cache=False)
    harness.start(client)
    status = harness.wait_for(lambda: (s := client.status())["error"] and s)
    assert "v2" in status["error"] and status["connected"] is False
