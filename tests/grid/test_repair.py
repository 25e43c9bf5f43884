"""check_and_repair (shoal.checker) on real grids (LocalGrid): corrupt and deleted shares
healed to 10 good shares on 10 servers, a second verify healthy, the file still reads;
damage the server cannot prove; shares spread onto servers added later."""

import pytest
from twisted.internet import defer

from shoal.immutable.download import download
from shoal.immutable.params import EncodingParams
from shoal.testing.local_grid import LocalGrid
from tests.grid.test_check import add_servers, damage, put, run, shares_on

N = 10


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


def read(grid, cap) -> bytes:
    out: list[bytes] = []
    grid.call(lambda: defer.ensureDeferred(download(grid.broker, cap, out.append)))
    return b"".join(out)


def one_share_per_server(grid, cap) -> bool:
    holders = [index for where in shares_on(grid, cap.storage_index).values() for index, _ in where]
    return len(holders) == len(set(holders)) == N


@pytest.mark.parametrize("kind", ["block", "block-tree", "crypttext-tree", "chain", "ueb", "container"])
def test_one_corrupt_and_two_deleted_shares_heal_to_ten_on_ten(grid, kind):
    data, cap = put(grid)
    damage(grid, cap.storage_index, 4, kind)
    damage(grid, cap.storage_index, 0, "delete")
    damage(grid, cap.storage_index, 9, "delete")
    result = run(grid, "check_and_repair", cap, verify=True)
    doc = result.to_json()
    assert set(doc) == {"storage-index", "repair-attempted", "repair-successful",
                        "pre-repair-results", "post-repair-results"}
    pre, post = doc["pre-repair-results"]["results"], doc["post-repair-results"]["results"]
    assert pre["count-shares-good"] == 7 and pre["healthy"] is False
    assert pre["count-corrupt-shares"] == (0 if kind == "container" else 1)
    assert doc["repair-attempted"] is True and doc["repair-successful"] is True
    assert (post["count-shares-good"], post["count-good-share-hosts"], post["count-happiness"]) == (10, 10, 10)
    assert post["healthy"] is True and post["count-corrupt-shares"] == 0
    assert sorted(result.shares_placed) == [0, 4, 9]
    assert one_share_per_server(grid, cap)
    again = run(grid, "check", cap, verify=True)
    assert again.healthy and again.count_shares_good == 10 and again.corrupt_shares == ()
    assert read(grid, cap) == data


def test_a_healthy_file_is_not_repaired(grid):
    _, cap = put(grid)
    result = run(grid, "check_and_repair", cap, verify=True)
    assert result.repair_attempted is False and result.to_json()["repair-successful"] is False
    assert result.post_repair is result.pre_repair


def test_without_verify_only_missing_shares_are_seen_and_restored(grid):
    data, cap = put(grid)
    damage(grid, cap.storage_index, 2, "delete")
    result = run(grid, "check_and_repair", cap)
    assert result.repair_successful and sorted(result.shares_placed) == [2]
    assert one_share_per_server(grid, cap)
    assert read(grid, cap) == data


def test_damage_the_server_cannot_prove_is_worked_around(grid):
    data, cap = put(grid)
    index = damage(grid, cap.storage_index, 6, "ueb-flat-hash")
    result = run(grid, "check_and_repair", cap.verifier(), verify=True)
    post = result.post_repair
    assert result.repair_successful and post.count_shares_good == 10 and post.healthy
    assert post.corrupt_shares == ((grid.servers[index].server_id, 6),)  # still there, named
    assert 6 in result.shares_placed
    assert index in [i for i, _path in shares_on(grid, cap.storage_index)[6]]  # not quarantined
    assert run(grid, "check", cap, verify=True).count_shares_good == 10
    assert read(grid, cap) == data


def test_a_file_is_rebuilt_from_exactly_k_shares(grid):
    data, cap = put(grid)
    for shnum in range(3, 10):
        damage(grid, cap.storage_index, shnum, "delete")
    result = run(grid, "check_and_repair", cap, verify=True)
    assert result.repair_successful and sorted(result.shares_placed) == list(range(3, 10))
    assert read(grid, cap) == data


def test_an_unrecoverable_file_is_reported_not_repaired(grid):
    _, cap = put(grid)
    for shnum in range(2, 10):
        damage(grid, cap.storage_index, shnum, "delete")
    result = run(grid, "check_and_repair", cap, verify=True)
    assert result.repair_attempted and not result.repair_successful
    assert "unrecoverable" in (result.repair_problem or "")
    assert result.post_repair.count_shares_good == 2


def test_repair_spreads_shares_onto_servers_added_later():
    with LocalGrid(4) as small:
        data, cap = put(small, params=EncodingParams(3, 4, 10, 4_002))  # 10 shares on 4 servers
        assert run(small, "check", cap).count_happiness == 4
        add_servers(small, 6)
        pre = run(small, "check", cap)
        assert pre.count_shares_good == 10 and pre.count_happiness == 4 and not pre.healthy
        assert "happiness" in pre.summary
        result = run(small, "check_and_repair", cap)
        assert result.repair_successful
        post = result.post_repair
        assert (post.count_happiness, post.count_good_share_hosts) == (10, 10)
        new_ids = {s.server_id for s in small.servers[4:]}
        assert set(result.shares_placed.values()) == new_ids  # one share to each new server
        assert run(small, "check", cap, verify=True).healthy
        assert read(small, cap) == data
