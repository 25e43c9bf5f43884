"""The scrubbing crawler: byte-bounded slices, resumable state, quarantine of damaged shares."""

import json
import os

from shoal.formats import immutable_container as ic
from shoal.storage.scrubber import STATE_FILE
from tests.unit.storage.test_quarantine import LAYOUT, SHARES, encoded, flip, quarantined, store

DAY = 24 * 3600


def scrub(server, **options):
    slices = 1
    while server.scrubber.run_slice(60.0, **options):
        slices += 1
    return slices


def test_a_cycle_quarantines_exactly_the_damaged_shares(server):
    files = [encoded(9_000, 999, seed=s) for s in range(4)]
    for shares, si in files:
        store(server, si, dict(enumerate(shares)))
    bad = {(files[0][1], 3), (files[2][1], 9), (files[3][1], 0)}
    flip(server.layout.share_path(files[0][1], 3), ic.DATA_OFFSET + LAYOUT.data)  # a block
    flip(server.layout.share_path(files[2][1], 9), ic.DATA_OFFSET + 700 + 20)  # somewhere in the trees
    flip(server.layout.share_path(files[3][1], 0), 1, 0x10)  # the container version
    scrub(server)
    status = server.scrubber.status()
    assert not status["cycle-in-progress"] and status["last-cycle-finished"] == 0
    record = status["history"]["0"]
    assert record["shares-examined"] == 40 and record["buckets-examined"] == 4
    assert record["shares-quarantined"] == 3 and record["shares-good"] == 37
    assert {(bytes(server.layout.bucket_dir(si)[-26:], "ascii"), sh) for si, sh in bad} == {
        (name.encode("ascii"), sh) for name, sh, _why in record["quarantined"]
    }
    for si, sh in bad:
        assert not os.path.exists(server.layout.share_path(si, sh))
    assert len(quarantined(server)) == 3


def test_slices_are_bounded_by_bytes_and_resume_after_a_restart(make_server, clock):
    server = make_server()
    shares, si = encoded(60_000, 3_000)  # 20 segments of 1000-byte blocks per share
    store(server, si, dict(enumerate(shares)))
    flip(server.layout.share_path(si, 9), ic.DATA_OFFSET + LAYOUT.data + 19 * 1000 + 1)  # last block
    assert server.scrubber.run_slice(60.0, max_bytes=8_000)
    position = server.scrubber.state["position"]
    assert position[2] == 0 and 0 < position[3] < 20  # inside share 0
    checked = server.scrubber.state["cycle-to-date"]["bytes-checked"]
    assert checked <= 8_000 + 2_000  # the budget, plus at most one span's rounding
    server.shutdown()
    restarted = make_server()
    assert restarted.scrubber.state["position"] == position
    slices = scrub(restarted, max_bytes=8_000)
    assert slices >= 20
    record = restarted.scrubber.status()["history"]["0"]
    assert record["shares-examined"] == 10 and record["shares-quarantined"] == 1
    assert record["bytes-checked"] >= 10 * 20_000
    assert os.path.exists(os.path.join(restarted.layout.root, STATE_FILE))
    # the next cycle waits a week
    assert not restarted.scrubber.run_slice(60.0)
    clock.advance(8 * DAY)
    scrub(restarted)
    assert restarted.scrubber.status()["history"]["1"]["shares-good"] == 9


def test_a_share_replaced_mid_check_is_checked_again_from_the_start(server):
    shares, si = encoded(60_000, 3_000)
    store(server, si, {0: shares[0]})
    assert server.scrubber.run_slice(60.0, max_bytes=4_000)
    assert server.scrubber.state["position"][3] > 0
    server.add_lease(si, b"x" * 32, b"x" * 32)  # a new inode with the same data
    server.scrubber.run_slice(60.0, max_bytes=1_000)
    assert server.scrubber.state["position"][3] == 1  # restarted at block 0, checked one
    scrub(server)
    assert server.scrubber.status()["history"]["0"]["shares-good"] == 1


def test_mutable_shares_are_skipped(server):
    secrets = (b"w" * 32, b"r" * 32, b"c" * 32)
    server.slot_testv_and_readv_and_writev(bytes(16), secrets, {0: ([], [(0, b"data")], None)}, [])
    store(server, encoded(5_000, 999)[1], {0: SHARES[0]})  # (a share's SI is not in its data)
    scrub(server)
    record = server.scrubber.status()["history"]["0"]
    assert record["shares-skipped-mutable"] == 1
    assert record["shares-good"] == 1 and record["shares-examined"] == 2


def test_a_state_file_written_mid_cycle_before_the_walk_skeleton_resumes(make_server):
    """position = [prefix index, bucket, share, next block, (dev, inode)], as before storage.walk."""
    from shoal.storage.layout import ALL_PREFIXES
    from shoal.storage.scrubber import empty_cycle

    server = make_server()
    shares, si = encoded(60_000, 3_000)
    store(server, si, dict(enumerate(shares)))
    for shnum in (2, 7):  # one before the saved position, one after it
        flip(server.layout.share_path(si, shnum), ic.DATA_OFFSET + LAYOUT.data + 5)
    bucket = os.path.basename(server.layout.bucket_dir(si))
    st = os.stat(server.layout.share_path(si, 5))
    counts = empty_cycle()
    counts.update({"buckets-examined": 1, "shares-examined": 6, "shares-good": 5, "bytes-checked": 1})
    state = {
        "version": 1, "current-cycle": 0, "last-cycle-finished": None,
        "current-cycle-start-time": server.clock(), "next-cycle-time": None, "history": {},
        "position": [ALL_PREFIXES.index(bucket[:2]), bucket, 5, 7, [st.st_dev, st.st_ino]],
        "cycle-to-date": counts,
    }
    server.shutdown()
    with open(os.path.join(server.layout.root, STATE_FILE), "w") as handle:
        json.dump(state, handle)
    restarted = make_server()
    scrub(restarted, max_bytes=8_000)
    record = restarted.scrubber.status()["history"]["0"]
    assert record["buckets-examined"] == 1 and record["shares-examined"] == 10
    assert record["shares-quarantined"] == 1 and record["shares-good"] == 5 + 4
    assert [sh for _si, sh, _why in record["quarantined"]] == [7]
