"""Differential test against Tahoe-LAFS 1.20's own StorageServer class, on disk.

The same scenario runs through Tahoe's StorageServer (in the reference
peer's virtualenv, .venv-peer, see tahoe_storage_driver.py) and through
shoal's, with the same nodeid and the same clock. The answers must agree and
the share files must be byte-identical: immutable and mutable containers,
hashed (v2) and plaintext (v1) leases, extra leases moved by a growing slot,
truncation, deletion. Then each serves and changes the directory the other
wrote, and again the answers and files must agree.

Skips without the peer unless SHOAL_REQUIRE_PEER=1.
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from shoal.formats import immutable_container as ic
from shoal.formats import mutable_container as mc
from shoal.formats.lease import LeaseInfo, LeaseSchema
from shoal.storage import StorageServer
from shoal.storage.layout import StorageLayout

ROOT = pathlib.Path(__file__).resolve().parents[3]
PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"
DRIVER = pathlib.Path(__file__).with_name("tahoe_storage_driver.py")
NODEID = bytes(range(100, 120))
T0 = 1_700_000_000


def h(data: bytes) -> str:
    return data.hex()


def si(n: int) -> str:
    return h(bytes([n]) * 16)


def sec(label: str) -> str:
    return h(label.encode().ljust(32, b"."))


@pytest.fixture(scope="module")
def peer_python() -> pathlib.Path:
    if not PEER_PYTHON.exists():
        if os.environ.get("SHOAL_REQUIRE_PEER") == "1":
            pytest.fail("the reference peer .venv-peer is missing (make peer)")
        pytest.skip("reference peer .venv-peer not installed (make peer)")
    return PEER_PYTHON


def run_tahoe(peer_python: pathlib.Path, storedir: pathlib.Path, when: int, ops: list) -> list:
    request = {"storedir": str(storedir), "nodeid": h(NODEID), "time": when, "ops": ops}
    done = subprocess.run(
        [str(peer_python), str(DRIVER)], input=json.dumps(request), capture_output=True, text=True,
        timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_shoal(storedir: pathlib.Path, when: int, ops: list) -> list:
    clock = Clock(when)
    server = StorageServer(str(storedir), NODEID, clock=clock)
    writers: dict = {}
    results = []
    for op in ops:
        try:
            results.append(_shoal_op(server, clock, writers, op))
        except Exception as error:
            results.append({"error": type(error).__name__})
    server.shutdown()
    return results


def _shoal_op(server: StorageServer, clock: Clock, writers: dict, op: list):  # noqa: C901
    name, args = op[0], op[1:]
    u = bytes.fromhex
    if name == "advance":
        clock.now += args[0]
        return None
    if name == "allocate":
        s, renew, cancel, shnums, size = args
        already, allocated = server.allocate_buckets(u(s), u(renew), u(cancel), set(shnums), size)
        writers.update({(s, shnum): w for shnum, w in allocated.items()})
        return [sorted(already), sorted(allocated)]
    if name == "write":
        writers[(args[0], args[1])].write(args[2], u(args[3]))
        return None
    if name == "close":
        writers[(args[0], args[1])].close()
        return None
    if name == "abort":
        writers[(args[0], args[1])].abort()
        return None
    if name == "add_lease":
        server.add_lease(u(args[0]), u(args[1]), u(args[2]))
        return None
    if name == "buckets":
        return sorted(server.get_buckets(u(args[0])))
    if name == "read":
        return server.get_buckets(u(args[0]))[args[1]].read(args[2], args[3]).hex()
    if name == "readv":
        answer = server.slot_readv(u(args[0]), args[1], [tuple(v) for v in args[2]])
        return {str(k): [d.hex() for d in v] for k, v in sorted(answer.items())}
    if name == "twrite":
        s, secrets, vectors, vector = args
        tw = {
            int(shnum): (
                [(o, n, u(o_), u(spec)) for o, n, o_, spec in tests],
                [(o, u(d)) for o, d in writes],
                new_length,
            )
            for shnum, (tests, writes, new_length) in vectors.items()
        }
        ok, answer = server.slot_testv_and_readv_and_writev(
            u(s), tuple(u(x) for x in secrets), tw, [tuple(v) for v in vector]
        )
        return [ok, {str(k): [d.hex() for d in v] for k, v in sorted(answer.items())}]
    raise ValueError(name)


def share_files(storedir: pathlib.Path) -> dict[str, bytes]:
    shares = storedir / "shares"
    found = {}
    for path in sorted(shares.rglob("*")):
        relative = path.relative_to(shares)
        if path.is_file() and relative.parts[0] != "incoming":
            found[str(relative)] = path.read_bytes()
    return found


def plant_v1_shares(storedir: pathlib.Path) -> None:
    """A version-1 immutable share and a version-1 mutable slot, plaintext leases (pre-1.17 Tahoe)."""
    store = StorageLayout(str(storedir))
    store.prepare()
    data = bytes(range(200))
    lease = LeaseInfo(0, bytes.fromhex(sec("v1-renew")), bytes.fromhex(sec("v1-cancel")), T0 + 1000)
    header = ic.ImmutableHeader.for_new_share(len(data), version=1).with_lease_count(1)
    path = pathlib.Path(store.share_path(bytes([3]) * 16, 0))
    path.parent.mkdir(parents=True)
    path.write_bytes(header.to_bytes() + data + ic.pack_leases([lease], LeaseSchema.PLAINTEXT))

    we = bytes.fromhex(sec("we4"))
    body = b"mutable v1 data"
    head = mc.MutableHeader(1, NODEID, we, len(body), mc.DATA_OFFSET + len(body))
    slot0 = LeaseInfo(1, bytes.fromhex(sec("r4")), bytes.fromhex(sec("c4")), T0 + 500, NODEID)
    container = (
        head.to_bytes()
        + mc.pack_lease_slots([slot0, None, None, None], LeaseSchema.PLAINTEXT)
        + body
        + mc.pack_extra_leases([], LeaseSchema.PLAINTEXT)
    )
    path = pathlib.Path(store.share_path(bytes([4]) * 16, 0))
    path.parent.mkdir(parents=True)
    path.write_bytes(container)


EQ = h(b"eq")
WE, R1, C1 = sec("we1"), sec("r1"), sec("c1")

SCENARIO = [
    # immutable: holes, out-of-order writes, abort, conflicting and oversized writes
    ["allocate", si(1), R1, C1, [0, 1, 2], 1000],
    ["write", si(1), 0, 600, h(b"B" * 400)],
    ["write", si(1), 0, 0, h(b"A" * 500)],
    ["close", si(1), 0],
    ["write", si(1), 1, 0, h(bytes(range(250)) * 4)],
    ["close", si(1), 1],
    ["abort", si(1), 2],
    ["advance", 100],
    ["allocate", si(1), R1, C1, [0, 1, 2, 3], 1000],  # renews the held shares' lease
    ["abort", si(1), 2],
    ["abort", si(1), 3],
    ["allocate", si(1), sec("r2"), sec("c2"), [3], 1000],  # adds a lease to the held shares
    ["abort", si(1), 3],
    ["add_lease", si(1), sec("r3"), sec("c3")],
    ["advance", 50],
    ["add_lease", si(1), R1, C1],
    ["add_lease", si(9), R1, C1],
    ["allocate", si(2), R1, C1, [0], 10],
    ["write", si(2), 0, 0, h(b"abcdefghij")],
    ["write", si(2), 0, 5, h(b"XXXXX")],
    ["write", si(2), 0, 8, h(b"ijk")],
    ["close", si(2), 0],
    ["buckets", si(1)],
    ["read", si(1), 0, 450, 200],
    ["read", si(1), 1, 990, 100],
    # mutable: create, fill the lease slots, grow past the extra leases, truncate, delete
    ["twrite", si(5), [WE, R1, C1], {"0": [[[0, 1, EQ, ""]], [[0, h(b"hello")]], None],
                                     "1": [[], [[0, h(b"one")], [10, h(b"ten")]], None]}, [[0, 10]]],
    *[["twrite", si(5), [WE, sec(f"r{k}"), sec(f"c{k}")], {"0": [[], [], None]}, []] for k in range(2, 8)],
    ["twrite", si(5), [WE, R1, C1], {"0": [[[0, 5, EQ, h(b"hello")]], [[2000, h(b"x" * 100)]], None]}, [[0, 5]]],
    ["twrite", si(5), [WE, R1, C1], {"0": [[[0, 5, EQ, h(b"nope!")]], [[0, h(b"never")]], None]}, [[0, 5]]],
    ["twrite", si(5), [WE, R1, C1], {"0": [[], [], 50]}, []],
    ["twrite", si(5), [WE, R1, C1], {"0": [[], [[60, h(b"y")]], None]}, [[0, 100]]],
    ["twrite", si(5), [WE, R1, C1], {"1": [[], [], 0]}, []],
    ["twrite", si(5), [sec("bad"), R1, C1], {"0": [[], [[0, h(b"evil")]], None]}, []],
    ["advance", 1000],
    ["twrite", si(5), [WE, sec("r3"), sec("c3")], {"0": [[], [], None]}, []],
    ["twrite", si(6), [WE, R1, C1], {"0": [[], [[0, h(b"gone soon")]], None]}, []],
    ["twrite", si(6), [WE, R1, C1], {"0": [[], [], 0]}, []],
    ["readv", si(5), [], [[0, 100], [1990, 200]]],
    ["readv", si(6), [], [[0, 10]]],
    # version-1 containers written by an older Tahoe
    ["add_lease", si(3), sec("v1-renew"), sec("v1-cancel")],
    ["add_lease", si(3), sec("r5"), sec("c5")],
    ["read", si(3), 0, 0, 1000],
    ["twrite", si(4), [sec("we4"), sec("r6"), sec("c6")], {"0": [[], [[15, h(b" more")]], None]}, [[0, 100]]],
    ["twrite", si(4), [sec("we4"), sec("r4"), sec("c4")], {"0": [[], [], None]}, []],
]

CROSS = [
    ["buckets", si(1)],
    ["read", si(1), 0, 0, 1100],
    ["read", si(1), 1, 0, 1100],
    ["read", si(2), 0, 0, 20],
    ["read", si(3), 0, 0, 300],
    ["readv", si(5), [], [[0, 3000]]],
    ["readv", si(4), [0], [[0, 100]]],
    ["add_lease", si(1), sec("r8"), sec("c8")],
    ["add_lease", si(1), R1, C1],
    ["allocate", si(1), sec("r9"), sec("c9"), [0, 5], 1000],
    ["write", si(1), 5, 0, h(b"five" * 250)],
    ["close", si(1), 5],
    ["twrite", si(5), [WE, R1, C1], {"0": [[], [[3000, h(b"end")]], None]}, [[0, 5]]],
    ["twrite", si(4), [sec("we4"), sec("r7"), sec("c7")], {"0": [[], [[0, h(b"M")]], 3]}, [[0, 20]]],
    ["add_lease", si(3), sec("r5"), sec("c5")],
]


def test_same_answers_and_same_bytes_as_tahoe(tmp_path, peer_python):
    tahoe_dir, shoal_dir = tmp_path / "tahoe" / "storage", tmp_path / "shoal" / "storage"
    for directory in (tahoe_dir, shoal_dir):
        plant_v1_shares(directory)
    tahoe_answers = run_tahoe(peer_python, tahoe_dir, T0, SCENARIO)
    shoal_answers = run_shoal(shoal_dir, T0, SCENARIO)
    for op, theirs, ours in zip(SCENARIO, tahoe_answers, shoal_answers, strict=True):
        assert ours == theirs, op
    assert {"error": "ConflictingWriteError"} in tahoe_answers
    assert {"error": "BadWriteEnablerError"} in tahoe_answers
    tahoe_files, shoal_files = share_files(tahoe_dir), share_files(shoal_dir)
    assert sorted(shoal_files) == sorted(tahoe_files)
    for name, content in tahoe_files.items():
        assert shoal_files[name] == content, name

    # each serves, and changes, what the other wrote
    later = T0 + 10_000
    tahoe_on_shoal, shoal_on_tahoe = tmp_path / "x1" / "storage", tmp_path / "x2" / "storage"
    shutil.copytree(shoal_dir, tahoe_on_shoal)
    shutil.copytree(tahoe_dir, shoal_on_tahoe)
    theirs = run_tahoe(peer_python, tahoe_on_shoal, later, CROSS)
    ours = run_shoal(shoal_on_tahoe, later, CROSS)
    for op, a, b in zip(CROSS, theirs, ours, strict=True):
        assert b == a, op
    assert theirs[1] == h(b"A" * 500 + bytes(100) + b"B" * 400)
    assert share_files(tahoe_on_shoal) == share_files(shoal_on_tahoe)
