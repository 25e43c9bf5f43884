"""StorageServer as a whole: space limits, read-only, advisories, stats, startup."""

import os

import pytest

from shoal.formats.lease import hash_lease_secret
from shoal.protocol.version import PROTOCOL_KEY
from shoal.storage import (
    BadRequestError,
    ExpirationPolicy,
    NoSpaceError,
    ReadOnlyError,
    StorageServer,
)
from shoal.storage.expiration import LEASE_DURATION
from shoal.storage.layout import si_b2a
from shoal.storage.shares import ImmutableShareFile, MutableShareFile
from tests.storage_suite.harness import NODEID
from tests.unit.storage.conftest import GiB

SI = b"\x22" * 16
SLOT = b"\x33" * 16
RENEW, CANCEL = b"r" * 32, b"c" * 32
SECRETS = (b"w" * 32, RENEW, CANCEL)


def upload(server, shnums=(0,), data=b"data", si=SI, renew=RENEW, cancel=CANCEL):
    _, writers = server.allocate_buckets(si, renew, cancel, set(shnums), len(data))
    for writer in writers.values():
        writer.write(0, data)
        writer.close()
    return writers


def test_nodeid_must_be_20_bytes(storage_dir):
    with pytest.raises(ValueError):
        StorageServer(storage_dir, b"short")


def test_get_version_reports_application_version_and_space(make_server, disk):
    server = make_server(app_version=b"shoal/9.9", reserved_space=10 * GiB)
    version = server.get_version()
    assert version[b"application-version"] == b"shoal/9.9"
    assert version[PROTOCOL_KEY][b"available-space"] == 90 * GiB
    disk.free = 5 * GiB
    assert server.get_version()[PROTOCOL_KEY][b"available-space"] == 0


def test_reserved_space_allocates_fewer_buckets(make_server, disk):
    disk.free = 10 * 4096
    server = make_server(reserved_space=9 * 4096)
    _, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0, 1, 2, 3, 4}, 1_000)
    assert sorted(writers) == [0, 1, 2]  # 3 x 1084 bytes fit in 4096, not 4
    assert server.stats()["storage_server.allocated"] == 3 * 1084
    for writer in writers.values():
        writer.abort()
    assert server.stats()["storage_server.allocated"] == 0


def test_reserved_space_refuses_mutable_growth(make_server, disk):
    disk.free = 10 * 4096
    server = make_server(reserved_space=9 * 4096)
    assert server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {0: ([], [(0, b"x" * 100)], None)}, [])[0]
    with pytest.raises(NoSpaceError, match="mutable write needs 5000 more bytes, only 4096 available"):
        server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {0: ([], [(100, b"x" * 5000)], None)}, [])
    assert server.slot_readv(SLOT, [], [(0, 2000)]) == {0: [b"x" * 100]}


def test_max_space_counts_existing_shares_at_start(make_server):
    server = make_server()
    upload(server, data=b"x" * 1000)
    server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {0: ([], [(0, b"y" * 500)], None)}, [])
    server = make_server(max_space=10_000)
    used = 12 + 1000 + 72 + 468 + 500 + 4
    assert server.stats()["storage_server.used_space"] == used
    assert server.available_space() == 10_000 - used
    upload(server, (1,), data=b"z" * 100)
    assert server.stats()["storage_server.used_space"] == used + 184
    server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {0: ([], [], 0)}, [])
    assert server.stats()["storage_server.used_space"] == used + 184 - 972


def test_leases_need_room_too(make_server, disk):
    server = make_server()
    upload(server)
    disk.free = 0
    server.add_lease(SI, RENEW, CANCEL)  # a renewal takes no room
    with pytest.raises(NoSpaceError, match="no room for a new lease"):
        server.add_lease(SI, b"R" * 32, b"C" * 32)
    with pytest.raises(NoSpaceError):
        server.allocate_buckets(SI, b"R" * 32, b"C" * 32, {1}, 10)


def test_read_only_refuses_uploads_and_mutable_writes_but_keeps_leases(make_server):
    server = make_server()
    upload(server)
    server = make_server(readonly=True)
    already, writers = server.allocate_buckets(SI, b"R" * 32, b"C" * 32, {0, 1}, 4)
    assert (already, writers) == ({0}, {})
    leases = ImmutableShareFile(server.layout.share_path(SI, 0), SI, 0).leases()
    assert len(leases) == 2  # the new lease was still added
    with pytest.raises(ReadOnlyError, match="read-only"):
        server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {0: ([], [(0, b"x")], None)}, [])
    assert not os.path.exists(server.layout.bucket_dir(SLOT))
    stats = server.stats()
    assert stats["storage_server.accepting_immutable_shares"] == 0
    assert stats["storage_server.disk_avail"] == 0


def test_allocate_adds_or_renews_leases_on_held_shares(server, clock):
    upload(server, (0, 1))
    clock.advance(1000)
    server.allocate_buckets(SI, RENEW, CANCEL, {0}, 4)
    server.allocate_buckets(SI, b"R" * 32, b"C" * 32, set(), 4)
    for shnum in (0, 1):
        first, second = ImmutableShareFile(server.layout.share_path(SI, shnum), SI, shnum).leases()
        assert first.renew_secret == hash_lease_secret(RENEW)
        assert first.expiration_time == int(clock()) + LEASE_DURATION
        assert second.renew_secret == hash_lease_secret(b"R" * 32)


def test_immutable_and_mutable_calls_do_not_mix(server):
    upload(server)
    server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {0: ([], [(0, b"m")], None)}, [])
    with pytest.raises(BadRequestError, match="is not a mutable share"):
        server.slot_testv_and_readv_and_writev(SI, SECRETS, {0: ([], [(0, b"m")], None)}, [])
    with pytest.raises(BadRequestError, match="not a mutable slot"):
        server.slot_readv(SI, [], [(0, 1)])
    with pytest.raises(BadRequestError, match="is a mutable share"):
        server.get_buckets(SLOT)
    with pytest.raises(BadRequestError, match="is a mutable share"):
        server.allocate_buckets(SLOT, RENEW, CANCEL, {1}, 10)


def test_corrupt_immutable_share_is_skipped_by_get_buckets(server):
    upload(server, (0, 1))
    with open(server.layout.share_path(SI, 1), "r+b") as handle:
        handle.write(b"\x00\x00\x00\x09")  # an unknown container version
    assert set(server.get_buckets(SI)) == {0}
    with open(server.layout.share_path(SI, 0), "wb") as handle:
        handle.write(b"\x00\x00\x00\x02")  # too short for a header
    assert server.get_buckets(SI) == {}


def test_startup_discards_partial_uploads(make_server):
    server = make_server()
    _, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0}, 10)
    writers[0].write(0, b"partial")
    server = make_server()
    assert os.listdir(server.layout.incoming_dir) == ["tmp"]
    _, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0}, 10)
    assert set(writers) == {0}


def test_corruption_advisory_is_written_as_tahoe_writes_it(server, clock):
    upload(server, (3,))
    clock.now = 1_700_000_000.25
    server.advise_corrupt_share(b"immutable", SI, 3, b"block hash tree failure \xe2\x9c\x97")
    server.advise_corrupt_share(b"immutable", SI, 4, b"not held")
    server.advise_corrupt_share(b"mutable", SLOT, 0, b"not held either")
    names = os.listdir(server.layout.advisory_dir)
    assert names == ["2023-11-14T221320.250000--%s-3" % si_b2a(SI)]
    text = open(os.path.join(server.layout.advisory_dir, names[0]), encoding="utf-8").read()
    assert text == (
        "report: Share Corruption\n"
        "type: immutable\n"
        "storage_index: %s\n"
        "share_number: 3\n"
        "\n"
        "block hash tree failure \u2717\n"
        "\n" % si_b2a(SI)
    )
    # b"data" is no share at all: the server found it damaged and moved it aside
    assert server.get_buckets(SI) == {}
    upload(server, (3,))
    server.advise_corrupt_share(b"immutable", SI, 3, b"same moment")
    assert len(os.listdir(server.layout.advisory_dir)) == 2


def test_corruption_advisory_bad_arguments(server):
    for args in [
        (b"directory", SI, 0, b"r"),
        ("immutable", SI, 0, b"r"),
        (b"immutable", SI, 300, b"r"),
        (b"immutable", SI, 0, "reason"),
        (b"immutable", SI, 0, b"r" * 70_000),
    ]:
        with pytest.raises(BadRequestError):
            server.advise_corrupt_share(*args)


def test_stats_and_bucket_counts(server):
    upload(server, (0, 1))
    server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {0: ([], [(0, b"m")], None)}, [])
    assert server.bucket_counts()["last-complete-bucket-count"] is None
    while server.crawler.run_slice(10.0):
        pass
    assert server.bucket_counts() == {
        "last-complete-bucket-count": 2,
        "cycle-in-progress": False,
        "cycle-to-date-bucket-count": 0,
    }
    stats = server.stats()
    assert stats["storage_server.total_bucket_count"] == 2
    assert stats["storage_server.accepting_immutable_shares"] == 1
    assert stats["storage_server.disk_avail"] == 100 * GiB
    assert stats["storage_server.uploads_in_progress"] == 0


def test_shutdown_aborts_uploads_and_saves_crawler_state(make_server):
    server = make_server(expiration=ExpirationPolicy())
    _, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0}, 10)
    server.shutdown()
    assert writers[0].closed
    assert os.path.exists(server.crawler.state_path)


def test_mutable_share_records_write_enabler_and_nodeid(server):
    server.slot_testv_and_readv_and_writev(SLOT, SECRETS, {2: ([], [(0, b"m")], None)}, [])
    share = MutableShareFile(server.layout.share_path(SLOT, 2), SLOT, 2)
    assert share.header.write_enabler == b"w" * 32
    assert share.header.write_enabler_nodeid == NODEID
    assert share.header.version == 2
    (lease,) = share.leases()
    assert (lease.owner_num, lease.nodeid) == (1, NODEID)
    assert lease.renew_secret == hash_lease_secret(RENEW)


def test_a_corrupt_share_can_be_uploaded_again(server):
    upload(server, (0,), data=b"good")
    with open(server.layout.share_path(SI, 0), "r+b") as handle:
        handle.write(b"\xff\xff\xff\xff")
    already, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0}, 4)
    assert already == set() and set(writers) == {0}
    writers[0].write(0, b"good")
    writers[0].close()
    assert server.get_buckets(SI)[0].read(0, 10) == b"good"


def test_have_shares(make_server):
    server = make_server()
    assert not server.have_shares()
    _, writers = server.allocate_buckets(SI, RENEW, CANCEL, {0}, 4)
    assert not server.have_shares()  # an upload in progress is not a share
    writers[0].close()
    assert server.have_shares()
