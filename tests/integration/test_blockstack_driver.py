"""The Blockstack driver (shoal.apps.blockstack) against a real grid of node
processes: the put/get/delete flow of the driver skeleton's self-test
(app-apis.md 2.1), the never-raise rule, and read-your-writes while storage
servers lag behind a write."""

import functools
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

import shoal.apps.blockstack as driver
from shoal.apps.blockstack.driver import ShoalDriver, safely
from shoal.testing.grid import Grid, connected_servers, start_grid, wait_for_servers, web_json
from shoal.testing.processes import start_all, start_node, stop_all
from shoal.testing.wait import wait_until
from tests.integration.test_web import request


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Grid:
    # k=1: every server holds a whole copy, so one lagging server alone can answer a read
    g = start_grid(str(tmp_path_factory.mktemp("blockstack")), storage_nodes=3,
                   client_args=("--shares-needed", "1", "--shares-happy", "1", "--shares-total", "3"))
    yield g
    g.stop()


@pytest.fixture(scope="module")
def conf(grid, tmp_path_factory) -> dict:
    ini = tmp_path_factory.mktemp("bsconf") / "client.ini"
    ini.write_text(f"[shoal]\nnode_url = {grid.client_url}\nread_pause = 0.1\n", encoding="utf-8")
    assert driver.storage_init({"path": str(ini)})
    return {"path": str(ini)}


def test_skeleton_flow(conf):
    """Put every test datum immutably and mutably, read each back, delete, see it gone."""
    assert driver.get_classes() == ["read_public", "write_private", "read_private"]
    test_data = [
        ["my_first_datum", "hello world", 1, "unused", None],
        ["/my/second/datum", "hello world 2", 2, "unused", None],
        ["user\"_profile", '{"name":{"formatted":"judecn"},"v":"2"}', 3, "unused", None],
        ["empty_string", "", 4, "unused", None],
        ["binary", os.urandom(2000).hex(), 5, "unused", None],
    ]
    hashes = {}
    for data_id, data, _n, _f, _ in test_data:
        h = hashlib.sha256(data.encode("utf-8")).hexdigest()
        hashes[data_id] = h
        assert driver.put_immutable_handler(h, data, "txid-" + data_id)
        assert driver.put_mutable_handler(data_id, data)
    for data_id, data, *_ in test_data:
        # str in, str out (the skeleton's own `assert data_txt == data_txt_2`)
        assert driver.get_immutable_handler(hashes[data_id]) == data
        url = driver.make_mutable_url(data_id)
        assert url.startswith("shoal:") and driver.handles_url(url)
        assert driver.get_mutable_handler(url) == data
    # overwrite: a later put replaces the mutable value
    assert driver.put_mutable_handler("my_first_datum", "hello again")
    assert driver.get_mutable_handler(driver.make_mutable_url("my_first_datum")) == "hello again"
    for data_id, *_ in test_data:
        assert driver.delete_immutable_handler(hashes[data_id], "txid-" + data_id, "sig:" + data_id)
        assert driver.delete_mutable_handler(data_id, "sig:" + data_id)
    for data_id, *_ in test_data:
        assert driver.get_immutable_handler(hashes[data_id]) is None
        assert driver.get_mutable_handler(driver.make_mutable_url(data_id)) is None
    # a put after a delete brings the id back
    assert driver.put_mutable_handler("binary", b"\x00reborn")
    assert driver.get_mutable_handler(driver.make_mutable_url("binary")) == b"\x00reborn"


def test_tombstones_are_stored(conf, grid):
    assert driver.put_mutable_handler("doomed", "x")
    assert driver.delete_mutable_handler("doomed", "signature-of-delete:doomed")
    state = json.loads(open(driver._ready().state_file, encoding="utf-8").read())
    r = request(grid.client_url, "GET", f"/uri/{quote(state['dircaps']['tombstones'], safe='')}?t=json")
    names = r.json()[1]["children"]
    name = "t-mutable-" + b"doomed".hex()
    assert name in names
    body = request(grid.client_url, "GET", f"/uri/{quote(state['dircaps']['tombstones'], safe='')}/{name}")
    assert json.loads(body.body)["tombstone"] == "signature-of-delete:doomed"


def test_immutable_hash_checked(conf):
    data = b"some bytes"
    assert not driver.put_immutable_handler(hashlib.sha256(b"other").hexdigest(), data, "tx")
    assert not driver.put_immutable_handler("not-a-hash", data, "tx")
    assert driver.get_immutable_handler("zz" * 32) is None


def test_other_client_reads_by_url(conf, grid, tmp_path):
    assert driver.put_mutable_handler("shared-profile", "v1 of the profile")
    url = driver.make_mutable_url("shared-profile")
    other = ShoalDriver(grid.client_url, str(tmp_path / "other.json"), read_pause=0.05)
    other.open()
    assert other.get_mutable(url) == "v1 of the profile"
    assert driver.put_mutable_handler("shared-profile", "v2 of the profile")
    assert other.get_mutable(url) == "v2 of the profile"


def test_never_raises_on_a_dead_node(tmp_path):
    ini = tmp_path / "dead.ini"
    ini.write_text("[shoal]\nnode_url = http://127.0.0.1:9/\ntimeout = 2\n", encoding="utf-8")
    dead = ShoalDriver("http://127.0.0.1:9/", str(tmp_path / "s.json"), timeout=2)
    assert safely(False, "open", dead.open) is False
    saved = driver._driver
    try:
        assert driver.storage_init({"path": str(ini)}) is False
        assert driver.storage_init({}) is False   # no node_url anywhere
    finally:
        driver._driver = saved


def test_bytes_in_bytes_out(conf):
    raw = b"\xff\x00 not text"
    h = hashlib.sha256(raw).hexdigest()
    assert driver.put_immutable_handler(h, raw, "tx-raw") and driver.put_mutable_handler("raw-id", raw)
    got = driver.get_immutable_handler(h)
    assert type(got) is bytes and got == raw
    got = driver.get_mutable_handler(driver.make_mutable_url("raw-id"))
    assert type(got) is bytes and got == raw
    # bytes that look like the text prefix stay bytes
    tricky = b"SBT1hello"
    h2 = hashlib.sha256(tricky).hexdigest()
    assert driver.put_immutable_handler(h2, tricky, "tx") and driver.get_immutable_handler(h2) == tricky
    # a str that is the same text as other bytes: its own type back, same key
    assert driver.put_immutable_handler(hashlib.sha256(b"same").hexdigest(), "same", "tx")
    assert driver.get_immutable_handler(hashlib.sha256(b"same").hexdigest()) == "same"


def test_failed_storage_init_leaves_no_driver_active(conf, tmp_path):
    """After a storage_init that fails, puts fail: they never go to the previous node."""
    good = driver._driver
    assert driver.put_mutable_handler("before-reinit", "kept")
    try:
        assert driver.storage_init({}) is False
        assert driver.put_mutable_handler("after-failed-init", "must not land") is False
        assert driver.get_mutable_handler(good.mutable_url("before-reinit")) is None
        assert driver.make_mutable_url("x") is None
        assert good.get_mutable(good.mutable_url("after-failed-init")) is None
    finally:
        assert driver.storage_init(conf)  # the module's other tests use it again
    assert driver.get_mutable_handler(driver.make_mutable_url("before-reinit")) == "kept"


def test_web_if_match_two_racing_writers_one_fails(grid):
    """The web API's conditional overwrite: two PUTs naming one version's ETag, sent at
    once: one is 200 with the new ETag, the other 412 and writes nothing."""
    cap = request(grid.client_url, "PUT", "/uri?format=SDMF", b"v1").body.decode().strip()
    path = "/uri/" + quote(cap, safe="")
    got = request(grid.client_url, "GET", path)
    tag = got.headers["etag"]
    assert got.body == b"v1" and tag.startswith('"1-')
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda body: request(grid.client_url, "PUT", path, body, {"If-Match": tag}), [b"from writer a", b"from writer b"]))
    codes = sorted(a.status for a in answers)
    assert codes == [200, 412], codes
    winner = [a for a in answers if a.status == 200][0]
    loser = [a for a in answers if a.status == 412][0]
    assert b"version" in loser.body and cap.encode() not in loser.body
    now = request(grid.client_url, "GET", path)
    assert now.headers["etag"] == winner.headers["etag"] != tag
    assert now.body in (b"from writer a", b"from writer b")
    # a stale tag is 412 and changes nothing; a Tahoe-style PUT without If-Match still works
    assert request(grid.client_url, "PUT", path, b"stale", {"If-Match": tag}).status == 412
    assert request(grid.client_url, "GET", path).body == now.body
    assert request(grid.client_url, "PUT", path, b"plain").status == 200
    assert request(grid.client_url, "GET", path).body == b"plain"


def test_two_drivers_writing_one_id_never_share_a_version(grid, conf, tmp_path):
    """Two driver instances on one state (two processes of one Blockstack client) put
    the same mutable id at once, many times: every put lands as its own version."""
    first = ShoalDriver(grid.client_url, str(tmp_path / "w1.json"), read_pause=0.05)
    first.open()
    assert first.put_mutable("contested", "v0")
    shutil.copy(first.state_file, tmp_path / "w2.json")
    second = ShoalDriver(grid.client_url, str(tmp_path / "w2.json"), read_pause=0.05)
    second.open()
    start = first.pins["contested"]
    rounds = 5

    def writer(d: ShoalDriver, name: str) -> int:
        return sum(bool(d.put_mutable("contested", f"{name}-{i}")) for i in range(rounds))

    with ThreadPoolExecutor(2) as pool:
        done = sum(pool.map(writer, [first, second], ["a", "b"]))
    assert done == 2 * rounds
    record = first._read_record(f"/uri/{quote(first.writecaps['contested'], safe='')}")
    assert record is not None and record.version == start + 2 * rounds  # no version was written twice
    assert record.data() in {f"{n}-{rounds - 1}" for n in "ab"}


def test_new_id_linked_by_another_driver_is_written_by_compare_and_swap(grid, tmp_path):
    """A driver puts an id it has never seen without looking it up first; when another
    driver (sharing the directories, not the state) linked that id meanwhile, the link
    is refused and the put lands as the next version of the other driver's file, so
    both puts count and neither overwrites the other's version."""
    first = ShoalDriver(grid.client_url, str(tmp_path / "n1.json"), read_pause=0.05)
    first.open()
    assert first.put_mutable("shared-new", "from first")
    state = json.loads((tmp_path / "n1.json").read_text(encoding="utf-8"))
    (tmp_path / "n2.json").write_text(json.dumps({"dircaps": state["dircaps"]}), encoding="utf-8")
    second = ShoalDriver(grid.client_url, str(tmp_path / "n2.json"), read_pause=0.05)
    second.open()
    assert "shared-new" not in second.pins and "shared-new" not in second.writecaps
    assert second.put_mutable("shared-new", "from second")
    assert second.writecaps["shared-new"] == first.writecaps["shared-new"]  # no second file linked
    record = first._read_record(f"/uri/{quote(first.writecaps['shared-new'], safe='')}")
    assert record is not None and (record.version, record.data()) == (first.pins["shared-new"] + 1, "from second")
    assert first.get_mutable(first.mutable_url("shared-new")) == "from second"


def test_read_your_writes_with_lagging_servers(grid, tmp_path):
    """v1 everywhere; storage3 misses v2; then only storage3 answers: the driver must not
    return v1 (it gives None) and returns v2 once the up-to-date servers are back."""
    d = ShoalDriver(grid.client_url, str(tmp_path / "ryw.json"), read_attempts=3, read_pause=0.1)
    d.open()
    assert d.put_mutable("profile", b"version one")
    url = d.mutable_url("profile")
    s1, s2, s3 = grid.storage
    s3.stop()
    assert d.put_mutable("profile", b"version two")
    grid.storage[2] = s3 = start_node(s3.nodedir)
    stop_all([s1, s2])
    only = {os.path.basename(s3.nodedir)}
    wait_until(lambda: {s["nickname"] for s in connected_servers(web_json(grid.client_url))} == only,
               60, f"the client to see only {only} connected")
    # the grid itself now serves the old version: a plain web read shows v1...
    raw = request(grid.client_url, "GET", "/uri/" + quote(d.writecaps["profile"], safe="")).body
    assert raw.endswith(b"version one")
    # ...but the driver refuses to go back in time
    t0 = time.monotonic()
    assert safely(None, "get", d.get_mutable, url) is None
    assert time.monotonic() - t0 >= 0.1
    grid.storage[0], grid.storage[1] = start_all([functools.partial(start_node, s.nodedir) for s in (s1, s2)])
    wait_for_servers(grid.client_url, 3)
    d.read_attempts = 20
    assert d.get_mutable(url) == b"version two"
    # a fresh driver on the same state file keeps the pin
    again = ShoalDriver(grid.client_url, d.state_file)
    again.open()
    assert again.pins["profile"] == d.pins["profile"] >= 1


def _recording(d: ShoalDriver) -> list[tuple[str, str, dict]]:
    """Record the (method, path, headers) of every web request the driver makes."""
    calls: list[tuple[str, str, dict]] = []
    real = d._call_tagged

    def call(method, path, body=None, ok=(200, 201), headers=None):
        calls.append((method, path, dict(headers or {})))
        return real(method, path, body, ok, headers)

    d._call_tagged = call  # type: ignore[method-assign]
    return calls


def test_new_id_is_one_request_and_an_overwrite_after_own_write_is_one(grid, tmp_path):
    """A new id is created and linked by one PUT (format=SDMF, replace=false); the
    driver that wrote or read the current version overwrites it with one conditional
    PUT naming that version's ETag, reading nothing first."""
    d = ShoalDriver(grid.client_url, str(tmp_path / "one.json"), read_pause=0.05)
    d.open()
    calls = _recording(d)
    assert d.put_mutable("fresh-id", "v0")
    assert [(m, p.rpartition("?")[2]) for m, p, _ in calls] == [("PUT", "format=SDMF&replace=false")]
    assert d.get_mutable(d.mutable_url("fresh-id")) == "v0"  # the read's ETag is remembered
    del calls[:]
    assert d.put_mutable("fresh-id", "v1")
    assert [m for m, _, _ in calls] == ["PUT"] and calls[0][2]["If-Match"].startswith('"')
    del calls[:]
    assert d.put_mutable("fresh-id", "v2")  # from the ETag the last PUT answered
    assert [m for m, _, _ in calls] == ["PUT"]
    record = d._read_record(f"/uri/{quote(d.writecaps['fresh-id'], safe='')}")
    assert record is not None and (record.version, record.data()) == (2, "v2")


def test_overwrite_from_a_stale_etag_is_refused_then_lands_once(grid, tmp_path):
    """When another writer moved the id after this driver's last write, the remembered
    ETag is refused (412, nothing written) and the put lands, once, on top of the other
    writer's version: neither write is lost and no version number is used twice."""
    first = ShoalDriver(grid.client_url, str(tmp_path / "s1.json"), read_pause=0.05)
    first.open()
    assert first.put_mutable("moved-id", "first v0")
    assert first.put_mutable("moved-id", "first v1")
    shutil.copy(first.state_file, tmp_path / "s2.json")
    second = ShoalDriver(grid.client_url, str(tmp_path / "s2.json"), read_pause=0.05)
    second.open()
    assert second.put_mutable("moved-id", "second v2")
    calls = _recording(first)
    assert first.put_mutable("moved-id", "first v3")
    assert [m for m, _, _ in calls] == ["PUT", "GET", "PUT"]  # 412 from the stale tag, a read, the write
    record = first._read_record(f"/uri/{quote(first.writecaps['moved-id'], safe='')}")
    assert record is not None and (record.version, record.data()) == (3, "first v3")


def test_errors_name_the_call_but_not_its_cap(grid, tmp_path):
    """A refused call's error (what safely() logs) names the method and path with the cap
    replaced by [cap]."""
    from shoal.apps.blockstack.driver import NotFound, redacted

    d = ShoalDriver(grid.client_url, str(tmp_path / "err.json"))
    d.open()
    cap = d.dircaps["mutable"]
    with pytest.raises(NotFound) as failed:
        d._call("GET", d._entry(cap, "no-such-name") + "?t=json")
    text = str(failed.value)
    assert "GET /uri/[cap]/no-such-name?t=json: 404" in text
    assert cap not in text and quote(cap, safe="") not in text
    assert redacted("/uri?t=mkdir") == "/uri?t=mkdir"
    assert redacted(f"/uri/{quote(cap, safe='')}") == "/uri/[cap]"
