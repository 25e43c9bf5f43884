"""The immutable uploader (shoal.immutable.upload) against real storage servers in process
(LocalGrid): Tahoe 1.20's caps and share bytes, placement and happiness,
re-uploads, full, refusing, failing and vanishing servers, and the push pipeline."""

import hashlib
import io
import json
import os
import random
from typing import Any

import pytest
from twisted.internet import defer, task

from shoal.caps import CHKCap, parse_cap
from shoal.crypto import hashes
from shoal.crypto.convergence import convergent_key
from shoal.encoding.base32 import b2a
from shoal.formats.lease import hash_lease_secret
from shoal.grid.storage_broker import StorageBroker, foolscap_connector
from shoal.immutable.encoder import ImmutableEncoder, encode_all
from shoal.immutable.params import EncodingParams, FileShape
from shoal.immutable.push import Pusher
from shoal.immutable.upload import (
    ExistingSharesError,
    NoServersError,
    SourceError,
    UploadFullError,
    UploadResult,
    UploadUnhappinessError,
    upload,
)
from shoal.storage.buckets import BucketWriter
from shoal.storage.errors import NoSpaceError
from shoal.storage.layout import si_b2a
from shoal.storage.shares import ImmutableShareFile
from shoal.testing.local_grid import LocalGrid
from shoal.testing.reactor_thread import reactor
from tests.conftest import VECTORS, vector_plaintext

VECTOR_DOC = json.loads((VECTORS / "tahoe-1.20.json").read_text())
VECTOR_SECRET = VECTOR_DOC["convergence_secret_utf8"].encode()
SECRET = b"upload-tests-convergence-secret!"
LEASE = b"upload-tests-lease-secret-32byte"
PARAMS = EncodingParams(3, 7, 10)
SMALL_SEG = EncodingParams(3, 7, 10, 3000)  # many segments from a small file
CONTAINER_HEADER = 12  # bytes of the immutable container before the share data


def put(grid: LocalGrid, data: bytes, params: EncodingParams = PARAMS, secret: bytes | None = SECRET,
        **kw: Any) -> UploadResult:
    broker = kw.pop("broker", None) or grid.broker
    return grid.call(lambda: defer.ensureDeferred(upload(
        broker, io.BytesIO(data), len(data), params=params, convergence_secret=secret,
        lease_secret=LEASE, **kw,
    )))


def holdings(grid: LocalGrid, si: bytes) -> dict[int, set[int]]:
    """server index -> share numbers it holds (finished shares) for this storage index."""
    out: dict[int, set[int]] = {}
    for i, server in enumerate(grid.servers):
        for path in server.share_files():
            if os.path.basename(os.path.dirname(path)) == si_b2a(si):
                out.setdefault(i, set()).add(int(os.path.basename(path)))
    return out


def share_path(grid: LocalGrid, server: int, si: bytes, shnum: int) -> str:
    (path,) = [p for p in grid.servers[server].share_files()
               if p.endswith(os.path.join(si_b2a(si), str(shnum)))]
    return path


def incoming(grid: LocalGrid) -> list[str]:
    found = []
    for server in grid.servers:
        for root, _dirs, files in os.walk(os.path.join(server.storage_dir, "shares", "incoming")):
            found += [os.path.join(root, f) for f in files]
    return found


def fill_up(grid: LocalGrid, i: int) -> None:
    """Server i keeps announcing the space it had but refuses every new share."""
    def go() -> None:
        space = grid.servers[i].storage.space  # type: ignore[union-attr]
        space.max_space, space.used = 0, 0
    grid.call(go)


def fresh(size: int, seed: int | None = None) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture(scope="module")
def grid():
    with LocalGrid(10) as g:
        yield g


# --- Tahoe 1.20's bytes -------------------------------------------------------------


def _vector_cases():
    wanted = {
        (3, 10, 1048576): {56, 4096, 131073, 1000000, 5000000},
        (2, 5, 1048576): {1000, 393223},
        (1, 1, 1048576): {131072},
        (3, 10, 131072): {393223, 5000000},
    }
    for case in VECTOR_DOC["immutable"]:
        key = (case["k"], case["n"], case["max_segment_size"])
        if case["plaintext"]["size"] in wanted.get(key, ()) or case["cap"].startswith("URI:LIT:"):
            yield case


@pytest.mark.parametrize(
    "case", list(_vector_cases()),
    ids=lambda c: f"{c['k']}of{c['n']}-seg{c['max_segment_size']}-{c['plaintext']['size']}",
)
def test_caps_and_shares_equal_tahoe_vectors(grid, case):
    data = vector_plaintext(case["plaintext"]["seed"], case["plaintext"]["size"])
    params = EncodingParams(case["k"], case["happy"], case["n"], case["max_segment_size"])
    result = put(grid, data, params, VECTOR_SECRET)
    assert result.cap == case["cap"]
    if result.storage_index is None:
        assert result.bytes_pushed == 0 and not result.servers
        return
    assert b2a(result.storage_index) == case["storage_index_b32"]
    held = holdings(grid, result.storage_index)
    assert sorted(sh for shares in held.values() for sh in shares) == list(range(case["n"]))
    for server, shares in held.items():
        for shnum in shares:
            expect = case["shares"][str(shnum)]
            with open(share_path(grid, server, result.storage_index, shnum), "rb") as f:
                container = f.read()
            assert int.from_bytes(container[:4], "big") == expect["container_version"]
            body = container[CONTAINER_HEADER : CONTAINER_HEADER + expect["data_length"]]
            assert hashlib.sha256(body).hexdigest() == expect["data_sha256"], shnum


def test_shares_on_disk_are_the_encoders(grid):
    data = fresh(20_000, 1)
    result = put(grid, data, SMALL_SEG)
    cap = parse_cap(result.cap)
    assert isinstance(cap, CHKCap)
    shape = FileShape(len(data), 3, 10, SMALL_SEG.segment_size_for(len(data)))
    assert shape.num_segments == 7
    shares, _ = encode_all(cap.key, shape, [data])
    for server, held in holdings(grid, result.storage_index).items():
        for shnum in held:
            share = ImmutableShareFile(share_path(grid, server, result.storage_index, shnum),
                                       result.storage_index, shnum)
            assert share.read(0, share.data_length) == shares[shnum]


def test_lease_secrets_derive_from_the_server_tubid(grid):
    result = put(grid, fresh(5000, 2))
    si = result.storage_index
    file_renew = hashes.file_renewal_secret(hashes.client_renewal_secret(LEASE), si)
    file_cancel = hashes.file_cancel_secret(hashes.client_cancel_secret(LEASE), si)
    for server, held in holdings(grid, si).items():
        tubid = grid.server_for(server).tubid
        for shnum in held:
            (lease,) = ImmutableShareFile(share_path(grid, server, si, shnum), si, shnum).leases()
            assert lease.renew_secret == hash_lease_secret(hashes.bucket_renewal_secret(file_renew, tubid))
            assert lease.cancel_secret == hash_lease_secret(hashes.bucket_cancel_secret(file_cancel, tubid))


# --- placement ----------------------------------------------------------------------


def test_one_share_per_server(grid):
    result = put(grid, fresh(100_000, 3))
    held = holdings(grid, result.storage_index)
    assert sorted(held) == list(range(10))
    assert all(len(shares) == 1 for shares in held.values())
    assert result.happiness == 10 and result.pushed_shares == 10 and result.preexisting_shares == 0
    assert sorted(result.sharemap) == list(range(10))
    assert len(set(result.sharemap.values())) == 10
    # the first answer of every server: it allocated the one share asked of it
    assert all(r.answer.startswith("allocated sh") for r in result.servers)
    assert set(result.timings) >= {"key", "placement", "push", "total"}


def test_share_i_goes_to_the_ith_permuted_server(grid):
    result = put(grid, fresh(3000, 4))
    order = [s.server_id for s in grid.broker.get_servers_for_psi(result.storage_index)]
    assert result.sharemap == {i: order[i] for i in range(10)}


def test_reupload_pushes_nothing(grid):
    data = fresh(300_000, 5)
    first = put(grid, data)
    before = {p: os.stat(p).st_mtime_ns for s in grid.servers for p in s.share_files()}
    again = put(grid, data)
    assert again.cap == first.cap
    assert again.bytes_pushed == 0 and again.pushed_shares == 0
    assert again.preexisting_shares == 10 and again.happiness == 10
    assert again.sharemap == first.sharemap
    assert "existing" in again.timings and again.timings["push"] == 0
    assert all("already had" in r.answer for r in again.servers)
    # no share was rewritten (leases are renewed in place, same mtime is not
    # guaranteed, but no share file appeared or vanished)
    assert set(before) == {p for s in grid.servers for p in s.share_files()}


def test_reupload_sends_only_missing_shares(grid):
    data = fresh(50_000, 6)
    first = put(grid, data)
    held = holdings(grid, first.storage_index)
    gone = sorted(held)[:3]
    for server in gone:
        for shnum in held[server]:
            os.unlink(share_path(grid, server, first.storage_index, shnum))
    again = put(grid, data)
    assert again.cap == first.cap
    assert again.pushed_shares == 3 and again.preexisting_shares == 7
    assert holdings(grid, first.storage_index) == held


def test_reupload_refuses_bogus_existing_shares(grid):
    data = fresh(4000, 7)
    first = put(grid, data)
    si = first.storage_index
    # another file's shares under this storage index (as if planted by someone)
    other_shape = FileShape(len(data), 3, 10, PARAMS.segment_size_for(len(data)))
    bogus, _ = encode_all(parse_cap(first.cap).key, other_shape, [fresh(4000, 8)])
    for server, held in holdings(grid, si).items():
        for shnum in held:
            path = share_path(grid, server, si, shnum)
            with open(path, "r+b") as f:
                f.seek(CONTAINER_HEADER)
                f.write(bogus[shnum])
    with pytest.raises(ExistingSharesError, match="describe another file"):
        put(grid, data)


def test_random_keys_differ(grid):
    data = fresh(10_000, 9)
    a, b = put(grid, data, secret=None), put(grid, data, secret=None)
    assert a.cap != b.cap and a.storage_index != b.storage_index
    assert a.pushed_shares == b.pushed_shares == 10
    assert put(grid, data).cap == put(grid, data).cap  # convergent ones agree


def test_literal_caps_need_no_servers():
    broker = StorageBroker(foolscap_connector(None))  # knows no server
    for size in (0, 1, 55):
        data = fresh(size, size)
        result = defer.ensureDeferred(upload(
            broker, io.BytesIO(data), size, params=PARAMS, convergence_secret=SECRET, lease_secret=LEASE,
        ))
        out = result.result
        assert out.cap.startswith("URI:LIT:") and parse_cap(out.cap).data == data
        assert out.storage_index is None and out.bytes_pushed == 0


def test_no_servers(grid):
    with pytest.raises(NoServersError):
        put(grid, fresh(1000), broker=StorageBroker(foolscap_connector(None)))


def test_source_shorter_than_size_aborts(grid):
    data = fresh(40_000, 10)
    with pytest.raises(SourceError, match="ended at byte"):
        grid.call(lambda: defer.ensureDeferred(upload(
            grid.broker, io.BytesIO(data[:30_000]), len(data), params=SMALL_SEG,
            convergence_secret=None, lease_secret=LEASE,
        )))
    assert incoming(grid) == []


def test_upload_from_current_position(grid):
    data = fresh(9000, 11)
    source = io.BytesIO(b"junk" + data)
    source.seek(4)
    result = grid.call(lambda: defer.ensureDeferred(upload(
        grid.broker, source, len(data), params=PARAMS, convergence_secret=SECRET, lease_secret=LEASE,
    )))
    assert result.cap == put(grid, data).cap


# --- servers that cannot or will not take shares ----------------------------------

READ_ONLY = 11  # announces 1000 bytes of space: never asked to allocate


@pytest.fixture(scope="module")
def fault_grid():
    with LocalGrid(12, max_space={READ_ONLY: 1000}) as g:
        yield g


@pytest.fixture
def faults(fault_grid):
    """The 12-server grid, with every fault a test injects undone afterwards."""
    saved = [(s.storage.space.max_space, s.storage.space.used) for s in fault_grid.servers]  # type: ignore[union-attr]
    yield fault_grid

    def undo() -> None:
        for server, (max_space, used) in zip(fault_grid.servers, saved, strict=True):
            storage = server.storage
            storage.space.max_space, storage.space.used = max_space, used
            storage.__dict__.pop("allocate_buckets", None)
    fault_grid.call(undo)


def permuted(grid: LocalGrid, data: bytes, params: EncodingParams = PARAMS) -> list[int]:
    """Grid indexes of the servers in the permuted order this file's convergent upload uses."""
    segment_size = params.segment_size_for(len(data))
    si = hashes.storage_index_hash(convergent_key([data], SECRET, params.k, params.n, segment_size))
    index = {s.server_id: i for i, s in enumerate(grid.servers)}
    return [index[s.server_id] for s in grid.broker.get_servers_for_psi(si)]


def test_full_and_refusing_servers_are_replaced(faults):
    data = fresh(200_000, 12)
    refusing = next(i for i in permuted(faults, data) if i != READ_ONLY)  # asked first
    fill_up(faults, refusing)  # announces room, refuses
    result = put(faults, data)
    held = holdings(faults, result.storage_index)
    assert READ_ONLY not in held and refusing not in held
    assert result.happiness == 10 and len(held) == 10
    assert all(len(v) == 1 for v in held.values())
    report = {r.server_id: r for r in result.servers}
    assert "read-only" in report[faults.servers[READ_ONLY].server_id].answer
    assert not report[faults.servers[READ_ONLY].server_id].asked
    assert report[faults.servers[refusing].server_id].answer == "full: refused sh0"
    assert incoming(faults) == []


def test_failing_server_is_replaced(faults):
    data = fresh(30_000, 13)
    failing = next(i for i in permuted(faults, data) if i != READ_ONLY)

    def broken(*_a: Any, **_k: Any) -> Any:
        raise OSError("disk on fire")
    faults.servers[failing].storage.allocate_buckets = broken  # type: ignore[union-attr,method-assign]
    result = put(faults, data)
    assert result.happiness == 10
    assert failing not in holdings(faults, result.storage_index)
    report = {r.server_id: r for r in result.servers}[faults.servers[failing].server_id]
    assert report.error is not None and report.answer == "error: disk on fire"


def test_servers_failing_with_no_space_make_a_full_upload(faults):
    """A server whose allocate fails with NoSpaceError (no room for the lease on
    a share it holds) is full, not broken: the upload is UploadFullError (507)."""
    def no_room(*_a: Any, **_k: Any) -> Any:
        raise NoSpaceError("storage index x, share 0: no room for a new lease")

    for i in range(12):
        if i != READ_ONLY:
            faults.servers[i].storage.allocate_buckets = no_room  # type: ignore[union-attr,method-assign]
    with pytest.raises(UploadFullError) as info:
        put(faults, fresh(30_000, 17))
    assert "no room for a new lease" in str(info.value)


def test_a_disk_filling_during_the_push_makes_a_full_upload(faults, monkeypatch):
    """Writes refused with NoSpaceError mid-push (the disk filled): UploadFullError (507)."""
    def no_room(self: Any, offset: int, data: bytes) -> None:
        raise NoSpaceError(f"share {self.shnum}: write at offset {offset}: the disk is full")

    monkeypatch.setattr(BucketWriter, "write", no_room)
    with pytest.raises(UploadFullError) as info:
        put(faults, fresh(30_000, 18))
    assert "the disk is full" in str(info.value)
    monkeypatch.undo()
    assert incoming(faults) == []


def test_fewer_servers_than_shares_doubles_up(faults):
    result = put(faults, fresh(30_000, 14), EncodingParams(3, 11, 22))
    held = holdings(faults, result.storage_index)
    assert sorted(len(v) for v in held.values()) == [2] * 11
    assert result.happiness == 11


def test_unhappy_upload_fails_clearly_and_leaves_nothing(faults):
    for i in (1, 3, 5, 8, 9):
        fill_up(faults, i)
    data = fresh(100_000, 15)
    before = {p for s in faults.servers for p in s.share_files()}
    with pytest.raises(UploadUnhappinessError) as info:
        put(faults, data)
    message = str(info.value)
    assert "servers-of-happiness 6" in message and "shares.happy=7" in message
    assert ("shares could be placed on only 6 server(s) such that any 3 of them have enough shares to "
            "recover the file, but we were asked to place shares on at least 7 such servers.") in message
    for i in range(12):  # every server consulted is named with its answer
        assert f"mem{i} [" in message
    assert message.count("full: refused") == 5
    assert message.count(": allocated sh") == 6
    assert "read-only" in message
    # every allocated bucket was aborted: no share, finished or partial, appeared
    assert {p for s in faults.servers for p in s.share_files()} == before
    assert incoming(faults) == []
    # the same servers make a happy upload at shares.happy=6
    result = put(faults, data, EncodingParams(3, 6, 10))
    assert result.happiness == 6 and len(holdings(faults, result.storage_index)) == 6


def test_unhappy_when_too_few_servers(faults):
    before = {p for s in faults.servers for p in s.share_files()}
    with pytest.raises(UploadUnhappinessError, match="servers-of-happiness 11"):
        put(faults, fresh(5000, 16), EncodingParams(2, 13, 14))
    assert {p for s in faults.servers for p in s.share_files()} == before
    assert incoming(faults) == []


def test_reupload_spreads_doubled_up_shares(faults):
    """Shares found two per server on five servers: rely on one per server,
    push the others to empty servers, abort the speculative writers."""
    data = fresh(60_000, 20)
    shape = FileShape(len(data), 3, 10, PARAMS.segment_size_for(len(data)))
    key = convergent_key([data], SECRET, 3, 10, shape.segment_size)
    shares, encoded = encode_all(key, shape, [data])
    faults.put_shares(encoded.storage_index, dict(enumerate(shares)), {sh: sh % 5 for sh in range(10)})
    result = put(faults, data)
    assert result.cap == encoded.cap.to_string()
    assert result.preexisting_shares == 10 and result.happiness == 10
    assert result.pushed_shares == 5
    held = holdings(faults, encoded.storage_index)
    assert len(held) == 10
    assert sorted(len(v) for v in held.values()) == [1] * 5 + [2] * 5
    assert incoming(faults) == []


# --- servers that vanish while we write --------------------------------------------


def drop_after_writes(grid: LocalGrid, i: int, writes: int) -> None:
    """Server i fails its `writes`-th bucket write and disconnects."""
    server = grid.servers[i]
    storage = server.storage
    assert storage is not None
    original = storage.allocate_buckets
    count = [0]

    def allocate(*args: Any, **kwargs: Any) -> Any:
        already, writers = original(*args, **kwargs)
        for writer in writers.values():
            real_write = writer.write

            def write(offset: int, data: bytes, real_write: Any = real_write) -> None:
                count[0] += 1
                if count[0] >= writes:
                    reactor.callLater(0, server.stop)
                    raise ConnectionError("server unplugged")
                real_write(offset, data)

            writer.write = write  # type: ignore[method-assign]
        return already, writers

    storage.allocate_buckets = allocate  # type: ignore[method-assign]


def test_server_lost_mid_upload_is_dropped():
    with LocalGrid(10) as g:
        drop_after_writes(g, 6, writes=3)
        data = fresh(4 * 1024 * 1024 + 17, 17)
        result = put(g, data, write_size=256 * 1024)
        lost = g.servers[6].server_id
        assert lost not in result.sharemap.values()
        assert result.happiness == 9 and len(result.sharemap) == 9
        report = {r.server_id: r for r in result.servers}[lost]
        assert "while writing" in report.answer
        held = holdings(g, result.storage_index)
        assert 6 not in held and len(held) == 9
        # what is on the grid decodes to the file
        cap = parse_cap(result.cap)
        shape = FileShape(len(data), 3, 10, PARAMS.segment_size_for(len(data)))
        shares, _ = encode_all(cap.key, shape, [data])
        for server, shnums in held.items():
            for shnum in shnums:
                with open(share_path(g, server, result.storage_index, shnum), "rb") as f:
                    assert f.read()[CONTAINER_HEADER:][: len(shares[shnum])] == shares[shnum]


def test_losing_too_many_servers_aborts_everything():
    with LocalGrid(10) as g:
        for i in (0, 2, 4, 6):
            drop_after_writes(g, i, writes=2)
        with pytest.raises(UploadUnhappinessError, match="lost sh"):
            put(g, fresh(3 * 1024 * 1024, 18), write_size=128 * 1024)
        # no partial share anywhere: aborted, not closed
        assert [p for s in g.servers if s.storage is not None for p in s.share_files()] == []
        assert incoming(g) == []


# --- the push pipeline ----------------------------------------------------------------


class FakeWriter:
    """A bucket writer that records writes and acknowledges them after a delay."""

    def __init__(self, pusher_ref: list[Any], delay: float) -> None:
        self.pusher_ref = pusher_ref
        self.delay = delay
        self.writes: list[tuple[int, bytes]] = []
        self.closed = False
        self.max_outstanding = 0

    def _answer(self) -> Any:
        pusher = self.pusher_ref[0]
        self.max_outstanding = max(self.max_outstanding, pusher._outstanding)
        return task.deferLater(reactor, self.delay, lambda: None)

    def write(self, offset: int, data: bytes) -> Any:
        assert not self.closed
        self.writes.append((offset, data))
        return self._answer()

    def close(self) -> Any:
        self.closed = True
        return self._answer()

    def abort(self) -> Any:
        return self._answer()


@pytest.mark.parametrize("size,segment", [(5 * 1024 * 1024 + 5, 1024 * 1024), (600_000, 9999), (100, 99)])
def test_pipeline_writes_are_large_ordered_and_bounded(size, segment):
    data = fresh(size, 19)
    k, n = 3, 10
    shape = FileShape(size, k, n, EncodingParams(k, 7, n, segment).segment_size_for(size))
    key = b"k" * 16
    expected, _ = encode_all(key, shape, [data])
    ref: list[Any] = []
    writers = {sh: FakeWriter(ref, 0.001) for sh in range(n)}
    write_size = 256 * 1024
    pusher = Pusher(ImmutableEncoder(key, shape), io.BytesIO(data), 0,
                    {sh: (f"server{sh}", w) for sh, w in writers.items()},
                    on_drop=lambda *a: None, write_size=write_size)
    ref.append(pusher)
    result = reactor_call(lambda: defer.ensureDeferred(pusher.run()))
    assert result.bytes_pushed == sum(len(s) for s in expected)
    for sh, w in writers.items():
        assert w.closed
        offsets = [off for off, _ in w.writes]
        assert offsets == sorted(offsets) and offsets[0] == 0
        assert b"".join(d for _, d in w.writes) == expected[sh]  # header, blocks, trailer
        assert all(len(d) >= write_size for _, d in w.writes[:-1])
        assert w.max_outstanding <= pusher.window
    assert pusher._outstanding == 0


def reactor_call(fn: Any) -> Any:
    from shoal.testing import reactor_thread

    return reactor_thread.call(fn)
