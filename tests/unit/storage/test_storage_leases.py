"""Leases: add, renew, stored hashed in new containers, plaintext in version-1 ones."""

import os

import pytest

from shoal.formats import immutable_container as ic
from shoal.formats import mutable_container as mc
from shoal.formats.lease import LeaseInfo, LeaseSchema, hash_lease_secret
from shoal.storage import NoSuchLeaseError
from shoal.storage.expiration import LEASE_DURATION
from shoal.storage.shares import ImmutableShareFile, MutableShareFile
from tests.storage_suite.harness import NODEID

SI = b"\x55" * 16
SLOT = b"\x66" * 16
R1, C1 = b"1" * 32, b"!" * 32
R2, C2 = b"2" * 32, b"@" * 32
OTHER_NODE = b"\x09" * 20


def immutable(server, shnum=0):
    return ImmutableShareFile(server.layout.share_path(SI, shnum), SI, shnum)


def mutable(server, shnum=0):
    return MutableShareFile(server.layout.share_path(SLOT, shnum), SLOT, shnum)


def upload(server, shnums=(0,)):
    _, writers = server.allocate_buckets(SI, R1, C1, set(shnums), 3)
    for writer in writers.values():
        writer.write(0, b"abc")
        writer.close()


def make_slot(server):
    server.slot_testv_and_readv_and_writev(SLOT, (b"w" * 32, R1, C1), {0: ([], [(0, b"m")], None)}, [])


def test_add_lease_renews_a_matching_lease_and_adds_others(server, clock):
    upload(server, (0, 1))
    make_slot(server)
    clock.advance(100)
    server.add_lease(SI, R1, C1)
    server.add_lease(SI, R2, C2)
    server.add_lease(SLOT, R1, C1)
    server.add_lease(SLOT, R2, C2)
    expected = int(clock()) + LEASE_DURATION
    for shnum in (0, 1):
        first, second = immutable(server, shnum).leases()
        assert (first.owner_num, first.expiration_time) == (0, expected)  # the uploader's
        assert (second.owner_num, second.expiration_time) == (1, expected)
        assert second.renew_secret == hash_lease_secret(R2)
        assert second.cancel_secret == hash_lease_secret(C2)
        assert second.hashed
    slots = mutable(server).slots()
    assert [lease.renew_secret for lease in slots if lease] == [hash_lease_secret(R1), hash_lease_secret(R2)]
    assert slots[0].nodeid == slots[1].nodeid == NODEID


def test_a_renewal_never_moves_expiration_back(server, clock):
    upload(server)
    clock.advance(5000)
    server.add_lease(SI, R1, C1)
    clock.advance(-4000)
    server.add_lease(SI, R1, C1)
    server.renew_lease(SI, R1)
    (lease,) = immutable(server).leases()
    assert lease.expiration_time == int(clock()) + 4000 + LEASE_DURATION


def test_renew_lease(server, clock):
    upload(server)
    make_slot(server)
    clock.advance(60)
    server.renew_lease(SI, R1)
    server.renew_lease(SLOT, R1)
    assert immutable(server).leases()[0].expiration_time == int(clock()) + LEASE_DURATION
    assert mutable(server).leases()[0].expiration_time == int(clock()) + LEASE_DURATION
    with pytest.raises(NoSuchLeaseError, match="no shares"):
        server.renew_lease(b"\x00" * 16, R1)
    with pytest.raises(NoSuchLeaseError, match=r"share .*/0: no lease with this renew secret$"):
        server.renew_lease(SI, R2)
    with pytest.raises(NoSuchLeaseError, match="leases were accepted by nodeids aebagbaf"):
        server.renew_lease(SLOT, R2)


def test_lease_added_with_immutable_share_is_written_into_the_share(server):
    upload(server)
    raw = open(server.layout.share_path(SI, 0), "rb").read()
    assert ic.ImmutableHeader.from_bytes(raw).lease_count == 1
    (lease,) = ic.unpack_leases(raw[12 + 3 :], LeaseSchema.HASHED)
    assert lease.renew_secret == hash_lease_secret(R1)


def plant_v1_immutable(server, lease: LeaseInfo) -> None:
    path = server.layout.share_path(SI, 0)
    os.makedirs(os.path.dirname(path))
    header = ic.ImmutableHeader.for_new_share(5, version=1).with_lease_count(1)
    with open(path, "wb") as handle:
        handle.write(header.to_bytes() + b"hello" + ic.pack_leases([lease], LeaseSchema.PLAINTEXT))


def test_version_1_immutable_keeps_plaintext_secrets(server, clock):
    plant_v1_immutable(server, LeaseInfo(0, R1, C1, 1000))
    assert server.get_buckets(SI)[0].read(0, 100) == b"hello"
    server.add_lease(SI, R1, C1)
    server.add_lease(SI, R2, C2)
    share = immutable(server)
    assert share.header.version == 1
    first, second = share.leases()
    assert (first.renew_secret, first.expiration_time) == (R1, int(clock()) + LEASE_DURATION)
    assert (second.renew_secret, second.cancel_secret, second.hashed) == (R2, C2, False)
    assert server.get_buckets(SI)[0].read(0, 100) == b"hello"


def test_version_1_mutable_keeps_plaintext_secrets(server, clock):
    body = b"slot data"
    header = mc.MutableHeader(1, OTHER_NODE, b"w" * 32, len(body), mc.DATA_OFFSET + len(body))
    old = LeaseInfo(1, R1, C1, 1000, OTHER_NODE)
    path = server.layout.share_path(SLOT, 0)
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        handle.write(
            header.to_bytes()
            + mc.pack_lease_slots([old, None, None, None], LeaseSchema.PLAINTEXT)
            + body
            + mc.pack_extra_leases([], LeaseSchema.PLAINTEXT)
        )
    assert server.slot_readv(SLOT, [], [(0, 100)]) == {0: [body]}
    ok, _ = server.slot_testv_and_readv_and_writev(
        SLOT, (b"w" * 32, R2, C2), {0: ([(0, 4, b"eq", b"slot")], [(9, b"!")], None)}, []
    )
    assert ok
    share = mutable(server)
    assert share.header.version == 1
    assert share.header.write_enabler_nodeid == OTHER_NODE  # the recorder stays
    first, second = share.leases()
    assert (first.renew_secret, first.nodeid) == (R1, OTHER_NODE)
    assert (second.renew_secret, second.cancel_secret, second.nodeid) == (R2, C2, NODEID)
    assert server.slot_readv(SLOT, [], [(0, 100)]) == {0: [body + b"!"]}


def test_an_emptied_mutable_lease_slot_is_reused(server):
    make_slot(server)
    server.add_lease(SLOT, R2, C2)
    share = mutable(server)
    with open(share.path, "r+b") as handle:
        share.drop_leases_in(handle, {0})
    assert mutable(server).slots()[:2] == [None, mutable(server).slots()[1]]
    server.add_lease(SLOT, b"3" * 32, b"#" * 32)
    slots = mutable(server).slots()
    assert slots[0] is not None and slots[0].renew_secret == hash_lease_secret(b"3" * 32)
    assert mutable(server).extra_count == 0
