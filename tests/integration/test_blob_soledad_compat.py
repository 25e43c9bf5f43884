"""Code written for Soledad's client runs unchanged against shoal's BlobManager and
blob service (issue #19): the constructor called positionally as Soledad's
``api.py`` calls it, ``put(BlobDoc, size, priority='urgent')``, ``get`` giving a
file object, ``count`` giving ``{"count": N}``, ``delete`` of a missing blob
raising BlobNotFoundError; and blobs encrypted by Soledad's scheme
(tests/soledad_scheme.py, written from its description) read by shoal's
client, and the other way round, through a real client node on the shared grid."""

import io
import os
import types
import urllib.request

import pytest
from twisted.internet import defer

from shoal.apps.blobmanager import (
    BlobDoc,
    BlobManager,
    BlobNotFoundError,
    Priority,
    RetryPolicy,
    SyncStatus,
)
from shoal.apps.blobs import token_header
from shoal.testing.processes import stop_all
from shoal.testing.reactor_thread import call
from tests import soledad_scheme
from tests.integration.test_blobs import TOKENS, start_blob_client

USER = "alice"
SECRET = os.urandom(512)  # Soledad's remote secret
LOCAL_KEY = os.urandom(32)  # Soledad's SQLCipher key (accepted, not needed: the cache holds ciphertext)
FAST = RetryPolicy(first=0.2, step=0.3, maximum=1.0, max_attempts=20)


@pytest.fixture(scope="module")
def blobs(shared_grid):
    node, url = start_blob_client(shared_grid, "soledad-compat")
    try:
        yield types.SimpleNamespace(url=url.rstrip("/") + "/", node=node)
    finally:
        stop_all([node])


def run(fn, *args, **kw):
    return call(lambda: defer.ensureDeferred(fn(*args, **kw)))


def soledad_style_manager(tmp_path, blobs, name: str) -> BlobManager:
    # exactly the positional call of Soledad's api.py: (path, url, key, remote_secret, uuid, token, cert)
    return call(lambda: BlobManager(str(tmp_path / name), blobs.url + "blobs/", LOCAL_KEY, SECRET, USER,
                                    TOKENS[USER], None, retry=FAST))


def raw(blobs, method: str, blob_id: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"{blobs.url}blobs/{USER}/{blob_id}", data=body, method=method,
                                 headers={"Authorization": token_header(USER, TOKENS[USER])})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_soledad_calls_run_unchanged(tmp_path, blobs):
    m = soledad_style_manager(tmp_path, blobs, "dev1")
    assert (m.concurrent_transfers_limit, m.concurrent_writes_limit, m.max_decrypt_retries) == (3, 100, 3)
    content = b"attachment bytes " * 300
    doc = BlobDoc(io.BytesIO(content), "compat-att-1")
    run(m.put, doc, len(content), priority="urgent")
    assert m.local_list_status(SyncStatus.SYNCED) == ["compat-att-1"]
    fd = run(m.get, "compat-att-1", priority="high")
    assert fd.read() == content
    assert run(m.count) == {"count": 1}
    assert run(m.remote_list) == ["compat-att-1"]
    run(m.set_flags, "compat-att-1", ["PROCESSING"])
    assert run(m.get_flags, "compat-att-1") == ["PROCESSING"]
    with pytest.raises(ValueError):
        run(m.put, BlobDoc(io.BytesIO(b"x"), "compat-bad-prio"), 1, priority="critical")
    with pytest.raises(BlobNotFoundError):
        run(m.delete, "compat-never-existed")
    run(m.delete, "compat-att-1")
    assert run(m.count) == {"count": 0}
    assert run(m.remote_list, deleted=True) == ["compat-att-1"]
    # a fresh device with the same secret: get of an id nobody has is None
    other = soledad_style_manager(tmp_path, blobs, "dev2")
    assert run(other.get, "compat-att-1") is None
    for mm in (m, other):
        run(mm.close)


def test_blobs_cross_between_soledads_scheme_and_shoal(tmp_path, blobs):
    ns_free = "cross"
    # a blob as Soledad's client stores it, PUT raw: shoal's BlobManager reads it
    plaintext = os.urandom(5000)
    assert raw(blobs, "PUT", f"{ns_free}-from-soledad", soledad_scheme.encrypt(SECRET, f"{ns_free}-from-soledad",
                                                                              plaintext))[0] == 200
    m = soledad_style_manager(tmp_path, blobs, "cross")
    assert run(m.get, f"{ns_free}-from-soledad", priority=Priority.LOW).read() == plaintext
    # a blob put through shoal's BlobManager: Soledad's scheme decrypts what the server holds
    mine = b"seventeen bytes!!"
    run(m.put, f"{ns_free}-from-shoal", mine)
    status, stored = raw(blobs, "GET", f"{ns_free}-from-shoal")
    assert status == 200
    assert soledad_scheme.decrypt(SECRET, f"{ns_free}-from-shoal", stored) == mine
    assert soledad_scheme.declared_size(stored) == 4096
    run(m.close)
