"""check, verify and repair of mutable files (SDMF and MDMF) on a real 10-server grid
(LocalGrid): Tahoe's mutable check rules and JSON, deleted and corrupt shares, the
servers quarantining what verify reports, repair without a new sequence number when only
shares are missing, republishing when versions disagree, and the write cap it needs."""

import os

import pytest
from twisted.internet import defer

from shoal.checker import FileChecker
from shoal.formats.mutable_container import DATA_OFFSET
from shoal.formats.mutable_share import unpack_header
from shoal.mutable import MODE_CHECK, MutableClient
from shoal.mutable.servermap import update_servermap
from shoal.storage.layout import si_b2a
from shoal.storage.quarantine import quarantine_root
from shoal.testing.local_grid import LocalGrid
from tests.unit.mutable.vector_keys import fresh_key

K, N = 3, 10
LEASE = b"mutable-check-tests-lease-secret"


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


@pytest.fixture(scope="module")
def client(grid):
    return MutableClient(grid.broker, lease_secret=LEASE, k=K, n=N)


def call(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


def checker(grid, client) -> FileChecker:
    return FileChecker(grid.broker, lease_secret=LEASE, mutable=client)


def create(grid, client, fmt: str, data: bytes):
    return call(grid, client.create, data, format=fmt, private_key=fresh_key())


def share_paths(grid, si) -> dict[int, tuple[int, str]]:
    out = {}
    for index, server in enumerate(grid.servers):
        for path in server.share_files():
            if os.sep + si_b2a(si) + os.sep in path:
                out[int(os.path.basename(path))] = (index, path)
    return out


def seqnums(grid, node) -> set[int]:
    smap = call(grid, update_servermap, grid.broker, node.storage_index, node.cap.fingerprint, mode=MODE_CHECK)
    return {info.prefix.seqnum for info in smap.shares.values()}


def flip_block(path: str) -> None:
    """One byte of the share's first block, inside its slot container."""
    with open(path, "r+b") as handle:
        handle.seek(DATA_OFFSET)
        _, offsets = unpack_header(handle.read(200))
        at = DATA_OFFSET + offsets.share_data + (16 if offsets.version == 1 else 0) + 3
        handle.seek(at)
        byte = handle.read(1)[0]
        handle.seek(at)
        handle.write(bytes([byte ^ 0x20]))


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_a_healthy_mutable_file_in_tahoes_shape(grid, client, fmt):
    node = create(grid, client, fmt, os.urandom(5000))
    for verify in (False, True):
        results = call(grid, checker(grid, client).check, node.cap, verify=verify)
        doc = results.to_json()["results"]
        assert doc["healthy"] is True and results.summary == "Healthy"
        assert (doc["count-shares-good"], doc["count-good-share-hosts"], doc["count-happiness"]) == (10, 10, 10)
        assert (doc["count-recoverable-versions"], doc["count-unrecoverable-versions"]) == (1, 0)
        assert doc["count-wrong-shares"] == 0 and doc["count-corrupt-shares"] == 0
        assert len(doc["sharemap"]) == 10
        assert all(key.startswith("seq1-") and "-sh" in key for key in doc["sharemap"])
        assert len(doc["servers-responding"]) == 10


@pytest.mark.parametrize("fmt", ["SDMF", "MDMF"])
def test_missing_and_corrupt_shares_are_restored_without_a_new_seqnum(grid, client, fmt):
    data = os.urandom(300_000 if fmt == "MDMF" else 20_000)
    node = create(grid, client, fmt, data)
    paths = share_paths(grid, node.storage_index)
    os.unlink(paths[0][1])
    os.unlink(paths[8][1])
    flip_block(paths[5][1])
    fc = checker(grid, client)
    plain = call(grid, fc.check, node.cap)
    assert plain.count_shares_good == 8 and not plain.healthy  # the corrupt block is not read
    result = call(grid, fc.check_and_repair, node.cap, verify=True)
    pre, post = result.pre_repair, result.post_repair
    assert pre.count_shares_good == 7 and pre.corrupt_shares == ((grid.servers[paths[5][0]].server_id, 5),)
    quarantine = os.path.join(quarantine_root(grid.servers[paths[5][0]].storage.layout), si_b2a(node.storage_index))
    assert os.listdir(quarantine)  # its server proved the damage and moved the share aside
    assert result.repair_attempted and result.repair_successful
    assert post.healthy and post.count_shares_good == 10 and post.count_good_share_hosts == 10
    assert "restored 3 share(s)" in post.report[-1]
    assert seqnums(grid, node) == {1}
    assert call(grid, fc.check, node.cap, verify=True).healthy
    assert call(grid, client.node_for(node.readonly_cap).download_best_version) == data


def test_an_old_version_on_some_servers_is_republished(grid, client):
    node = create(grid, client, "SDMF", b"version one")
    paths = share_paths(grid, node.storage_index)
    saved = {sh: open(path, "rb").read() for sh, (_i, path) in paths.items() if sh in (1, 2)}
    call(grid, node.overwrite, b"version two")
    for sh, content in saved.items():  # roll two servers back to version one
        with open(paths[sh][1], "wb") as handle:
            handle.write(content)
    fc = checker(grid, client)
    pre = call(grid, fc.check, node.cap)
    assert not pre.healthy and pre.count_wrong_shares == 2 and pre.count_shares_good == 8
    assert pre.count_unrecoverable_versions == 1
    result = call(grid, fc.check_and_repair, node.cap)
    assert result.repair_successful and result.post_repair.count_shares_good == 10
    assert seqnums(grid, node) == {3}
    assert call(grid, node.download_best_version) == b"version two"


def test_repair_needs_the_write_cap(grid, client):
    node = create(grid, client, "MDMF", b"read only here")
    os.unlink(share_paths(grid, node.storage_index)[4][1])
    result = call(grid, checker(grid, client).check_and_repair, node.readonly_cap)
    assert result.repair_attempted and not result.repair_successful
    assert "write cap" in (result.repair_problem or "")
    assert call(grid, checker(grid, client).check, node.verifier_cap).count_shares_good == 9
