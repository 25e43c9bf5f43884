"""The HTTP storage adapter over a real StorageServer, in memory: every endpoint and its refusals."""

import base64
import os
import time

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport

from shoal.protocol import http_bodies as hb
from shoal.protocol.http_ranges import ByteRange, format_content_range, format_range
from shoal.protocol.http_storage import (
    Endpoint,
    Secret,
    authorization_header,
    path_for,
    secret_headers,
)
from shoal.storage.http_server import HttpStorageServer
from shoal.storage.shares import ImmutableShareFile
from shoal.testing.http_memory import MemoryHttp, no_turn, run_now

SWISSNUM = b"swissnumswissnumswissnum"
SI = bytes(range(16))
SLOT = b"\x77" * 16
RENEW, CANCEL, UPLOAD, WE = b"r" * 32, b"c" * 32, b"u" * 32, b"w" * 32
ALL_SECRETS = {Secret.LEASE_RENEW: RENEW, Secret.LEASE_CANCEL: CANCEL, Secret.UPLOAD: UPLOAD,
               Secret.WRITE_ENABLER: WE}


class Client:
    """Requests as Tahoe 1.20's client sends them."""

    def __init__(self, adapter: HttpStorageServer) -> None:
        self.adapter = adapter
        self.http = MemoryHttp(adapter.site())

    def call(self, endpoint, si=None, shnum=None, *, body=None, headers=(), secrets=None,
             auth=SWISSNUM, method=None, raw_body=None):
        wanted = endpoint.secrets if secrets is None else secrets
        if isinstance(wanted, frozenset):
            wanted = {kind: ALL_SECRETS[kind] for kind in wanted}
        all_headers = [(b"Accept", b"application/cbor")]
        if auth is not None:
            all_headers.append((b"Authorization", authorization_header(auth)))
        all_headers += [(b"X-Tahoe-Authorization", h) for h in secret_headers(wanted)]
        given = {name.lower() for name, _ in headers}
        if body is not None and endpoint is not Endpoint.IMMUTABLE_WRITE and b"content-type" not in given:
            all_headers.append((b"Content-Type", b"application/cbor"))
        all_headers += list(headers)
        path = path_for(endpoint, si, shnum).encode()
        return self.http.request((method or endpoint.method).encode(), path, all_headers, body,
                                 raw_body=raw_body)

    def allocate(self, shnums, size, si=SI, secrets=None):
        return self.call(Endpoint.IMMUTABLE_ALLOCATE, si, body=hb.AllocateRequest(shnums, size).encode(),
                         secrets=secrets)

    def write(self, shnum, offset, data, si=SI, upload=UPLOAD):
        return self.call(Endpoint.IMMUTABLE_WRITE, si, shnum, body=data,
                         headers=[(b"Content-Range", format_content_range(ByteRange(offset, offset + len(data))))],
                         secrets={Secret.UPLOAD: upload})

    def read(self, shnum, offset=None, length=None, endpoint=Endpoint.IMMUTABLE_READ, si=SI):
        headers = [] if offset is None else [(b"Range", format_range(ByteRange(offset, offset + length)))]
        return self.call(endpoint, si, shnum, headers=headers)

    def rtw(self, vectors, reads=(), si=SLOT, we=WE):
        body = hb.ReadTestWriteRequest(vectors, reads).encode()
        return self.call(Endpoint.MUTABLE_READ_TEST_WRITE, si, body=body,
                         secrets={Secret.LEASE_RENEW: RENEW, Secret.LEASE_CANCEL: CANCEL, Secret.WRITE_ENABLER: we})


@pytest.fixture
def adapter(server):
    return HttpStorageServer(server, SWISSNUM, in_thread=run_now, in_cpu_pool=run_now, next_turn=no_turn,
                             max_read_test_write_body=100_000)


@pytest.fixture
def client(adapter):
    return Client(adapter)


def upload(client, data=b"0123456789", shnums=(0,)):
    assert client.allocate(set(shnums), len(data)).status == 200
    for shnum in shnums:
        assert client.write(shnum, 0, data).status == 201


# -- general -----------------------------------------------------------------------------


def test_version_is_cbor_with_tahoes_three_fields(client, server):
    response = client.call(Endpoint.VERSION)
    assert response.status == 200
    assert response.header(b"Content-Type") == b"application/cbor"
    version = hb.decode_version(response.body)
    assert version.available_space == server.available_space() > 0
    assert version.application_version == server.app_version


@pytest.mark.parametrize("auth,status", [(None, 401), (b"wrong", 401), (SWISSNUM + b"x", 401)])
def test_wrong_swissnum_is_401(client, auth, status):
    assert client.call(Endpoint.VERSION, auth=auth).status == status
    assert client.call(Endpoint.IMMUTABLE_LIST, SI, auth=auth).status == status


def test_unknown_paths_and_methods(client):
    http = client.http
    auth = [(b"Authorization", authorization_header(SWISSNUM))]
    assert http.request(b"GET", b"/storage/v1/nothing", auth).status == 404
    assert http.request(b"GET", b"/", auth).status == 404
    assert http.request(b"GET", b"/storage/v1/immutable/NOTBASE32NOTBASE32NOTBASE3/shares", auth).status == 404
    assert http.request(b"DELETE", b"/storage/v1/version", auth).status == 405
    assert http.request(b"GET", b"/storage/v1/version?x=1", auth).status == 200


def test_missing_or_bad_secrets_are_400_and_not_echoed(client):
    response = client.call(Endpoint.LEASE, SI, secrets={Secret.LEASE_RENEW: RENEW})
    assert response.status == 400
    bad = client.call(Endpoint.LEASE, SI, secrets={Secret.LEASE_RENEW: b"short", Secret.LEASE_CANCEL: CANCEL})
    assert bad.status == 400
    for secret in (RENEW, CANCEL, b"short"):
        assert base64.b64encode(secret) not in bad.body + response.body


def test_cbor_only_answers(client, server):
    response = client.call(Endpoint.VERSION, headers=[(b"Accept", b"application/json")])
    # the first Accept header counts (ours says cbor); send only json:
    http = client.http
    only_json = [(b"Authorization", authorization_header(SWISSNUM)), (b"Accept", b"application/json")]
    assert http.request(b"GET", b"/storage/v1/version", only_json).status == 406
    assert response.status == 200
    # refused before any work: nothing allocated
    body = hb.AllocateRequest({0}, 10).encode()
    path = path_for(Endpoint.IMMUTABLE_ALLOCATE, SI).encode()
    headers = only_json + [(b"X-Tahoe-Authorization", h) for h in secret_headers(ALL_SECRETS) if b"write" not in h]
    assert http.request(b"POST", path, headers, body).status == 406
    assert server.stats()["storage_server.uploads_in_progress"] == 0


# -- immutable -----------------------------------------------------------------------------


def test_upload_in_chunks_then_read_list_and_ranges(client, server):
    response = client.allocate({0, 1}, 10)
    assert response.status == 200
    assert hb.decode_allocate_response(response.body) == hb.AllocateResponse(set(), {0, 1})
    first = client.write(0, 0, b"01234")
    assert first.status == 200
    assert hb.decode_upload_progress(first.body).required == (ByteRange(5, 10),)
    assert client.write(0, 0, b"01234").status == 200  # the same bytes again: fine
    done = client.write(0, 5, b"56789")
    assert done.status == 201
    assert hb.decode_upload_progress(done.body).required == ()
    assert client.write(0, 5, b"56789").status == 404  # finished: no upload any more
    listed = client.call(Endpoint.IMMUTABLE_LIST, SI)
    assert hb.decode_share_numbers(listed.body) == {0}  # share 1 is still in progress

    whole = client.read(0)
    assert (whole.status, whole.body) == (200, b"0123456789")
    assert whole.header(b"Content-Type") == b"application/octet-stream"
    part = client.read(0, 2, 3)
    assert (part.status, part.body, part.header(b"Content-Range")) == (206, b"234", b"bytes 2-4/*")
    past_end = client.read(0, 8, 100)
    assert (past_end.status, past_end.body, past_end.header(b"Content-Range")) == (206, b"89", b"bytes 8-9/*")
    assert client.read(0, 10, 5).status == 204
    assert client.read(0, 10, 5).body == b""
    assert client.read(7).status == 404
    bad_range = client.call(Endpoint.IMMUTABLE_READ, SI, 0, headers=[(b"Range", b"bytes=0-")])
    assert bad_range.status == 416
    assert client.call(Endpoint.IMMUTABLE_READ, SI, 0, headers=[(b"Range", b"bytes=0-1,3-4")]).status == 416
    # a second allocation sees what is there (and renews its lease); share 1, still in progress
    # under this upload secret and size, is offered again (the same call gets the same answer)
    again = hb.decode_allocate_response(client.allocate({0, 1, 2}, 10).body)
    assert again == hb.AllocateResponse({0}, {1, 2})


def test_an_allocation_repeated_with_the_same_secret_resumes_the_partial_share(client):
    assert hb.decode_allocate_response(client.allocate({4}, 10).body) == hb.AllocateResponse(set(), {4})
    assert client.write(4, 0, b"abcd").status == 200
    other = {Secret.LEASE_RENEW: b"R" * 32, Secret.LEASE_CANCEL: b"C" * 32, Secret.UPLOAD: b"U" * 32}
    # another client (another upload secret), or the same with another size: not offered
    assert hb.decode_allocate_response(client.allocate({4}, 10, secrets=other).body) == hb.AllocateResponse(
        set(), set())
    assert hb.decode_allocate_response(client.allocate({4}, 11).body) == hb.AllocateResponse(set(), set())
    # the same client after a restart: offered; its next chunk's answer says what is still required
    assert hb.decode_allocate_response(client.allocate({4}, 10).body) == hb.AllocateResponse(set(), {4})
    answer = client.write(4, 0, b"ab")
    assert hb.decode_upload_progress(answer.body).required == (ByteRange(4, 10),)
    assert client.write(4, 4, b"efghij").status == 201
    assert client.read(4).body == b"abcdefghij"


def test_large_share_streams_back_in_pieces(client):
    data = os.urandom(700_000)
    assert client.allocate({3}, len(data)).status == 200
    assert client.write(3, 0, data).status == 201
    assert client.read(3).body == data
    part = client.read(3, 100_000, 400_000)
    assert part.body == data[100_000:500_000]


def test_conflicting_write_is_409_and_changes_nothing(client, server):
    client.allocate({0}, 10)
    assert client.write(0, 0, b"abcde").status == 200
    assert client.write(0, 2, b"XYZ").status == 409
    assert client.write(0, 5, b"fghij").status == 201
    assert client.read(0).body == b"abcdefghij"


def test_upload_refusals(client):
    client.allocate({0}, 10)
    assert client.write(0, 0, b"abc", upload=b"x" * 32).status == 401
    assert client.write(1, 0, b"abc").status == 404  # never allocated
    started = time.monotonic()
    huge = client.call(Endpoint.IMMUTABLE_WRITE, SI, 0, body=b"x",
                       headers=[(b"Content-Range", b"bytes 1000000000000-1000000000000/*")])
    assert huge.status == 416
    assert time.monotonic() - started < 1
    assert client.write(0, 8, b"abc").status == 416  # ends past the allocated size
    no_range = client.call(Endpoint.IMMUTABLE_WRITE, SI, 0, body=b"abc")
    assert no_range.status == 416
    short_body = client.call(Endpoint.IMMUTABLE_WRITE, SI, 0, body=b"ab",
                             headers=[(b"Content-Range", b"bytes 0-2/*")])
    assert short_body.status == 400
    assert client.write(0, 0, b"0123456789").status == 201


def test_abort(client):
    client.allocate({0, 1}, 4)
    client.write(0, 0, b"ab")
    assert client.call(Endpoint.IMMUTABLE_ABORT, SI, 0, secrets={Secret.UPLOAD: b"y" * 32}).status == 401
    assert client.call(Endpoint.IMMUTABLE_ABORT, SI, 0).status == 200
    assert client.write(0, 2, b"cd").status == 404
    assert client.call(Endpoint.IMMUTABLE_ABORT, SI, 5).status == 404  # nothing there at all
    client.write(1, 0, b"abcd")
    assert client.call(Endpoint.IMMUTABLE_ABORT, SI, 1).status == 405  # finished: cannot abort
    # an aborted share can be allocated again
    assert hb.decode_allocate_response(client.allocate({0}, 4).body).allocated == {0}


def test_another_uploader_with_its_own_secret(client):
    client.allocate({0}, 4)
    other = {Secret.LEASE_RENEW: b"R" * 32, Secret.LEASE_CANCEL: b"C" * 32, Secret.UPLOAD: b"U" * 32}
    response = client.allocate({0, 1}, 4, secrets=other)
    assert hb.decode_allocate_response(response.body) == hb.AllocateResponse(set(), {1})
    assert client.write(1, 0, b"abcd", upload=UPLOAD).status == 401
    assert client.write(1, 0, b"abcd", upload=b"U" * 32).status == 201


def test_idle_aborted_upload_is_gone(client, server, clock):
    client.allocate({0}, 4)
    clock.advance(31 * 60)
    server.abort_idle_writers()
    assert client.write(0, 0, b"abcd").status == 404


def test_corruption_advisory_immutable(client, server):
    advice = hb.CorruptionAdvice("block hash mismatch").encode()
    assert client.call(Endpoint.IMMUTABLE_CORRUPT, SI, 0, body=advice).status == 404
    upload(client)
    assert client.call(Endpoint.IMMUTABLE_CORRUPT, SI, 0, body=cbor2.dumps({"reason": ""})).status == 400
    assert client.call(Endpoint.IMMUTABLE_CORRUPT, SI, 0, body=advice).status == 200
    reports = os.listdir(server.layout.advisory_dir)
    assert len(reports) == 1
    with open(os.path.join(server.layout.advisory_dir, reports[0]), encoding="utf-8") as f:
        assert "block hash mismatch" in f.read()
    # shoal checked the share: it is not a valid share, so it is quarantined and no longer served
    assert client.read(0).status == 404


def test_bad_bodies(client, server):
    assert client.call(Endpoint.IMMUTABLE_ALLOCATE, SI, body=b"\xff\x00garbage").status == 400
    wrong_shape = cbor2.dumps({"share-numbers": [0], "allocated-size": 10})  # a list, not a set
    assert client.call(Endpoint.IMMUTABLE_ALLOCATE, SI, body=wrong_shape).status == 400
    too_big = b"\x00" * (hb.MAX_ALLOCATE_BODY + 1)
    assert client.call(Endpoint.IMMUTABLE_ALLOCATE, SI, body=too_big).status == 413
    json_body = client.call(Endpoint.IMMUTABLE_ALLOCATE, SI, body=hb.AllocateRequest({0}, 1).encode(),
                            headers=[(b"Content-Type", b"application/json")])
    assert json_body.status == 415
    assert server.stats()["storage_server.uploads_in_progress"] == 0


def test_chunked_body_over_the_limit_is_not_stored(client, server):
    chunk = b"\x00" * 5000
    raw = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    response = client.call(Endpoint.IMMUTABLE_ALLOCATE, SI, headers=[(b"Transfer-Encoding", b"chunked"),
                                                                     (b"Content-Type", b"application/cbor")],
                           raw_body=raw)
    assert response.status == 413


def test_allocations_the_server_cannot_take(client, server, disk):
    disk.free = 1000
    response = client.allocate({0}, 10**12)
    assert hb.decode_allocate_response(response.body).allocated == frozenset()
    # a Tahoe allocated-size beyond 64 bits is not CBOR uint: 400
    assert client.allocate({0}, 2**64 - 1).status == 200


# -- leases --------------------------------------------------------------------------------


def test_lease_add_and_renew(client, server, clock):
    assert client.call(Endpoint.LEASE, SI).status == 404
    upload(client)
    share = ImmutableShareFile(server.layout.share_path(SI, 0), SI, 0)
    assert len(share.leases()) == 1
    clock.advance(1000)
    assert client.call(Endpoint.LEASE, SI).status == 204  # same renew secret: renewed
    share = ImmutableShareFile(server.layout.share_path(SI, 0), SI, 0)
    assert len(share.leases()) == 1
    other = {Secret.LEASE_RENEW: b"2" * 32, Secret.LEASE_CANCEL: b"3" * 32}
    assert client.call(Endpoint.LEASE, SI, secrets=other).status == 204
    share = ImmutableShareFile(server.layout.share_path(SI, 0), SI, 0)
    assert len(share.leases()) == 2


# -- mutable -------------------------------------------------------------------------------


def test_mutable_read_test_write_read_and_list(client, server):
    write = {0: hb.ShareTestWrite([hb.TestVector(0, 0, b"")], [hb.WriteVector(0, b"hello world")], None),
             3: hb.ShareTestWrite([], [hb.WriteVector(0, b"three")], None)}
    response = client.rtw(write, [hb.ReadVector(0, 5)])
    assert response.status == 200
    assert hb.decode_read_test_write_response(response.body) == hb.ReadTestWriteResponse(True, {})
    listed = client.call(Endpoint.MUTABLE_LIST, SLOT)
    assert hb.decode_share_numbers(listed.body) == {0, 3}
    read = client.read(0, 6, 100, endpoint=Endpoint.MUTABLE_READ, si=SLOT)
    assert (read.status, read.body, read.header(b"Content-Range")) == (206, b"world", b"bytes 6-10/*")
    assert client.read(0, endpoint=Endpoint.MUTABLE_READ, si=SLOT).body == b"hello world"
    assert client.read(1, endpoint=Endpoint.MUTABLE_READ, si=SLOT).status == 404
    assert client.read(0, 11, 3, endpoint=Endpoint.MUTABLE_READ, si=SLOT).status == 204

    failed = client.rtw({0: hb.ShareTestWrite([hb.TestVector(0, 5, b"HELLO")], [hb.WriteVector(0, b"x")])},
                        [hb.ReadVector(0, 5)])
    assert hb.decode_read_test_write_response(failed.body) == hb.ReadTestWriteResponse(
        False, {0: [b"hello"], 3: [b"three"]}
    )
    assert client.read(0, endpoint=Endpoint.MUTABLE_READ, si=SLOT).body == b"hello world"
    assert client.rtw({0: hb.ShareTestWrite([], [hb.WriteVector(0, b"x")])}, we=b"v" * 32).status == 401
    deleted = client.rtw({3: hb.ShareTestWrite([], [], 0)})
    assert deleted.status == 200
    assert hb.decode_share_numbers(client.call(Endpoint.MUTABLE_LIST, SLOT).body) == {0}
    # the shares of an immutable bucket are not a slot
    upload(client)
    assert client.rtw({0: hb.ShareTestWrite([], [hb.WriteVector(0, b"x")])}, si=SI).status == 400


def test_mutable_limits(client):
    big = {0: hb.ShareTestWrite([], [hb.WriteVector(0, b"x" * 200_000)])}
    assert client.rtw(big).status == 413  # over this adapter's 100 kB cap
    assert client.call(Endpoint.MUTABLE_LIST, SLOT).body == hb.encode_share_numbers(())


def test_mutable_corruption_advisory(client, server):
    advice = hb.CorruptionAdvice("bad signature").encode()
    assert client.call(Endpoint.MUTABLE_CORRUPT, SLOT, 0, body=advice).status == 404
    client.rtw({0: hb.ShareTestWrite([], [hb.WriteVector(0, b"data")])})
    assert client.call(Endpoint.MUTABLE_CORRUPT, SLOT, 0, body=advice).status == 200
    assert len(os.listdir(server.layout.advisory_dir)) == 1


def test_bodies_where_none_is_read(client):
    assert client.call(Endpoint.VERSION, body=b"ignored").status == 200
    assert client.call(Endpoint.VERSION, body=b"x" * 9000).status == 413


def test_stats_count_requests(client, adapter):
    client.call(Endpoint.VERSION)
    client.call(Endpoint.VERSION)
    client.call(Endpoint.IMMUTABLE_LIST, SI)
    stats = adapter.stats()
    assert stats["storage_server.http.requests"] == 3
    assert stats["storage_server.http.version"] == 2


def test_readonly_server_refuses_mutable_writes_with_507(make_server):
    readonly = make_server(readonly=True)
    client = Client(HttpStorageServer(readonly, SWISSNUM, in_thread=run_now, in_cpu_pool=run_now,
                                      next_turn=no_turn))
    assert client.rtw({0: hb.ShareTestWrite([], [hb.WriteVector(0, b"x")])}).status == 507


# -- no 500 for anything a client sends --------------------------------------------------------

endpoints = st.sampled_from(list(Endpoint))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoints, st.one_of(st.none(), st.binary(max_size=200)),
       st.lists(st.tuples(st.sampled_from([b"Range", b"Content-Range", b"Content-Type", b"Accept",
                                           b"X-Tahoe-Authorization"]),
                          st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b
                                                                    and b.strip() == b)),
                max_size=3),
       st.integers(0, 255))
def test_random_requests_never_make_the_server_fail(client, endpoint, body, headers, shnum):
    response = client.call(endpoint, SI if endpoint is not Endpoint.MUTABLE_READ_TEST_WRITE else SLOT,
                           shnum, body=body, headers=headers)
    assert response.status < 500


class PausingTransport(StringTransport):
    """A consumer that pauses its producer whenever it holds more than 300 kB unread."""

    def __init__(self) -> None:
        super().__init__()
        self.pauses = 0
        self.paused = False
        self.taken = b""

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.value()) > 300_000 and self.producer is not None and not self.paused:
            self.pauses += 1
            self.paused = True
            self.producer.pauseProducing()

    def drain(self) -> None:
        self.taken += self.value()
        self.clear()
        if self.paused:
            self.paused = False
            self.producer.resumeProducing()


def test_reads_wait_for_a_slow_reader(client):
    data = os.urandom(2_000_000)
    client.allocate({0}, len(data))
    assert client.write(0, 0, data).status == 201
    transport = PausingTransport()
    channel = client.adapter.site().buildProtocol(None)
    channel.makeConnection(transport)
    path = path_for(Endpoint.IMMUTABLE_READ, SI, 0).encode()
    channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: "
                         + authorization_header(SWISSNUM) + b"\r\n\r\n")
    for _ in range(100):
        if not transport.paused:
            break
        transport.drain()
    transport.drain()
    head, _, body = transport.taken.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == data
    assert transport.pauses >= 3  # it waited each time the reader fell behind
    channel.connectionLost(None)


def test_mutable_write_at_a_huge_offset_fills_no_zeros(client, server):
    started = time.monotonic()
    far = 4 * 2**30
    response = client.rtw({0: hb.ShareTestWrite([], [hb.WriteVector(0, b"head"), hb.WriteVector(far, b"tail")])})
    assert response.status == 200
    assert time.monotonic() - started < 5  # no 4 GiB of zeros written
    assert server.mutable_share_length(SLOT, 0) == far + 4
    assert client.read(0, far - 2, 6, endpoint=Endpoint.MUTABLE_READ, si=SLOT).body == b"\0\0tail"
    assert client.read(0, 0, 6, endpoint=Endpoint.MUTABLE_READ, si=SLOT).body == b"head\0\0"
    assert os.stat(server.layout.share_path(SLOT, 0)).st_blocks * 512 < 2**20  # a sparse file
