"""Server-wide behaviour through RIStorageServer: the version dict and leases."""


from tests.storage_suite.values import lease_secrets, slot_secrets, storage_index

PROTOCOL = b"http://allmydata.org/tahoe/protocols/storage/v1"


def test_version_is_tahoes_dictionary(server):
    version = server.get_version()
    assert set(version) == {PROTOCOL, b"application-version"}
    assert isinstance(version[b"application-version"], bytes)
    v1 = version[PROTOCOL]
    assert set(v1) == {
        b"maximum-immutable-share-size",
        b"maximum-mutable-share-size",
        b"available-space",
        b"tolerates-immutable-read-overrun",
        b"delete-mutable-shares-with-zero-length-writev",
        b"fills-holes-with-zero-bytes",
        b"prevents-read-past-end-of-share-data",
    }
    assert v1[b"maximum-mutable-share-size"] == 69_105 * 1000**4
    assert v1[b"available-space"] == v1[b"maximum-immutable-share-size"] > 0
    for flag in (
        b"tolerates-immutable-read-overrun",
        b"delete-mutable-shares-with-zero-length-writev",
        b"fills-holes-with-zero-bytes",
        b"prevents-read-past-end-of-share-data",
    ):
        assert v1[flag] is True


def test_read_only_server_reports_no_space(harness):
    v1 = harness.server(readonly=True).get_version()[PROTOCOL]
    assert v1[b"available-space"] == 0
    assert v1[b"maximum-immutable-share-size"] == 0


def test_max_space_bounds_the_reported_space(harness):
    server = harness.server(max_space=10_000)
    assert server.get_version()[PROTOCOL][b"available-space"] == 10_000
    _, writers = server.allocate_buckets(storage_index("a"), *lease_secrets("a"), {0}, 1000)
    assert server.get_version()[PROTOCOL][b"available-space"] == 10_000 - 1000 - 12 - 72
    writers[0].abort()
    assert server.get_version()[PROTOCOL][b"available-space"] == 10_000


def test_add_lease_on_shares_of_both_kinds_and_on_nothing(server):
    si = storage_index("b")
    _, writers = server.allocate_buckets(si, *lease_secrets("b"), {0}, 3)
    writers[0].write(0, b"abc")
    writers[0].close()
    assert server.add_lease(si, *lease_secrets("b")) is None  # renews
    assert server.add_lease(si, *lease_secrets("someone else")) is None  # adds
    assert server.add_lease(storage_index("nothing"), *lease_secrets("b")) is None
    slot = storage_index("c")
    server.slot_testv_and_readv_and_writev(slot, slot_secrets("c"), {0: ([], [(0, b"m")], None)}, [])
    assert server.add_lease(slot, *lease_secrets("another")) is None
    assert server.get_buckets(si)[0].read(0, 10) == b"abc"
    assert server.slot_readv(slot, [], [(0, 10)]) == {0: [b"m"]}


def test_add_lease_rejects_bad_secrets(harness, server):
    with harness.refuses("bad-request"):
        server.add_lease(storage_index("d"), b"short", b"c" * 32)
    with harness.refuses("bad-request"):
        server.add_lease(b"short", b"r" * 32, b"c" * 32)
