"""HttpStorageClient against a real Tahoe-LAFS 1.20 storage node over HTTPS (the reference server).

The node is reached at the NURL it announces: its certificate's SPKI hash, the
storage FURL's location and swissnum, fragment v=1.
"""

import base64
import os
import subprocess

import pytest

from shoal.crypto import hashes
from shoal.grid.http_client import HttpStorageClient
from shoal.grid.storage_client import ServerProtocolError, ServerRefused, ServerUnreachable
from shoal.protocol.nurl import Nurl
from shoal.testing import reactor_thread
from shoal.testing.sync_storage import SyncStorage
from tests.interop.conftest import TahoeNode, tahoe_nurl
from tests.interop.test_tahoe_interop import lease_count, lease_secrets, make_file

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def tahoe_storage(peer, tmp_path_factory):
    nodedir = tmp_path_factory.mktemp("tahoe-http") / "storage"
    subprocess.run([str(peer / "tahoe"), "create-node", "--hostname", "127.0.0.1", "--webport", "none",
                    str(nodedir)], check=True, capture_output=True)
    node = TahoeNode(peer, nodedir)
    yield node
    node.stop()


def connect(node, spki: bytes | None = None) -> tuple[SyncStorage, HttpStorageClient, bytes]:
    nurl = Nurl.parse(tahoe_nurl(node.nodedir, node.furl))
    client = HttpStorageClient(nurl.host, nurl.port, spki if spki is not None else nurl.spki_hash.encode(),
                               nurl.swissnum.encode(),
                               "tahoe", reactor_thread.reactor)
    seed = base64.b32decode(node.furl.removeprefix("pb://").split("@")[0].upper())  # the lease seed: the tub id
    return SyncStorage(client, on_close=client.close), client, seed


def test_immutable_round_trip_over_http(tahoe_storage):
    c, client, seed = connect(tahoe_storage)
    version = c.get_version()
    v1 = version[b"http://allmydata.org/tahoe/protocols/storage/v1"]
    assert v1[b"fills-holes-with-zero-bytes"] is True
    assert version[b"application-version"].startswith(b"tahoe-lafs/1.20")
    shares, result = make_file()
    si = result.storage_index
    renew, cancel = lease_secrets(si, seed)
    already, writers = c.allocate_buckets(si, renew, cancel, set(range(4)), len(shares[0]))
    assert already == set() and sorted(writers) == [0, 1, 2, 3]
    before = client.pool.requests_sent
    for sh, w in writers.items():
        half = len(shares[sh]) // 2
        w.write(half, shares[sh][half:])
        w.write(0, shares[sh][:half])
        w.close()
    assert client.pool.requests_sent - before == 8  # two PATCHes per share; close sends nothing
    already, writers = c.allocate_buckets(si, renew, cancel, {0, 1, 9}, len(shares[0]))
    assert already == {0, 1, 2, 3} and sorted(writers) == [9]  # the server names every share it has
    writers[9].abort()
    readers = c.get_buckets(si)
    assert sorted(readers) == [0, 1, 2, 3]
    for sh, r in readers.items():
        assert r.read(0, len(shares[sh])) == shares[sh]
        assert r.read(10, 20) == shares[sh][10:30]
        assert r.read(len(shares[sh]) - 5, 100) == shares[sh][-5:]  # overrun: fewer bytes
        assert r.read(len(shares[sh]) + 10, 100) == b""  # past the end: 204
    c.add_lease(si, renew, cancel)
    c.add_lease(b"\x00" * 16, renew, cancel)  # nothing there: quietly nothing
    readers[0].advise_corrupt_share(b"test says so")
    c.advise_corrupt_share(b"immutable", si, 7, b"no such share")  # 404: quiet
    assert lease_count(tahoe_storage.nodedir, si, 0) == 1
    c.close()


def test_mutable_round_trip_over_http(tahoe_storage):
    c, client, seed = connect(tahoe_storage)
    msi = os.urandom(16)
    renew, cancel = lease_secrets(msi, seed)
    we = hashes.ssk_write_enabler_hash(b"W" * 16, seed)
    ok, reads = c.slot_testv_and_readv_and_writev(
        msi, (we, renew, cancel), {0: ([], [(0, b"mutable v1")], None), 3: ([], [(0, b"three")], None)}, [(0, 4)])
    assert ok and reads == {}
    assert c.slot_readv(msi, [], [(0, 10), (8, 100)]) == {0: [b"mutable v1", b"v1"], 3: [b"three", b""]}
    assert c.slot_readv(msi, [3, 5], [(1, 2)]) == {3: [b"hr"]}
    ok, reads = c.slot_testv_and_readv_and_writev(
        msi, (we, renew, cancel), {0: ([(0, 10, b"eq", b"mutable XX")], [(0, b"mutable v2")], None)}, [(0, 10)])
    assert not ok and reads == {0: [b"mutable v1"], 3: [b"three"]}
    ok, _ = c.slot_testv_and_readv_and_writev(
        msi, (we, renew, cancel), {0: ([(0, 10, b"eq", b"mutable v1")], [(0, b"mutable v2")], None)}, [])
    assert ok
    assert c.slot_readv(msi, [0], [(0, 10)]) == {0: [b"mutable v2"]}
    with pytest.raises(ServerRefused) as caught:
        c.slot_testv_and_readv_and_writev(msi, (b"w" * 32, renew, cancel), {0: ([], [(0, b"x")], None)}, [])
    assert "401" in caught.value.reason
    c.advise_corrupt_share(b"mutable", msi, 0, b"test says so")
    c.close()


def test_wrong_pin_refused_before_any_request(tahoe_storage):
    c, client, _ = connect(tahoe_storage, spki=b"x" * 43)
    with pytest.raises(ServerUnreachable) as caught:
        c.get_version()
    assert "certificate does not match" in caught.value.reason
    assert client.pool.connections_made == 0
    c.close()


def test_bad_swissnum_refused(tahoe_storage):
    c, client, _ = connect(tahoe_storage)
    client._http._auth = b"Tahoe-LAFS " + b"d3Jvbmc="
    with pytest.raises(ServerRefused) as caught:
        c.get_version()
    assert "HTTP 401" in caught.value.reason
    assert not isinstance(caught.value, ServerProtocolError)
    c.close()
