"""Deep operations (shoal.checker.deep) over a tree of 200 files and directories on a
real 10-server grid (LocalGrid): manifest and deep-stats, deep-check finding exactly
the damaged objects (with and without verify), the streaming lines, deep-check with
repair healing them all, and a second deep-check healthy."""

import io
import os
import types

import pytest
from twisted.internet import defer

from shoal.caps import LiteralCap, parse_cap
from shoal.checker import FileChecker
from shoal.checker.deep import DeepStats, deep_check, deep_size, manifest
from shoal.dirnode import NodeMaker
from shoal.encoding.base32 import b2a
from shoal.immutable.params import EncodingParams
from shoal.mutable import MutableClient
from shoal.node.files import ClientFiles
from shoal.testing.local_grid import LocalGrid
from tests.grid.test_check import damage
from tests.grid.test_check_mutable import share_paths
from tests.unit.mutable.vector_keys import fresh_key

K, HAPPY, N = 3, 7, 10
LEASE = b"deep-check-tests-lease-secret-32"
SUBDIRS, CHK_PER_DIR, LIT_PER_DIR, ROOT_LITS = 9, 8, 12, 10  # 10 directories, 72 CHK and 118 LIT files
OBJECTS = 1 + SUBDIRS + SUBDIRS * (CHK_PER_DIR + LIT_PER_DIR) + ROOT_LITS  # 200
CHECKED = 1 + SUBDIRS + SUBDIRS * CHK_PER_DIR  # LIT files are not checked


def call(grid, fn, *args, **kw):
    return grid.call(lambda: defer.ensureDeferred(fn(*args, **kw)))


@pytest.fixture(scope="module")
def grid():
    g = LocalGrid(N)
    yield g
    g.close()


@pytest.fixture(scope="module")
def tree(grid):
    identity = types.SimpleNamespace(convergence_secret=None, lease_secret=LEASE)
    files = ClientFiles(grid.broker, EncodingParams(K, HAPPY, N, 4_002), identity)
    mutable = MutableClient(grid.broker, lease_secret=LEASE, k=K, n=N)
    maker = NodeMaker(files, mutable)
    root = call(grid, maker.create_directory, None, private_key=fresh_key())
    chk: dict[str, object] = {}
    dirs = {}

    async def build() -> None:
        for d in range(SUBDIRS):
            sub = await root.create_subdirectory(f"dir{d}", private_key=fresh_key())
            dirs[f"dir{d}"] = sub
            datas = [os.urandom(2_000 + 97 * i) for i in range(CHK_PER_DIR)]
            results = await defer.gatherResults(
                [defer.ensureDeferred(files.upload(io.BytesIO(data), len(data))) for data in datas]
            )
            children = {}
            for i, result in enumerate(results):
                chk[f"dir{d}/f{i}"] = result.cap
                children[f"f{i}"] = result.cap
            for i in range(LIT_PER_DIR):
                children[f"lit{i}"] = LiteralCap(b"tiny %d" % i).to_string()
            await sub.set_children(children)
        await root.set_children({f"lit{i}": LiteralCap(b"root %d" % i).to_string() for i in range(ROOT_LITS)})

    grid.call(lambda: defer.ensureDeferred(build()))
    checker = FileChecker(grid.broker, lease_secret=LEASE, mutable=mutable)
    return types.SimpleNamespace(maker=maker, root=root, chk=chk, dirs=dirs, checker=checker)


def test_manifest_and_stats_cover_the_tree(grid, tree):
    doc = call(grid, manifest, tree.maker, tree.root.cap)
    assert len(doc["manifest"]) == OBJECTS == 200
    assert doc["manifest"][0] == ["", tree.root.cap.to_string()]
    paths = [p for p, _cap in doc["manifest"]]
    assert paths.index("lit0") < paths.index("dir0") < paths.index("dir0/f0") < paths.index("dir1")
    assert len(doc["storage-index"]) == CHECKED
    stats = doc["stats"]
    files = SUBDIRS * (CHK_PER_DIR + LIT_PER_DIR) + ROOT_LITS
    assert stats["count-directories"] == 10 and stats["count-files"] == files
    assert stats["count-immutable-files"] == SUBDIRS * CHK_PER_DIR
    assert stats["count-literal-files"] == SUBDIRS * LIT_PER_DIR + ROOT_LITS
    assert stats["largest-directory-children"] == CHK_PER_DIR + LIT_PER_DIR
    assert stats["size-directories"] > 0 and deep_size(stats) > stats["size-immutable-files"] > 72 * 2000
    assert sum(count for _lo, _hi, count in stats["size-files-histogram"]) == files


def test_histogram_buckets_are_tahoes():
    stats = DeepStats()
    assert [stats._bucket(x) for x in (0, 1, 3, 4, 11, 31, 32, 101, 317, 1000, 1001)] == [
        (0, 0), (1, 3), (1, 3), (4, 10), (11, 31), (11, 31), (32, 100), (101, 316), (317, 1000),
        (317, 1000), (1001, 3162),
    ]


def test_deep_check_finds_and_repair_heals_the_damaged_objects(grid, tree):
    deleted = ["dir0/f3", "dir4/f0", "dir8/f7"]
    for name in deleted:
        cap = tree.chk[name]
        si = parse_cap(cap).storage_index
        damage(grid, si, 1, "delete")
        damage(grid, si, 6, "delete")
    corrupt_si = parse_cap(tree.chk["dir2/f7"]).storage_index
    damage(grid, corrupt_si, 4, "block")
    sub = tree.dirs["dir5"]
    os.unlink(share_paths(grid, sub.storage_index)[2][1])

    plain = call(grid, deep_check, tree.maker, tree.checker, tree.root.cap).to_json()
    assert plain["count-objects-checked"] == CHECKED and plain["count-objects-unhealthy"] == 4
    unhealthy = sorted("/".join(path) for path, _r in plain["list-unhealthy-files"])
    assert unhealthy == sorted(["dir0/f3", "dir4/f0", "dir8/f7", "dir5"])

    lines = []
    verified = call(grid, deep_check, tree.maker, tree.checker, tree.root.cap, verify=True,
                    on_object=lambda _obj, line: lines.append(line)).to_json()
    assert verified["count-objects-unhealthy"] == 5 and verified["count-corrupt-shares"] == 1
    assert verified["list-corrupt-shares"][0][1:] == [b2a(corrupt_si), 4]
    assert len(lines) == OBJECTS and lines[0]["path"] == [] and lines[0]["type"] == "directory"
    assert {line["type"] for line in lines} == {"directory", "file"}
    assert all("check-results" in line for line in lines)

    repaired = call(grid, deep_check, tree.maker, tree.checker, tree.root.cap, verify=True, repair=True).to_json()
    assert repaired["count-repairs-attempted"] == 5  # the corrupt share was quarantined: that file lacks one
    assert repaired["count-repairs-successful"] == 5 and repaired["count-objects-unhealthy-post-repair"] == 0
    again = call(grid, deep_check, tree.maker, tree.checker, tree.root.cap, verify=True).to_json()
    assert again["count-objects-healthy"] == CHECKED and again["count-corrupt-shares"] == 0
