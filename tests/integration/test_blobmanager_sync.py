"""The BlobManager (shoal.apps.blobmanager) against the blob service of a real
client node (tahoe.cfg [blobs] enabled) on a real grid of node processes:
client-side encryption as the server stores it, flags/count/listing, the
/stream path, priorities, and a sync that survives a storage server killed in
the middle and converges once it returns."""

import os
import threading
import urllib.request

import pytest
from twisted.internet import defer

from shoal.apps.blobmanager import (
    BlobManager,
    InvalidBlobError,
    InvalidFlagsError,
    Priority,
    RetryPolicy,
    SyncStatus,
    decrypt_blob,
    tag_of,
)
from shoal.apps.blobs import token_header
from shoal.testing.grid import Grid, shares_args
from shoal.testing.processes import start_node
from shoal.testing.reactor_thread import call, reactor
from shoal.testing.wait import wait_until

USER, TOKEN = "alice", "alice-token-1234"
SECRET = os.urandom(512)
FAST = RetryPolicy(first=0.2, step=0.3, maximum=1.0)


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Grid:
    # happy=3 of 3 servers: with one server gone, uploads fail until it is back
    g = Grid(str(tmp_path_factory.mktemp("blobmanager")))
    try:
        g.start_introducer()
        g.add_storage_nodes(f"storage{i + 1}" for i in range(3))
        node = g.add_client("client", *shares_args(2, 3, 3),
                            config={("blobs", "enabled"): "true", ("blobs", "port"): "tcp:0:interface=127.0.0.1"},
                            files={os.path.join("private", "blobs.tokens"): f"{USER}:{TOKEN}\nbob:bob-token\n"})
        g.client = node
        yield g
    finally:
        g.stop()


@pytest.fixture(scope="module")
def blobs_url(grid) -> str:
    path = os.path.join(grid.client.nodedir, "private", "blobs.url")
    wait_until(lambda: os.path.exists(path), 30, "the blob service to write private/blobs.url")
    with open(path, encoding="utf-8") as f:
        return f.read().strip().rstrip("/") + "/"


def run(fn, *args, **kw):
    return call(lambda: defer.ensureDeferred(fn(*args, **kw)))


def manager(tmp_path, url, name, secret=SECRET, user=USER, token=TOKEN, **kw) -> BlobManager:
    return call(lambda: BlobManager(str(tmp_path / name), url + "blobs/", None, secret, user, token, retry=FAST, **kw))


def raw_get(url: str, blob_id: str, namespace: str = "") -> tuple[bytes, str]:
    q = f"?namespace={namespace}" if namespace else ""
    req = urllib.request.Request(f"{url}blobs/{USER}/{blob_id}{q}", headers={"Authorization": token_header(USER, TOKEN)})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), r.headers["Tag"]


def test_server_sees_ciphertext_and_wrong_key_fails(blobs_url, tmp_path):
    m = manager(tmp_path, blobs_url, "dev1")
    secret_text = b"Dear Bob, the launch code is 0000. " * 50
    run(m.put, "mail-attachment-1", secret_text)
    assert m.local_list_status(SyncStatus.SYNCED) == ["mail-attachment-1"]
    stored, tag = raw_get(blobs_url, "mail-attachment-1")
    assert b"launch code" not in stored and len(stored) > len(secret_text)
    assert tag == tag_of(stored)  # the server's Tag header is our GCM tag
    assert decrypt_blob(SECRET, "mail-attachment-1", stored) == secret_text
    # the local cache on disk holds ciphertext too
    with open(m.local.path, "rb") as f:
        assert b"launch code" not in f.read()
    # another device with the right secret decrypts; one with a wrong secret cannot
    good = manager(tmp_path, blobs_url, "dev2")
    assert run(good.get, "mail-attachment-1").read() == secret_text
    bad = manager(tmp_path, blobs_url, "dev3", secret=os.urandom(512))
    with pytest.raises(InvalidBlobError, match="MAC"):
        run(bad.get, "mail-attachment-1")
    assert bad.local_list_status(SyncStatus.FAILED_DOWNLOAD) == ["mail-attachment-1"]
    for mm in (m, good, bad):
        run(mm.close)


def test_flags_count_listing_delete(blobs_url, tmp_path):
    m = manager(tmp_path, blobs_url, "flags")
    ns = "mx"
    for i in range(3):
        run(m.put, f"msg{i}", b"body %d" % i, namespace=ns)
    assert run(m.count, ns) == {"count": 3}
    run(m.set_flags, "msg1", ["PENDING", "PROCESSING"], namespace=ns)
    assert sorted(run(m.get_flags, "msg1", namespace=ns)) == ["PENDING", "PROCESSING"]
    assert run(m.get_flags, "msg0", namespace=ns) == []
    with pytest.raises(InvalidFlagsError):
        run(m.set_flags, "msg1", ["BOGUS"], namespace=ns)
    assert run(m.remote_list, ns, filter_flag="PROCESSING") == ["msg1"]
    run(m.delete, "msg2", namespace=ns)
    assert sorted(run(m.remote_list, ns)) == ["msg0", "msg1"]
    assert run(m.remote_list, ns, deleted=True) == ["msg2"]
    assert run(m.count, ns) == {"count": 2}
    assert sorted(m.local_list(ns)) == ["msg0", "msg1"]
    # a second device applies the remote deletion and fetches the rest
    other = manager(tmp_path, blobs_url, "flags2")
    progress = run(other.sync, ns)
    assert progress["SYNCED"] == 2 and sum(progress.values()) == 2
    assert run(other.get, "msg1", namespace=ns).read() == b"body 1"
    run(m.close)
    run(other.close)


def test_stream_path_and_priorities(blobs_url, tmp_path):
    ns = "stream"
    up = manager(tmp_path, blobs_url, "s1", upload_on_put=False)
    blobs = {f"small{i:03d}": os.urandom(200 + i) for i in range(60)}
    for blob_id, data in blobs.items():
        run(up.put, blob_id, data, namespace=ns)
    assert len(up.local_list_status(SyncStatus.PENDING_UPLOAD, ns)) == 60
    requests_before = len(up.transfers)
    assert run(up.sync, ns)["SYNCED"] == 60
    assert len(up.transfers) - requests_before == 60
    assert sorted(run(up.remote_list, ns)) == sorted(blobs)
    # downloads through /stream on another device
    down = manager(tmp_path, blobs_url, "s2")
    run(down.sync, ns)
    for blob_id, data in blobs.items():
        assert run(down.get_bytes, blob_id, namespace=ns) == data
    # priorities: one transfer at a time, per-blob path, highest priority first
    prio = manager(tmp_path, blobs_url, "s3", use_stream=False, concurrent_transfers_limit=1)
    run(prio.refresh_sync_status_from_server, ns)
    assert len(prio.local_list_status(SyncStatus.PENDING_DOWNLOAD, ns)) == 60
    prio.set_priority("small050", Priority.URGENT, ns)
    prio.set_priority("small010", Priority.HIGH, ns)
    prio.set_priority("small000", Priority.LOW, ns)
    run(prio.fetch_missing, ns)
    order = [blob_id for kind, blob_id in prio.transfers if kind == "download"]
    assert order[:2] == ["small050", "small010"] and order[-1] == "small000" and len(order) == 60
    for mm in (up, down, prio):
        run(mm.close)


def test_sync_survives_a_storage_server_killed_mid_sync(grid, blobs_url, tmp_path):
    ns = "outage"
    m = manager(tmp_path, blobs_url, "o1", use_stream=False, upload_on_put=False)
    blobs = {f"att{i:02d}": os.urandom(10_000) for i in range(30)}
    for blob_id, data in blobs.items():
        run(m.put, blob_id, data, namespace=ns)
    done = threading.Event()
    result: list = []

    def start() -> None:
        d = defer.ensureDeferred(m.sync(ns))
        d.addBoth(lambda r: (result.append(r), done.set()))

    reactor.callFromThread(start)
    wait_until(lambda: len(m.transfers) >= 4 or done.is_set(), 60, "the sync's first uploads", interval=0.02)
    assert not done.is_set(), "sync finished before the server could be killed"
    victim = grid.storage[2]
    victim.kill9()
    # the outage is seen: an upload failed and the sync pauses to retry
    wait_until(lambda: m.retries > 0 or done.is_set(), 60, "the sync to retry after the server was killed")
    uploaded_during_outage = len(m.transfers)
    grid.storage[2] = start_node(victim.nodedir)
    assert done.wait(120), "sync did not finish after the server came back"
    progress = result[0]
    assert isinstance(progress, dict), progress
    assert m.retries > 0  # the outage was seen and retried with pauses
    assert uploaded_during_outage < len(blobs)
    assert progress["SYNCED"] == len(blobs) and sum(progress.values()) == len(blobs)
    assert sorted(run(m.remote_list, ns)) == sorted(blobs)
    # everything converged: a fresh device gets every blob intact
    fresh = manager(tmp_path, blobs_url, "o2")
    assert run(fresh.sync, ns)["SYNCED"] == len(blobs)
    for blob_id, data in blobs.items():
        assert run(fresh.get_bytes, blob_id, namespace=ns) == data
    run(m.close)
    run(fresh.close)
