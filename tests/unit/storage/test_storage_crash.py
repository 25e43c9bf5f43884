"""kill -9 at random moments: no partial share is ever visible, every container parses.

A subprocess (crash_writer.py) uploads immutable shares, adds leases,
rewrites a mutable slot and crawls, until it is SIGKILLed at a random
moment. After each kill a fresh server opens the directory and every share
it can see must be whole: immutable shares hold exactly their expected
bytes, mutable shares exactly one version. SIGKILL keeps the page cache, so
this tests the ordering of renames, not fsync (docs/storage.md explains
the fsync policy).
"""

import json
import os
import pathlib
import random
import signal
import subprocess
import sys

from shoal.formats import immutable_container as ic
from shoal.storage import StorageServer
from shoal.storage.layout import ALL_PREFIXES, si_a2b
from shoal.storage.shares import ImmutableShareFile, MutableShareFile, open_share
from tests.unit.storage.crash_writer import NODEID, SLOT, immutable_data, mutable_data

ROOT = pathlib.Path(__file__).resolve().parents[3]
WRITER = pathlib.Path(__file__).with_name("crash_writer.py")
KILLS = 10


def run_and_kill(storage_dir: str, seed: int, delay: float) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    child = subprocess.Popen(
        [sys.executable, str(WRITER), storage_dir, str(seed)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        try:
            child.wait(delay)
        except subprocess.TimeoutExpired:
            pass
        assert child.poll() is None, "the writer died on its own"
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]


def check_store(storage_dir: str) -> tuple[int, int]:
    """Every visible share is whole; returns (immutable shares, slot version seen)."""
    server = StorageServer(storage_dir, NODEID)
    immutable_count, versions = 0, set()
    for prefix in ALL_PREFIXES:
        for bucket in server.layout.list_buckets(prefix):
            si = si_a2b(bucket)
            bucket_dir = os.path.join(server.layout.prefix_dir(prefix), bucket)
            names = os.listdir(bucket_dir)
            assert all(name.isdigit() for name in names), names
            for name in names:
                share = open_share(os.path.join(bucket_dir, name), si, int(name))
                assert share is not None
                if si == SLOT:
                    assert isinstance(share, MutableShareFile)
                    data = share.read(0, 10**7)
                    version = int.from_bytes(data[:8], "big")
                    assert data == mutable_data(version)
                    versions.add(version)
                    assert len(share.leases()) == 1
                else:
                    assert isinstance(share, ImmutableShareFile)
                    expected = immutable_data(si)
                    assert share.header.legacy_data_length == len(expected) == share.data_length
                    assert share.read(0, 10**7) == expected
                    assert 1 <= share.header.lease_count <= 2
                    immutable_count += 1
    state = json.load(open(server.crawler.state_path)) if os.path.exists(
        server.crawler.state_path
    ) else None
    assert state is None or state["version"] == 1
    assert os.listdir(server.layout.tmp_dir) == []
    assert os.listdir(server.layout.incoming_dir) == ["tmp"]
    if versions:
        assert max(versions) - min(versions) <= 1  # one call's shares are renamed together
    server.shutdown()
    return immutable_count, max(versions, default=0)


def leftovers(storage_dir: str) -> int:
    """Files a killed writer left under incoming/ (partial uploads, half-built rewrites)."""
    incoming = os.path.join(storage_dir, "shares", "incoming")
    return sum(len(files) for _root, _dirs, files in os.walk(incoming))


def test_kill_9_never_leaves_a_partial_share(tmp_path):
    storage_dir = str(tmp_path / "storage")
    rng = random.Random(0x5EED)
    seen_immutable, seen_version, interrupted = 0, 0, 0
    for seed in range(KILLS):
        run_and_kill(storage_dir, seed, rng.uniform(0.02, 0.3))
        interrupted += leftovers(storage_dir) > 0
        seen_immutable, seen_version = check_store(storage_dir)
    assert seen_immutable > 0 and seen_version > 0, "the writer never got anywhere"
    assert interrupted > 0, "no kill landed in the middle of an upload"


def test_a_share_left_half_written_in_incoming_is_dropped(tmp_path):
    storage_dir = str(tmp_path / "storage")
    server = StorageServer(storage_dir, NODEID)
    si = b"\x01" * 16
    _, writers = server.allocate_buckets(si, b"R" * 32, b"C" * 32, {0}, 1000)
    writers[0].write(0, b"half")
    # the process dies here: no close, no abort
    restarted = StorageServer(storage_dir, NODEID)
    assert restarted.get_buckets(si) == {}
    assert not os.path.exists(restarted.layout.incoming_path(si, 0))
    assert ic.HEADER_SIZE == 12
