"""check and verify (shoal.checker) on a real 10-server grid (LocalGrid): counts after
deleted shares and stopped servers, exactly the damaged shares named by verify for every
kind of damage, servers quarantining what they can prove, Tahoe's JSON shape, leases."""

import io
import os
import random
from typing import Any

import pytest
from twisted.internet import defer

from shoal.caps import CHKCap, LiteralCap
from shoal.checker import FileChecker, literal_check_json
from shoal.formats import immutable_container as ic
from shoal.formats.share_layout import ShareLayout
from shoal.immutable.params import EncodingParams
from shoal.immutable.upload import upload
from shoal.storage.layout import si_b2a
from shoal.storage.quarantine import quarantine_root
from shoal.storage.shares import ImmutableShareFile
from shoal.testing.local_grid import LocalGrid
from tests.unit.storage.test_quarantine import flip

LEASE = b"checker-tests-lease-secret-32byt"
PARAMS = EncodingParams(3, 7, 10, 4_002)  # 20 kB files have 5 segments
N = 10
_seeds = iter(range(1, 10_000))

COUNT_KEYS = {
    "count-happiness", "count-shares-good", "count-shares-needed", "count-shares-expected",
    "count-good-share-hosts", "count-corrupt-shares", "list-corrupt-shares", "servers-responding",
    "sharemap", "count-wrong-shares", "count-recoverable-versions", "count-unrecoverable-versions",
}


# -- helpers (test_repair uses them too) ------------------------------------------------


def put(grid: LocalGrid, size: int = 20_000, params: EncodingParams = PARAMS) -> tuple[bytes, CHKCap]:
    data = random.Random(next(_seeds)).randbytes(size)
    result = grid.call(lambda: defer.ensureDeferred(upload(
        grid.broker, io.BytesIO(data), size, params=params, convergence_secret=None, lease_secret=LEASE,
    )))
    return data, CHKCap.from_string(result.cap)


def checker(grid: LocalGrid, **kw: Any) -> FileChecker:
    return FileChecker(grid.broker, lease_secret=LEASE, **kw)


def run(grid: LocalGrid, method: str, cap: Any, **kw: Any) -> Any:
    fc = checker(grid)
    return grid.call(lambda: defer.ensureDeferred(getattr(fc, method)(cap, **kw)))


def shares_on(grid: LocalGrid, si: bytes) -> dict[int, list[tuple[int, str]]]:
    """shnum -> [(server index, share file path)] for every finished share of the file."""
    out: dict[int, list[tuple[int, str]]] = {}
    marker = os.sep + si_b2a(si) + os.sep
    for index, server in enumerate(grid.servers):
        for path in server.share_files():
            if marker in path:
                out.setdefault(int(os.path.basename(path)), []).append((index, path))
    return out


def path_of(grid: LocalGrid, si: bytes, shnum: int) -> tuple[int, str]:
    ((index, path),) = shares_on(grid, si)[shnum]
    return index, path


def layout_of(path: str) -> ShareLayout:
    with open(path, "rb") as handle:
        return ShareLayout.parse(handle.read(ic.HEADER_SIZE + 0x44)[ic.HEADER_SIZE:])


def ueb_value_at(path: str, key: bytes) -> int:
    """File offset of the first byte of a UEB field's value."""
    with open(path, "rb") as handle:
        data = handle.read()
    lay = layout_of(path)
    start = ic.HEADER_SIZE + lay.uri_extension + lay.field_size
    at = data.index(key + b":", start)
    return data.index(b":", at + len(key) + 1) + 1


def damage(grid: LocalGrid, si: bytes, shnum: int, kind: str) -> int:
    """Damage one share as `kind` says; return the index of its server."""
    index, path = path_of(grid, si, shnum)
    lay = layout_of(path)
    base = ic.HEADER_SIZE
    if kind == "block":
        flip(path, base + lay.plaintext_hash_tree - 5)  # a byte of the last block
    elif kind == "block-tree":
        flip(path, base + lay.block_hashes + 32 * 5 + 3)  # a node that is not the root
    elif kind == "crypttext-tree":
        flip(path, base + lay.crypttext_hash_tree + 32 * 9)
    elif kind == "chain":
        flip(path, base + lay.share_hashes + 2 + 7)  # inside the first chain hash
    elif kind == "ueb":
        flip(path, ueb_value_at(path, b"share_root_hash") + 4)
    elif kind == "ueb-flat-hash":
        flip(path, ueb_value_at(path, b"crypttext_hash") + 4)
    elif kind == "container":
        flip(path, 3, 0x04)  # container version 2 -> 6
    elif kind == "delete":
        os.unlink(path)
    else:
        raise AssertionError(kind)
    return index


def add_servers(grid: LocalGrid, count: int) -> None:
    """Start `count` more storage servers and tell the client's broker about them."""
    grid.add_servers(count)


def quarantined(grid: LocalGrid, index: int) -> list[str]:
    root = quarantine_root(grid.servers[index].storage.layout)
    return [f for _d, _s, files in os.walk(root) for f in files if not f.endswith(".reason")]


# -- tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


@pytest.mark.parametrize("verify", [False, True])
def test_a_healthy_file_in_tahoes_json_shape(grid, verify):
    _, cap = put(grid)
    results = run(grid, "check", cap, verify=verify)
    doc = results.to_json()
    assert set(doc) == {"storage-index", "summary", "results"}
    assert doc["storage-index"] == si_b2a(cap.storage_index) and doc["summary"] == "Healthy"
    counts = doc["results"]
    assert set(counts) == COUNT_KEYS | {"healthy", "recoverable"}
    ids = sorted(s.server_id.decode() for s in grid.broker.get_connected_servers())
    assert counts["healthy"] is True and counts["recoverable"] is True
    assert (counts["count-shares-good"], counts["count-good-share-hosts"], counts["count-happiness"]) == (10, 10, 10)
    assert (counts["count-shares-needed"], counts["count-shares-expected"]) == (3, 10)
    assert (counts["count-recoverable-versions"], counts["count-unrecoverable-versions"]) == (1, 0)
    assert counts["count-corrupt-shares"] == 0 and counts["list-corrupt-shares"] == []
    assert sorted(counts["servers-responding"]) == ids
    assert sorted(counts["sharemap"]) == sorted(str(i) for i in range(10))
    assert sorted(s for servers in counts["sharemap"].values() for s in servers) == ids
    assert results.verified is verify


def test_deleted_shares_and_stopped_servers_are_counted(grid):
    _, cap = put(grid)
    damage(grid, cap.storage_index, 1, "delete")
    damage(grid, cap.storage_index, 8, "delete")
    stopped, _ = path_of(grid, cap.storage_index, 4)
    grid.stop_server(stopped)
    try:
        for verify in (False, True):
            r = run(grid, "check", cap, verify=verify).to_json()["results"]
            assert r["healthy"] is False and r["recoverable"] is True
            assert (r["count-shares-good"], r["count-good-share-hosts"], r["count-happiness"]) == (7, 7, 7)
            assert len(r["servers-responding"]) == 9
            assert sorted(r["sharemap"]) == ["0", "2", "3", "5", "6", "7", "9"]
    finally:
        grid.restart_server(stopped)
        grid.wait_connected(N)
    results = run(grid, "check", cap)
    assert results.count_shares_good == 8 and results.summary == "Not Healthy: 8 shares (enc 3-of-10)"


def test_too_few_shares_is_unrecoverable(grid):
    _, cap = put(grid)
    for shnum in range(2, 10):
        damage(grid, cap.storage_index, shnum, "delete")
    r = run(grid, "check", cap, verify=True).to_json()["results"]
    assert (r["recoverable"], r["healthy"], r["count-shares-good"]) == (False, False, 2)
    assert (r["count-recoverable-versions"], r["count-unrecoverable-versions"]) == (0, 1)


@pytest.mark.parametrize("kind", ["block", "block-tree", "crypttext-tree", "chain", "ueb"])
def test_verify_names_exactly_the_damaged_shares_and_their_servers_quarantine_them(grid, kind):
    _, cap = put(grid)
    hit = {shnum: damage(grid, cap.storage_index, shnum, kind) for shnum in (2, 6)}
    plain = run(grid, "check", cap)
    assert plain.healthy and plain.count_shares_good == 10  # a check reads nothing
    results = run(grid, "check", cap, verify=True)
    ids = {shnum: grid.servers[index].server_id for shnum, index in hit.items()}
    assert set(results.corrupt_shares) == {(ids[2], 2), (ids[6], 6)}
    assert results.count_shares_good == 8 and not results.healthy and results.recoverable
    doc = results.to_json()["results"]
    assert sorted(doc["list-corrupt-shares"]) == sorted(
        [ids[sh].decode(), si_b2a(cap.storage_index), sh] for sh in (2, 6)
    )
    assert doc["count-corrupt-shares"] == 2 and sorted(doc["sharemap"]) == [
        str(sh) for sh in range(10) if sh not in (2, 6)
    ]
    # the advisories reached the servers, which proved the damage and moved the shares aside
    for shnum, index in hit.items():
        assert shnum not in shares_on(grid, cap.storage_index)
        assert len(quarantined(grid, index)) >= 1
    assert run(grid, "check", cap).count_shares_good == 8


def test_damage_the_server_cannot_prove_stays_served_but_verify_names_it(grid):
    _, cap = put(grid)
    index = damage(grid, cap.storage_index, 3, "ueb-flat-hash")
    results = run(grid, "check", cap, verify=True)
    assert results.corrupt_shares == ((grid.servers[index].server_id, 3),)
    assert 3 in shares_on(grid, cap.storage_index)  # the UEB's flat hash needs the whole file


def test_a_damaged_container_header_hides_the_share_until_the_scrubber_moves_it(grid):
    _, cap = put(grid)
    index = damage(grid, cap.storage_index, 5, "container")
    results = run(grid, "check", cap, verify=True)
    assert results.count_shares_good == 9 and results.corrupt_shares == ()
    server = grid.servers[index].storage
    grid.call(lambda: [server.scrubber.run_slice(10.0) for _ in range(3)])
    assert 5 not in shares_on(grid, cap.storage_index)
    assert len(quarantined(grid, index)) >= 1


def test_a_verify_cap_is_enough_and_lit_files_have_nothing_to_check(grid):
    _, cap = put(grid)
    results = run(grid, "check", cap.verifier().to_string(), verify=True)
    assert results.healthy and results.count_shares_good == 10
    assert run(grid, "check", LiteralCap(b"tiny")) is None
    assert literal_check_json() == {"storage-index": "", "results": {"healthy": True}}


def test_add_lease_adds_then_renews_this_clients_lease(grid):
    _, cap = put(grid)
    other = b"another-client-lease-secret-32by"

    def leases() -> list[int]:
        return sorted(
            len(ImmutableShareFile(path, cap.storage_index, sh).leases())
            for sh, where in shares_on(grid, cap.storage_index).items() for _, path in where
        )

    assert leases() == [1] * 10
    fc = FileChecker(grid.broker, lease_secret=other)
    grid.call(lambda: defer.ensureDeferred(fc.check(cap, add_lease=True)))
    assert leases() == [2] * 10
    grid.call(lambda: defer.ensureDeferred(fc.check(cap, verify=True, add_lease=True)))
    assert leases() == [2] * 10  # renewed, not added again
    run(grid, "check", cap, add_lease=True)  # the uploader's own secret: renewed
    assert leases() == [2] * 10
