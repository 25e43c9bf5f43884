"""The storage broker over real Foolscap: servers from introducers, servers.yaml and the cache."""

import pathlib

from foolscap.api import Tub

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import b2a
from shoal.grid.storage_broker import GridServer, StorageBroker, foolscap_connector
from shoal.introducer.client import FileSequencer, IntroducerClient, StaticServer
from shoal.introducer.server import IntroducerService
from shoal.placement.permute import permuted_servers
from shoal.protocol.announcement import storage_announcement
from shoal.protocol.version import ServerVersion
from tests.unit.introducer.foolscap_harness import FakeStorageServer, Harness, call


class FakeNode:
    """A storage server: its own Tub, a fake RIStorageServer, a node key."""

    def __init__(self, h: Harness, name: str, space: int = 12345) -> None:
        self.h = h
        self.name = name
        self.key = SigningKey.generate()
        self.server_id = self.key.verifying_key().server_id()
        self.storage = FakeStorageServer(space=space)
        self.tub = h.tub()
        self.furl = call(self.tub.registerReference, self.storage, "swissnum-" + name)
        self.seed_b32 = b2a(self.key.verifying_key().to_string()[len(b"pub-v0-") :])

    def ann(self) -> dict:
        return storage_announcement(self.furl, self.seed_b32)

    def announce_to(self, intro_furl: str, tmp_path: pathlib.Path) -> IntroducerClient:
        ic = IntroducerClient(
            self.tub, intro_furl, nickname=self.name,
            sequencer=FileSequencer(str(tmp_path / f"{self.name}-seqnum")),
        )
        call(ic.publish, "storage", self.ann(), self.key)
        self.h.start(ic)
        return ic

    def stop(self) -> None:
        self.h.stop_tub(self.tub)

    def restart(self) -> None:
        """A new Tub with the same identity, port and object: the same FURL."""
        port, cert = self.tub.test_port, self.tub.getCertData()
        self.stop()
        self.tub = self.h.tub(port=port, cert=cert)
        assert call(self.tub.registerReference, self.storage, "swissnum-" + self.name) == self.furl


def _introducer(h: Harness) -> str:
    tub = h.tub()
    intro = IntroducerService()
    h.start(intro)
    return call(tub.registerReference, intro)


def _client(h: Harness, intro_furls: list[str], tmp_path: pathlib.Path) -> StorageBroker:
    tub = h.tub()
    broker = StorageBroker(foolscap_connector(tub))
    for i, furl in enumerate(intro_furls):
        ic = IntroducerClient(
            tub, furl, nickname="client", sequencer=FileSequencer(str(tmp_path / "client-seqnum")),
            cache_path=str(tmp_path / f"introducer_{i}_cache.yaml"),
        )
        call(broker.use_introducer, ic)
        h.start(ic)
    h.start(broker)
    return broker


def _connected_ids(broker: StorageBroker) -> set[bytes]:
    return {s.server_id for s in broker.get_connected_servers()}


def test_connects_to_announced_servers(harness: Harness, tmp_path: pathlib.Path) -> None:
    intro = _introducer(harness)
    nodes = [FakeNode(harness, f"node{i}", space=1000 + i) for i in range(3)]
    for n in nodes:
        n.announce_to(intro, tmp_path)
    broker = _client(harness, [intro], tmp_path)
    want = {n.server_id for n in nodes}
    harness.wait_for(lambda: _connected_ids(broker) == want, what="all servers connected")
    call(lambda: broker.when_connected_enough(3))

    status = {s["nodeid"]: s for s in call(broker.status)}
    for n in nodes:
        s = status[n.server_id.decode()]
        assert s["nickname"] == n.name and s["version"] == "fake-storage/1"
        assert s["available_space"] == n.storage.space and s["connected"] is True
        assert s["connection_status"] == f"Connected to tcp:127.0.0.1:{n.tub.test_port} via tcp"
        assert s["since"] is not None and s["last_received_data"] is not None
        assert s["permutation_seed"] == n.seed_b32
        # the seed is the key's base32 text, Tahoe's quirk
        assert broker.get_server(n.server_id).permutation_seed == n.server_id[3:]  # type: ignore[union-attr]
    si = bytes(range(16))
    order = permuted_servers(si, [(n.server_id, n.server_id[3:]) for n in nodes])
    assert [s.server_id for s in call(broker.get_servers_for_psi, si)] == order
    assert [s.server_id for s in broker.get_all_servers()] == sorted(want)
    server = broker.get_server(nodes[0].server_id)
    assert isinstance(server, GridServer) and server.storage is not None and len(server.tubid) == 20


def test_two_introducers_merged(harness: Harness, tmp_path: pathlib.Path) -> None:
    intro1, intro2 = _introducer(harness), _introducer(harness)
    a, b, both = FakeNode(harness, "a"), FakeNode(harness, "b"), FakeNode(harness, "both")
    a.announce_to(intro1, tmp_path)
    b.announce_to(intro2, tmp_path)
    both.announce_to(intro1, tmp_path)
    both.announce_to(intro2, tmp_path)
    broker = _client(harness, [intro1, intro2], tmp_path)
    want = {a.server_id, b.server_id, both.server_id}
    harness.wait_for(lambda: _connected_ids(broker) == want, what="servers from both introducers")
    assert len(broker.get_all_servers()) == 3


def test_cache_reaches_servers_when_introducer_is_down(harness: Harness, tmp_path: pathlib.Path) -> None:
    intro_tub = harness.tub()
    intro = IntroducerService()
    harness.start(intro)
    intro_furl = call(intro_tub.registerReference, intro)
    nodes = [FakeNode(harness, f"node{i}") for i in range(2)]
    ics = [n.announce_to(intro_furl, tmp_path) for n in nodes]
    broker = _client(harness, [intro_furl], tmp_path)
    want = {n.server_id for n in nodes}
    harness.wait_for(lambda: _connected_ids(broker) == want)
    for ic in ics:
        harness.stop(ic)
    harness.stop(broker)
    harness.stop(intro)
    harness.stop_tub(intro_tub)

    again = _client(harness, [intro_furl], tmp_path)  # same cache file
    assert {s.server_id for s in again.get_all_servers()} == want
    harness.wait_for(lambda: _connected_ids(again) == want, what="servers from the cache")


def test_static_servers_win_over_announcements(harness: Harness, tmp_path: pathlib.Path) -> None:
    n = FakeNode(harness, "static")
    tub = harness.tub()
    broker = StorageBroker(foolscap_connector(tub))
    ann = {"anonymous-storage-FURL": n.furl, "nickname": "from-yaml", "service-name": "storage"}
    call(broker.set_static_servers, {n.server_id: StaticServer(n.server_id, ann)})
    harness.start(broker)
    harness.wait_for(lambda: _connected_ids(broker) == {n.server_id})
    server = broker.get_server(n.server_id)
    assert server is not None and server.static and server.nickname == "from-yaml"
    call(broker.got_announcement, n.server_id, dict(n.ann(), nickname="announced", **{"service-name": "storage"}))
    assert broker.get_server(n.server_id) is server
    # no permutation-seed-base32 in the yaml: the seed comes from the v0- id (the raw key)
    assert server.permutation_seed == n.key.verifying_key().raw()


def test_reconnects_when_a_server_returns(harness: Harness, tmp_path: pathlib.Path) -> None:
    n = FakeNode(harness, "bouncy")
    tub = harness.tub()
    broker = StorageBroker(foolscap_connector(tub))
    harness.start(broker)
    call(broker.got_announcement, n.server_id, dict(n.ann(), **{"service-name": "storage"}))
    harness.wait_for(lambda: _connected_ids(broker) == {n.server_id})
    server = broker.get_server(n.server_id)
    assert server is not None
    first_client = server.storage

    n.stop()
    harness.wait_for(lambda: not server.is_connected(), what="the loss to be noticed")
    s = call(server.status)
    assert s["connected"] is False and s["last_loss_time"] is not None
    assert not s["connection_status"].startswith("Connected")
    assert call(broker.get_servers_for_psi, b"\x00" * 16) == []

    n.restart()
    call(broker.try_to_connect)
    harness.wait_for(lambda: server.is_connected(), timeout=15, what="the reconnection")
    assert server.storage is not first_client
    assert call(broker.get_servers_for_psi, b"\x00" * 16) == [server]


def test_changed_announcement_replaces_the_server(harness: Harness, tmp_path: pathlib.Path) -> None:
    old, new = FakeNode(harness, "old"), FakeNode(harness, "new")
    tub = harness.tub()
    broker = StorageBroker(foolscap_connector(tub))
    harness.start(broker)
    sid = old.server_id
    call(broker.got_announcement, sid, dict(old.ann(), seqnum=1, **{"service-name": "storage"}))
    harness.wait_for(lambda: _connected_ids(broker) == {sid})
    first = broker.get_server(sid)
    same = dict(old.ann(), seqnum=1, **{"service-name": "storage"})
    call(broker.got_announcement, sid, same)
    assert broker.get_server(sid) is first
    call(broker.got_announcement, sid, dict(new.ann(), seqnum=2, nickname="moved", **{"service-name": "storage"}))
    server = broker.get_server(sid)
    assert server is not first and server is not None and server.furl == new.furl
    harness.wait_for(lambda: server.is_connected())
    assert server.nickname == "moved"


def test_unusable_announcements_are_ignored(harness: Harness) -> None:
    broker = StorageBroker(foolscap_connector(Tub()))  # never started: nothing connects
    broker.got_announcement(b"v0-x", {"service-name": "storage"})
    broker.got_announcement(b"v0-y", {"service-name": "storage", "anonymous-storage-FURL": "pb://!!@x/y"})
    broker.got_announcement(b"v0-z", {"service-name": "storage", "permutation-seed-base32": "NOPE",
                                      "anonymous-storage-FURL": "pb://u33m4y7klhz3bypswqkozwetvabelhxt@x/y"})
    assert broker.get_all_servers() == []


def test_available_space_fallbacks() -> None:
    v1 = b"http://allmydata.org/tahoe/protocols/storage/v1"
    assert ServerVersion.parse({v1: {b"available-space": 5}}).space == 5
    assert ServerVersion.parse({v1: {b"available-space": None, b"maximum-immutable-share-size": 7}}).space == 7
    assert ServerVersion.parse({v1: {}}).space == 2**32 - 1


class _Connection:
    """A ServerConnection that connects at once, handing over `version` (or None)."""

    protocol = "test"

    def __init__(self, client: object, version: ServerVersion | None) -> None:
        self.client, self.version = client, version

    def start(self, on_connected, on_lost) -> None:
        on_connected(self.client, self.version)

    def stop(self) -> None:
        pass


class _CountingClient:
    def __init__(self) -> None:
        self.asked = 0

    def get_version(self):
        from twisted.internet import defer

        self.asked += 1
        return defer.succeed(ServerVersion(available_space=99))


def test_a_version_the_connection_brings_is_not_asked_again() -> None:
    ann = {"service-name": "storage", "anonymous-storage-FURL": "pb://u33m4y7klhz3bypswqkozwetvabelhxt@x/y",
           "permutation-seed-base32": "aaaa"}
    for brought, asks in ((ServerVersion(available_space=7), 0), (None, 1)):
        server = GridServer(b"v0-" + b"a" * 52, ann, static=False, clock=lambda: 1.0)
        client = _CountingClient()
        connected: list = []
        server.start_connecting(_Connection(client, brought), connected.append)
        assert client.asked == asks
        assert connected == [server] and server.storage is client
        assert server.version == (brought if brought is not None else ServerVersion(available_space=99))
