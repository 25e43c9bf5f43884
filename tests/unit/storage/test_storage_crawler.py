"""The lease crawler and the expiration policy: slices, restarts, expiry, statistics."""

import hashlib
import json
import os

import pytest

from shoal.storage import ExpirationPolicy
from shoal.storage.expiration import LEASE_DURATION
from shoal.storage.shares import ImmutableShareFile, MutableShareFile
from shoal.storage.walk import HISTORY_LENGTH

DAY = 24 * 3600
START = 1_700_000_000


def si(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:16]


def secret(label: str) -> bytes:
    return hashlib.sha256(b"secret" + label.encode()).digest()


def upload(server, label, renew_label, shnums=(0,), size=100):
    _, writers = server.allocate_buckets(si(label), secret(renew_label), secret("c" + renew_label),
                                         set(shnums), size)
    for writer in writers.values():
        writer.write(0, b"x" * size)
        writer.close()


def slot(server, label, renew_label, size=100):
    secrets = (secret("we" + label), secret(renew_label), secret("c" + renew_label))
    server.slot_testv_and_readv_and_writev(si(label), secrets, {0: ([], [(0, b"m" * size)], None)}, [])


def crawl(server, **options):
    while server.crawler.run_slice(60.0, **options):
        pass
    return server.crawler.status()


# -- the policy ---------------------------------------------------------------

def test_policy_defaults_and_validation():
    policy = ExpirationPolicy()
    assert (policy.enabled, policy.mode, policy.sharetypes) == (False, "age", {"mutable", "immutable"})
    with pytest.raises(ValueError, match="expire.mode"):
        ExpirationPolicy(mode="sometimes")
    with pytest.raises(ValueError, match="needs expire.cutoff_date"):
        ExpirationPolicy(enabled=True, mode="cutoff-date")
    assert not ExpirationPolicy(mode="cutoff-date").lease_expired(0, START)  # counts nothing
    # the setting of the other mode is ignored, as Tahoe's expirer ignores it
    assert not ExpirationPolicy(enabled=True, cutoff_date=START).lease_expired(START + LEASE_DURATION, START)
    assert ExpirationPolicy(
        enabled=True, mode="cutoff-date", cutoff_date=START, override_lease_duration=10**9
    ).lease_expired(START - 1 + LEASE_DURATION, START)
    with pytest.raises(ValueError, match="share types"):
        ExpirationPolicy(sharetypes={"directories"})
    with pytest.raises(ValueError, match="non-negative int"):
        ExpirationPolicy(override_lease_duration=-1)
    assert ExpirationPolicy(sharetypes=["mutable"]).sharetypes == frozenset({"mutable"})


def test_age_mode_uses_the_lease_or_the_override_duration():
    expires = START + LEASE_DURATION  # granted at START
    plain = ExpirationPolicy(enabled=True)
    assert not plain.lease_expired(expires, expires - 1)
    assert plain.lease_expired(expires, expires + 1)
    longer = ExpirationPolicy(enabled=True, override_lease_duration=60 * DAY)
    assert not longer.lease_expired(expires, START + 59 * DAY)
    assert longer.lease_expired(expires, START + 61 * DAY)
    shorter = ExpirationPolicy(enabled=True, override_lease_duration=DAY)
    assert shorter.lease_expired(expires, START + 2 * DAY)


def test_cutoff_mode_expires_leases_granted_before_the_date():
    policy = ExpirationPolicy(enabled=True, mode="cutoff-date", cutoff_date=START)
    assert policy.lease_expired(START - 1 + LEASE_DURATION, START)
    assert not policy.lease_expired(START + LEASE_DURATION, START - 10 * DAY)
    assert policy.may_expire("mutable") and policy.may_expire("immutable")
    assert not ExpirationPolicy(sharetypes={"mutable"}).may_expire("immutable")


# -- the crawler ----------------------------------------------------------------

def test_disabled_expiration_only_counts(make_server, clock):
    server = make_server()
    upload(server, "a", "old")
    slot(server, "b", "old")
    clock.advance(40 * DAY)
    status = crawl(server)
    (record,) = status["history"].values()
    assert record["buckets-examined"] == 2
    assert record["shares-examined"] == 2
    assert record["shares-expired"] == 2 and record["leases-expired"] == 2
    assert record["shares-removed"] == 0 and record["bytes-reclaimed"] == 0
    assert record["expiration-enabled"] is False
    assert set(server.get_buckets(si("a"))) == {0}
    assert status["last-complete-bucket-count"] == 2


def test_expired_shares_are_removed_and_live_leases_keep_shares(make_server, clock):
    server = make_server(expiration=ExpirationPolicy(enabled=True), max_space=10**9)
    upload(server, "gone", "old", shnums=(0, 1))
    slot(server, "gone-slot", "old")
    upload(server, "kept", "old")
    slot(server, "kept-slot", "old")
    clock.advance(20 * DAY)
    server.add_lease(si("kept"), secret("new"), secret("cnew"))
    server.add_lease(si("kept-slot"), secret("new"), secret("cnew"))
    used_before = server.stats()["storage_server.used_space"]
    clock.advance(15 * DAY)  # the old leases are now 35 days old, the new ones 15
    status = crawl(server)
    (record,) = status["history"].values()
    assert server.get_buckets(si("gone")) == {}
    assert not os.path.exists(server.layout.bucket_dir(si("gone")))
    assert server.slot_readv(si("gone-slot"), [], [(0, 1)]) == {}
    assert record["shares-removed"] == 3
    assert record["shares-removed-immutable"] == 2 and record["shares-removed-mutable"] == 1
    assert record["buckets-removed"] == 2
    assert record["leases-removed"] == 5  # three whole shares plus one old lease on each kept share
    (lease,) = ImmutableShareFile(server.layout.share_path(si("kept"), 0), si("kept"), 0).leases()
    assert lease.owner_num == 1
    kept = MutableShareFile(server.layout.share_path(si("kept-slot"), 0), si("kept-slot"), 0)
    assert kept.slots()[0] is None and kept.slots()[1] is not None
    assert server.get_buckets(si("kept"))[0].read(0, 200) == b"x" * 100
    reclaimed = record["bytes-reclaimed"]
    assert reclaimed == 2 * (12 + 100 + 72) + (468 + 100 + 4) + 72
    assert server.stats()["storage_server.used_space"] == used_before - reclaimed
    assert status["last-complete-bucket-count"] == 2


def test_share_types_limit_what_expires(make_server, clock):
    server = make_server(expiration=ExpirationPolicy(enabled=True, sharetypes={"mutable"}))
    upload(server, "imm", "old")
    slot(server, "mut", "old")
    clock.advance(40 * DAY)
    crawl(server)
    assert set(server.get_buckets(si("imm"))) == {0}
    assert server.slot_readv(si("mut"), [], [(0, 1)]) == {}


def test_shares_without_leases_and_corrupt_shares_are_kept(make_server, clock):
    server = make_server(expiration=ExpirationPolicy(enabled=True))
    upload(server, "no-lease", "old")
    path = server.layout.share_path(si("no-lease"), 0)
    with open(path, "r+b") as handle:  # a share whose lease count is zero
        handle.seek(8)
        handle.write(bytes(4))
        handle.truncate(12 + 100)
    upload(server, "bad", "old")
    bad = server.layout.share_path(si("bad"), 0)
    with open(bad, "r+b") as handle:
        handle.write(b"\x00\x00\x00\x07")
    clock.advance(40 * DAY)
    (record,) = crawl(server)["history"].values()
    assert os.path.exists(path) and os.path.exists(bad)
    assert record["corrupt-shares"] == [[os.path.basename(os.path.dirname(bad)), 0]]
    assert record["shares-examined"] == 1 and record["shares-removed"] == 0


def test_slices_resume_across_a_restart(make_server, clock):
    labels = [f"bucket-{n}" for n in range(7)]
    server = make_server(expiration=ExpirationPolicy(enabled=True))
    for label in labels:
        upload(server, label, "old")
    clock.advance(40 * DAY)
    crawler = server.crawler
    assert crawler.run_slice(60.0, max_buckets=2) is True
    assert crawler.run_slice(60.0, max_buckets=1) is True
    status = crawler.status()
    assert status["cycle-in-progress"] and status["current-cycle"] == 0
    assert status["cycle-to-date"]["buckets-examined"] == 3
    assert 0 < status["cycle-complete-percentage"] < 100
    on_disk = json.load(open(crawler.state_path))
    assert on_disk["cycle-to-date"]["buckets-examined"] == 3

    server = make_server(expiration=ExpirationPolicy(enabled=True))  # a restart
    assert server.crawler.status()["cycle-to-date"]["buckets-examined"] == 3
    status = crawl(server, max_buckets=1)
    (record,) = status["history"].values()
    assert record["buckets-examined"] == 7 and record["shares-removed"] == 7
    assert all(server.get_buckets(si(label)) == {} for label in labels)


def test_a_slice_does_at_least_one_bucket(make_server):
    server = make_server()
    for n in range(3):
        upload(server, f"b{n}", "r")
    slices = 0
    while server.crawler.run_slice(0.0):
        slices += 1
    assert 3 <= slices <= 1024
    assert server.crawler.status()["last-complete-bucket-count"] == 3


def test_cycles_wait_for_the_minimum_cycle_time_and_keep_ten(make_server, clock):
    server = make_server(crawler_minimum_cycle_time=3600)
    upload(server, "a", "r")
    crawl(server)
    assert server.crawler.run_slice(60.0) is False
    status = server.crawler.status()
    assert status["cycle-in-progress"] is False
    assert status["next-crawl-time"] == clock() + 3600
    clock.advance(3601)
    for _ in range(HISTORY_LENGTH + 2):
        crawl(server)
        clock.advance(3601)
    status = server.crawler.status()
    assert status["last-cycle-finished"] == HISTORY_LENGTH + 2
    assert sorted(status["history"], key=int) == [str(n) for n in range(3, HISTORY_LENGTH + 3)]


def test_unreadable_state_starts_afresh(make_server, storage_dir):
    server = make_server()
    upload(server, "a", "r")
    crawl(server)
    with open(server.crawler.state_path, "wb") as handle:
        handle.write(b"{not json")
    server = make_server()
    assert server.crawler.status()["last-cycle-finished"] is None
    crawl(server)
    assert server.crawler.status()["last-complete-bucket-count"] == 1


def test_a_state_file_written_mid_cycle_before_the_walk_skeleton_resumes(make_server, clock):
    """The state's layout is unchanged: Tahoe's last-complete-prefix-index and
    last-complete-bucket, as the crawler wrote them before storage.walk."""
    from shoal.storage.crawler import empty_cycle
    from shoal.storage.layout import ALL_PREFIXES

    labels = [f"old-{n}" for n in range(6)]
    server = make_server(expiration=ExpirationPolicy(enabled=True))
    for label in labels:
        upload(server, label, "old")
    order = sorted(labels, key=lambda label: server.layout.bucket_dir(si(label))[-29:])
    done = order[:3]
    last = os.path.basename(server.layout.bucket_dir(si(done[-1])))
    counts = empty_cycle()
    counts["buckets-examined"] = 3
    state = {
        "version": 1, "current-cycle": 0, "last-cycle-finished": None,
        "current-cycle-start-time": START, "next-cycle-time": None, "history": {},
        "last-complete-prefix-index": ALL_PREFIXES.index(last[:2]) - 1,
        "last-complete-bucket": last, "cycle-to-date": counts, "last-complete-bucket-count": None,
    }
    server.shutdown()
    with open(server.crawler.state_path, "w") as handle:
        json.dump(state, handle)
    clock.advance(40 * DAY)
    server = make_server(expiration=ExpirationPolicy(enabled=True))
    (record,) = crawl(server, max_buckets=1)["history"].values()
    assert record["buckets-examined"] == 6 and record["shares-removed"] == 3
    assert [label for label in order if server.get_buckets(si(label))] == done
