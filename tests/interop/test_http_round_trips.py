"""Round trips of the small-file path over HTTPS, counted at the transport, against Tahoe 1.20 nodes.

An in-process shoal client (broker with storage_connector, fed by a Tahoe
introducer) uploads and downloads a small immutable file on four Tahoe
storage nodes. Every HTTP request is recorded: the client must add none of
its own — one POST per allocate, one PATCH per bucket write, nothing for
close, one GET per bucket read and one share listing per get_buckets.
"""

import collections
import io
import os
import threading
import time
import types

import pytest
from twisted.internet import defer

from shoal.caps.parse import parse_cap
from shoal.grid import http_buckets, http_client
from shoal.grid.https_pool import ServerPool
from shoal.grid.storage_broker import StorageBroker, storage_connector
from shoal.immutable.params import EncodingParams
from shoal.introducer.client import IntroducerClient
from shoal.node.files import ClientFiles
from shoal.testing import reactor_thread
from tests.interop.conftest import TahoeNode, tahoe

pytestmark = pytest.mark.timeout(300)


class Recorder:
    """Counts HTTP requests (by method and kind of path) and StorageClient calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.http: collections.Counter[tuple[str, str]] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()

    def kind(self, target: bytes) -> str:
        parts = target.decode().split("/")[3:]  # after /storage/v1
        if parts[0] == "immutable" and len(parts) == 3:
            return "immutable/:si/shares" if parts[2] == "shares" else "immutable/:si/:shnum"
        return "/".join(parts[:1] + [":si"] * (len(parts) > 1) + parts[2:])

    def clear(self) -> None:
        self.http.clear()
        self.calls.clear()


@pytest.fixture(scope="module")
def tahoe_nodes(peer, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rt")
    tahoe(peer, "create-introducer", "--hostname", "127.0.0.1", str(tmp / "intro"))
    nodes = [TahoeNode(peer, tmp / "intro", wait_for="private/introducer.furl")]
    try:
        furl = (tmp / "intro" / "private" / "introducer.furl").read_text().strip()
        for i in range(4):
            tahoe(peer, "create-node", "--hostname", "127.0.0.1", "--webport", "none", "--introducer", furl,
                  str(tmp / f"s{i}"))
        nodes += [TahoeNode(peer, tmp / f"s{i}") for i in range(4)]
        yield furl
    finally:
        for n in reversed(nodes):
            n.stop()


@pytest.mark.parametrize("size", [3000, 1_100_000])
def test_client_adds_no_round_trips(tahoe_nodes, monkeypatch, size):
    rec = Recorder()
    real_request = ServerPool.request

    def request(self, req, flight=None):
        with rec.lock:
            rec.http[(req.method.decode(), rec.kind(req.target))] += 1
        return real_request(self, req, flight)

    monkeypatch.setattr(ServerPool, "request", request)
    for cls, names in ((http_buckets.HttpBucketWriter, ("write", "close")),
                       (http_buckets.HttpBucketReader, ("read",)),
                       (http_client.HttpStorageClient, ("allocate_buckets", "get_buckets", "read_unlisted"))):
        for name in names:
            real = getattr(cls, name)

            def counted(self, *args, _real=real, _name=name):
                rec.calls[_name] += 1
                return _real(self, *args)

            monkeypatch.setattr(cls, name, counted)

    made: dict = {}

    def start():
        made["broker"] = broker = StorageBroker(storage_connector(object()))
        made["ic"] = ic = IntroducerClient(_tub(made), tahoe_nodes, nickname="rt", sequencer=lambda: (1, "x"))
        broker.use_introducer(ic)
        ic.startService()
        broker.startService()

    reactor_thread.call(start)
    broker = made["broker"]
    try:
        reactor_thread.call(lambda: broker.when_connected_enough(4))
        assert {s.protocol for s in broker.get_connected_servers()} == {"HTTP"}
        identity = types.SimpleNamespace(convergence_secret=os.urandom(32), lease_secret=os.urandom(32))
        files = ClientFiles(broker, EncodingParams(2, 3, 4), identity)
        data = os.urandom(size)
        rec.clear()
        t = time.perf_counter()
        result = reactor_thread.call(lambda: defer.ensureDeferred(files.upload(io.BytesIO(data), len(data))))
        up_time = time.perf_counter() - t
        up_http, up_calls = dict(rec.http), dict(rec.calls)
        assert up_http.get(("POST", "immutable/:si"), 0) == up_calls["allocate_buckets"]
        assert up_http[("PATCH", "immutable/:si/:shnum")] == up_calls["write"]
        if size < 10_000:
            assert up_calls["write"] == 4  # one PATCH per share: the whole small share at once
        assert up_calls["close"] == 4
        assert sum(n for (m, _), n in up_http.items() if m not in ("POST", "PATCH")) == up_http.get(
            ("GET", "immutable/:si/shares"), 0) + up_http.get(("GET", "version"), 0)
        rec.clear()
        t = time.perf_counter()
        got = reactor_thread.call(lambda: defer.ensureDeferred(_download(files, result.cap)))
        down_time = time.perf_counter() - t
        assert got == data
        down_http, down_calls = dict(rec.http), dict(rec.calls)
        assert down_http[("GET", "immutable/:si/shares")] == down_calls["get_buckets"]
        # reads of listed shares, and the first round's guessed reads of shares 0..k-1 of a small file
        reads = down_calls.get("read", 0) + down_calls.get("read_unlisted", 0)
        assert down_http[("GET", "immutable/:si/:shnum")] == reads
        if size < 10_000:
            assert down_calls.get("read_unlisted", 0) >= 2  # k = 2: one round trip on a healthy grid
        print(f"{size} bytes: upload {up_time * 1e3:.0f} ms {up_http}; download {down_time * 1e3:.0f} ms {down_http}")
    finally:
        def stop():
            return defer.DeferredList([defer.maybeDeferred(s.stopService)
                                       for s in (made["broker"], made["ic"], made["tub"])])
        reactor_thread.call(stop)


def _tub(made: dict):
    from foolscap.api import Tub

    made["tub"] = tub = Tub()
    tub.startService()
    return tub


async def _download(files: ClientFiles, cap) -> bytes:
    out = io.BytesIO()
    await files.download(parse_cap(cap), out.write)
    return out.getvalue()
