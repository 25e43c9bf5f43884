"""PATCH bodies streamed into the share: partial bodies, dropped connections, overlapping chunks.

A real twisted.web channel over a StringTransport per connection, fed the
request's bytes in pieces as a network would deliver them, in front of a
real StorageServer.
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport

from shoal.protocol import http_bodies as hb
from shoal.protocol.http_ranges import ByteRange, format_content_range
from shoal.protocol.http_storage import (
    Endpoint,
    Secret,
    authorization_header,
    path_for,
    secret_headers,
)
from shoal.storage.http_server import HttpStorageServer
from shoal.testing.http_memory import MemoryHttp, _parse, no_turn, run_now

SWISSNUM = b"swissnum-for-sinks"
SI = bytes(range(16))
SECRETS = {Secret.LEASE_RENEW: b"r" * 32, Secret.LEASE_CANCEL: b"c" * 32, Secret.UPLOAD: b"u" * 32}


@pytest.fixture
def adapter(server):
    return HttpStorageServer(server, SWISSNUM, in_thread=run_now, in_cpu_pool=run_now, next_turn=no_turn)


def head(method: bytes, path: bytes, headers, length: int | None) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: t", b"Authorization: " + authorization_header(SWISSNUM),
             b"Accept: application/cbor"]
    lines += [name + b": " + value for name, value in headers]
    if length is not None:
        lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def allocate(adapter, size, shnums=(0,)):
    body = hb.AllocateRequest(set(shnums), size).encode()
    headers = [(b"X-Tahoe-Authorization", h) for h in secret_headers(SECRETS)]
    headers += [(b"Content-Type", b"application/cbor"), (b"Authorization", authorization_header(SWISSNUM)),
                (b"Accept", b"application/cbor")]
    response = MemoryHttp(adapter.site()).request(b"POST", path_for(Endpoint.IMMUTABLE_ALLOCATE, SI).encode(),
                                                  headers, body)
    assert response.status == 200


class Connection:
    """One client connection to the adapter's Site, written to a piece at a time."""

    def __init__(self, adapter) -> None:
        self.transport = StringTransport()
        self.channel = adapter.site().buildProtocol(None)
        self.channel.makeConnection(self.transport)

    def patch_head(self, offset: int, length: int, *, body_length: int | None = None, shnum: int = 0) -> None:
        rng = format_content_range(ByteRange(offset, offset + length))
        headers = [(b"Content-Range", rng), (b"X-Tahoe-Authorization", secret_headers({Secret.UPLOAD: b"u" * 32})[0])]
        self.send(head(b"PATCH", path_for(Endpoint.IMMUTABLE_WRITE, SI, shnum).encode(), headers,
                       length if body_length is None else body_length))

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def status(self) -> int | None:
        data = self.transport.value()
        return _parse(data).status if data else None

    def drop(self) -> None:
        self.channel.connectionLost(None)


def missing(adapter, shnum=0):
    return adapter.uploads.get(SI, shnum, b"u" * 32).remaining()


def read_share(adapter, shnum=0):
    headers = [(b"Authorization", authorization_header(SWISSNUM))]
    return MemoryHttp(adapter.site()).request(b"GET", path_for(Endpoint.IMMUTABLE_READ, SI, shnum).encode(),
                                              headers).body


def test_a_body_streams_into_the_share_in_pieces(adapter):
    data = os.urandom(300_000)
    allocate(adapter, len(data))
    conn = Connection(adapter)
    conn.patch_head(0, len(data))
    for at in range(0, len(data), 7_000):
        conn.send(data[at:at + 7_000])
    assert conn.status() == 201
    assert read_share(adapter) == data
    assert len(adapter.sinks) == 0


def test_a_dropped_connection_leaves_its_range_missing_and_it_can_be_sent_again(adapter, server):
    data = os.urandom(100_000)
    allocate(adapter, len(data))
    first = Connection(adapter)
    first.patch_head(0, 50_000)
    first.send(data[:30_000])  # 30,000 of 50,000 bytes arrive, then the connection drops
    first.drop()
    assert first.status() is None
    assert missing(adapter) == [(0, 100_000)]  # nothing counted as written
    assert len(adapter.sinks) == 0
    # the range is written again, with other bytes than the dropped ones (not a conflict: never written)
    again = Connection(adapter)
    again.patch_head(0, 50_000)
    again.send(data[:50_000])
    assert again.status() == 200
    assert missing(adapter) == [(50_000, 100_000)]
    last = Connection(adapter)
    last.patch_head(50_000, 50_000)
    last.send(data[50_000:])
    assert last.status() == 201
    assert read_share(adapter) == data


def test_a_different_rewrite_of_a_written_range_is_409_and_changes_nothing(adapter):
    allocate(adapter, 10)
    conn = Connection(adapter)
    conn.patch_head(0, 5)
    conn.send(b"abcde")
    assert conn.status() == 200
    clash = Connection(adapter)
    clash.patch_head(3, 4)
    clash.send(b"d")  # agrees with the byte written at 3
    clash.send(b"XYZ")  # disagrees with the "e" written at 4: refused
    assert clash.status() == 409
    same = Connection(adapter)
    same.patch_head(0, 10)
    same.send(b"abcdefghij")  # a repeat of the written bytes is fine, as in Tahoe
    assert same.status() == 201
    assert read_share(adapter) == b"abcdefghij"


def test_content_length_not_matching_the_range_is_400_without_writing(adapter):
    allocate(adapter, 10)
    conn = Connection(adapter)
    conn.patch_head(0, 5, body_length=3)
    conn.send(b"abc")
    assert conn.status() == 400
    assert missing(adapter) == [(0, 10)]


def test_a_chunked_body_longer_than_its_range_is_400_and_writes_nothing_past_it(adapter):
    allocate(adapter, 10)
    conn = Connection(adapter)
    rng = format_content_range(ByteRange(0, 4))
    headers = [(b"Content-Range", rng), (b"Transfer-Encoding", b"chunked"),
               (b"X-Tahoe-Authorization", secret_headers({Secret.UPLOAD: b"u" * 32})[0])]
    conn.send(head(b"PATCH", path_for(Endpoint.IMMUTABLE_WRITE, SI, 0).encode(), headers, None))
    conn.send(b"6\r\nabcdef\r\n0\r\n\r\n")
    assert conn.status() == 400
    assert missing(adapter) == [(0, 10)]
    ok = Connection(adapter)
    ok.patch_head(0, 10)
    ok.send(b"0123456789")
    assert ok.status() == 201  # the refused body left nothing that conflicts


def test_overlapping_chunks_in_flight_are_taken_one_at_a_time(adapter):
    data = os.urandom(20_000)
    allocate(adapter, len(data))
    first = Connection(adapter)
    first.patch_head(0, 20_000)
    first.send(data[:5_000])
    second = Connection(adapter)  # the same range again (a client's retry) while the first is still arriving
    second.patch_head(0, 20_000)
    second.send(data[:8_000])
    assert second.transport.producerState == "paused"  # held back, its connection paused
    first.send(data[5_000:])
    assert first.status() == 201  # the first completed the share
    assert second.transport.producerState == "producing"
    second.send(data[8_000:])
    assert second.status() == 404  # the share is finished: no upload in progress (as Tahoe answers)
    assert read_share(adapter) == data


def test_a_held_chunk_proceeds_when_the_one_before_drops(adapter):
    data = os.urandom(20_000)
    allocate(adapter, len(data))
    first = Connection(adapter)
    first.patch_head(0, 10_000)
    first.send(b"\x00" * 4_000)  # garbage that never completes
    second = Connection(adapter)
    second.patch_head(5_000, 10_000)
    second.send(data[5_000:12_000])
    assert second.transport.producerState == "paused"
    first.drop()
    assert second.transport.producerState == "producing"
    second.send(data[12_000:15_000])
    assert second.status() == 200
    assert missing(adapter) == [(0, 5_000), (15_000, 20_000)]
    rest = Connection(adapter)
    rest.patch_head(0, 5_000)
    rest.send(data[:5_000])
    tail = Connection(adapter)
    tail.patch_head(15_000, 5_000)
    tail.send(data[15_000:])
    assert tail.status() == 201
    assert read_share(adapter) == data  # none of the dropped garbage survived


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(1, 64), st.integers(1, 70), st.booleans()),
                min_size=1, max_size=12))
def test_any_mix_of_complete_and_dropped_chunks_leaves_only_complete_ones_written(make_server, steps):
    """Whatever chunks arrive whole or drop half way, the share's written ranges are exactly the
    complete chunks' ranges and their bytes are the share's."""
    server = make_server()
    adapter = HttpStorageServer(server, SWISSNUM, in_thread=run_now, in_cpu_pool=run_now, next_turn=no_turn)
    size = 128
    data = os.urandom(size)
    allocate(adapter, size)
    written = set()
    for start, length, cut, complete in steps:
        end = min(size, start + length)
        if set(range(start, end)) <= written and complete:
            continue  # would finish nothing new (and may complete the share)
        conn = Connection(adapter)
        conn.patch_head(start, end - start)
        if complete:
            conn.send(data[start:end])
            if set(range(0, size)) <= written | set(range(start, end)):
                assert conn.status() == 201
                assert read_share(adapter) == data
                return
            assert conn.status() == 200
            written |= set(range(start, end))
        else:
            conn.send(os.urandom(min(cut, end - start - 1)))  # garbage, cut short
            conn.drop()
        still = {i for a, b in missing(adapter) for i in range(a, b)}
        assert still == set(range(size)) - written
