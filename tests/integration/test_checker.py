"""The checker against real node processes: an introducer, 10 storage nodes and a client
started through the CLI. A file uploaded through the client's web API loses two shares
and has one corrupted on disk; verify names it, the storage node (a separate process)
quarantines it when advised, repair restores 10 good shares on 10 servers, and the
client still reads the file. The checker runs in this process on its own broker."""

import os
import urllib.request
from typing import Any

import pytest
from foolscap.api import Tub
from twisted.internet import defer

from shoal.caps import CHKCap
from shoal.checker import FileChecker
from shoal.formats import immutable_container as ic
from shoal.formats.share_layout import ShareLayout
from shoal.grid.storage_broker import StorageBroker, foolscap_connector
from shoal.introducer.client import IntroducerClient
from shoal.storage.layout import si_b2a
from shoal.testing import reactor_thread
from shoal.testing.grid import Grid, start_grid
from shoal.testing.wait import wait_until

NODES = 10


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Grid:
    g = start_grid(str(tmp_path_factory.mktemp("checker")), storage_nodes=NODES)
    yield g
    g.stop()


@pytest.fixture(scope="module")
def broker(grid):
    made: dict[str, Any] = {}

    def start() -> None:
        made["tub"] = tub = Tub()
        tub.startService()
        made["broker"] = broker = StorageBroker(foolscap_connector(tub))
        made["ic"] = ic_ = IntroducerClient(tub, grid.introducer_furl, nickname="checker", sequencer=lambda: (0, ""))
        broker.use_introducer(ic_)
        ic_.startService()
        broker.startService()

    reactor_thread.call(start)
    wait_until(lambda: reactor_thread.call(lambda: len(made["broker"].get_connected_servers())) >= NODES,
               60, "the test's broker to connect to every server", interval=0.1)
    yield made["broker"]
    reactor_thread.call(lambda: defer.DeferredList([
        defer.maybeDeferred(made[name].stopService) for name in ("broker", "ic", "tub")
    ]))


def share_files(grid: Grid, si: bytes) -> dict[int, str]:
    out = {}
    for node in grid.storage:
        bucket = os.path.join(node.nodedir, "storage", "shares", si_b2a(si)[:2], si_b2a(si))
        if os.path.isdir(bucket):
            for name in os.listdir(bucket):
                out[int(name)] = os.path.join(bucket, name)
    return out


def test_verify_quarantine_and_repair_across_processes(grid, broker):
    data = os.urandom(300_000)
    req = urllib.request.Request(grid.client_url + "uri", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=120) as r:
        cap = CHKCap.from_string(r.read().decode().strip())
    files = share_files(grid, cap.storage_index)
    assert sorted(files) == list(range(10))
    os.unlink(files[1])
    os.unlink(files[7])
    with open(files[5], "r+b") as handle:
        lay = ShareLayout.parse(handle.read(ic.HEADER_SIZE + 0x44)[ic.HEADER_SIZE:])
        handle.seek(ic.HEADER_SIZE + lay.data + 1000)
        byte = handle.read(1)[0]
        handle.seek(ic.HEADER_SIZE + lay.data + 1000)
        handle.write(bytes([byte ^ 0x80]))
    corrupt_node = files[5].split(os.sep + "storage" + os.sep)[0]
    checker = FileChecker(broker, lease_secret=b"l" * 32)

    result = reactor_thread.call(lambda: defer.ensureDeferred(checker.check_and_repair(cap, verify=True)))
    doc = result.to_json()
    pre, post = doc["pre-repair-results"]["results"], doc["post-repair-results"]["results"]
    assert (pre["count-shares-good"], pre["count-corrupt-shares"]) == (7, 1)
    assert pre["list-corrupt-shares"][0][2] == 5
    assert os.listdir(os.path.join(corrupt_node, "storage", "quarantine", si_b2a(cap.storage_index)))
    assert doc["repair-successful"] is True
    assert (post["count-shares-good"], post["count-good-share-hosts"], post["count-happiness"]) == (10, 10, 10)
    again = reactor_thread.call(lambda: defer.ensureDeferred(checker.check(cap, verify=True)))
    assert again.healthy and again.corrupt_shares == ()
    with urllib.request.urlopen(grid.client_url + "uri/" + cap.to_string(), timeout=120) as r:
        assert r.read() == data


def _put(grid: Grid, data: bytes, query: str = "") -> str:
    req = urllib.request.Request(grid.client_url + "uri" + query, data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read().decode().strip()


def _flip(path: str, at: int) -> None:
    with open(path, "r+b") as handle:
        lay = ShareLayout.parse(handle.read(ic.HEADER_SIZE + 0x44)[ic.HEADER_SIZE:])
        handle.seek(ic.HEADER_SIZE + lay.data + at)
        byte = handle.read(1)[0]
        handle.seek(ic.HEADER_SIZE + lay.data + at)
        handle.write(bytes([byte ^ 0x01]))


def test_storage_node_scrubber_quarantines_a_corrupt_share_unasked(grid):
    """No client advises anything: the node's own scrubber (run from its housekeeping
    loop) finds the flipped byte and moves the share aside; its siblings stay."""
    cap = CHKCap.from_string(_put(grid, os.urandom(200_000)))
    files = share_files(grid, cap.storage_index)
    _flip(files[3], 500)
    node_dir = files[3].split(os.sep + "storage" + os.sep)[0]
    # the node's first cycle (over an empty store) finished at start; a week is the default
    # pause between cycles, so restart this node with a short one
    from shoal.testing.processes import set_config, start_node

    index = next(i for i, n in enumerate(grid.storage) if n.nodedir == node_dir)
    grid.storage[index].stop()
    set_config(node_dir, "storage", "scrub.interval", "2s")
    grid.storage[index] = start_node(node_dir)
    quarantine = os.path.join(node_dir, "storage", "quarantine", si_b2a(cap.storage_index))
    wait_until(lambda: os.path.isdir(quarantine) and os.listdir(quarantine), 90,
               "the scrubber to quarantine the corrupt share", interval=0.2)
    assert not os.path.exists(files[3])
    assert all(os.path.exists(p) for n, p in files.items() if n != 3)


def test_client_checker_job_repairs_a_tree_and_reports_on_the_status_page(grid):
    """[checker] in the client's tahoe.cfg, roots given as an alias: after a restart the
    node checks and repairs the tree by itself, and /status?t=json shows the report."""
    import json

    from shoal.testing.processes import set_config

    dircap = _put(grid, b"", "?t=mkdir")
    data = os.urandom(150_000)
    filecap = _put(grid, data, "")
    req = urllib.request.Request(grid.client_url + "uri/" + dircap + "/f?t=uri", data=filecap.encode(), method="PUT")
    urllib.request.urlopen(req, timeout=60).read()
    cap = CHKCap.from_string(filecap)
    files = share_files(grid, cap.storage_index)
    os.unlink(files[0])
    os.unlink(files[9])

    client = grid.client
    assert client is not None
    with open(os.path.join(client.nodedir, "private", "aliases"), "a") as f:
        f.write(f"watched: {dircap}\n")
    for key, value in (("enabled", "true"), ("roots", "watched:"), ("interval", "1h"), ("pause", "0.01")):
        set_config(client.nodedir, "checker", key, value)
    client.stop()
    grid.start_client("client")

    def last_report() -> dict | None:
        with urllib.request.urlopen(grid.client_url + "status?t=json", timeout=30) as r:
            return json.loads(r.read())["checker-job"]["last-report"]

    report = wait_until(last_report, 120, "a checker round to finish", interval=0.2)
    assert report["objects-checked"] == 2  # the directory and the file
    assert report["repairs-attempted"] == 1 and report["repairs-successful"] == 1
    assert sorted(share_files(grid, cap.storage_index)) == list(range(10))
    with urllib.request.urlopen(grid.client_url + "statistics?t=json", timeout=30) as r:
        stats = json.loads(r.read())["stats"]
    assert stats["checker.last_round.repairs_successful"] == 1
