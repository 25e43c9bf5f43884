"""A standing adversarial test of the storage protocol: every remote
StorageServer method (and the bucket writer's and reader's) with random and
boundary arguments — huge and negative offsets, wrong types, giant vectors,
hundreds of share numbers, duplicates, empty secrets — against a real
StorageServer on a temporary directory. Wire-shaped calls go through the
Foolscap adapter (what the wire reaches once Foolscap's schema passed them);
ill-typed ones straight to the server core, which must refuse them itself.

After every call: the server answered or refused with a StorageError (never
another exception), within a second; no partial share is left (incoming/ and
its tmp/ hold only the files of writers still open, every file under shares/
is a whole container); and a second client, on another thread, is served at
once."""

import os
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shoal.storage import StorageServer
from shoal.storage.errors import StorageError
from shoal.storage.foolscap_adapter import FoolscapStorageServer
from shoal.storage.shares import sniff_sharetype
from tests.strategies import (
    STORAGE_INDEXES,
    hostile_data,
    hostile_ints,
    hostile_read_vectors,
    hostile_secrets,
    hostile_share_sets,
    hostile_shnums,
    hostile_sis,
    hostile_sizes,
    hostile_tw_vectors,
    mostly,
)

CALL_SECONDS = 1.0
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Canary:
    def notifyOnDisconnect(self, fn: Any, *args: Any) -> object:
        return object()

    def dontNotifyOnDisconnect(self, handle: object) -> None:
        pass


def call(fn: Any, *args: Any) -> Any:
    """fn(*args): its answer, or the StorageError it refused with; anything else fails."""
    started = time.monotonic()
    name = getattr(fn, "__name__", "call")
    try:
        answer = fn(*args)
        event(f"{name}: answered")
        return answer
    except StorageError as e:
        assert str(e), f"{type(e).__name__} without a message"
        event(f"{name}: {type(e).__name__}")
        return e
    finally:
        took = time.monotonic() - started
        assert took < CALL_SECONDS, f"{getattr(fn, '__name__', fn)} took {took:.1f}s"


def served_promptly(server: StorageServer) -> None:
    """Another client's calls, from another thread, are answered at once."""
    answers: list[Any] = []

    def other() -> None:
        answers.append(server.get_version())
        answers.append(server.slot_readv(b"\x09" * 16, [], [(0, 10)]))
        answers.append(server.get_buckets(b"\x09" * 16))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(CALL_SECONDS)
    assert not thread.is_alive(), "a second client was not served"
    assert len(answers) == 3


def whole(server: StorageServer, open_writers: int = 0) -> None:
    """No partial share at rest: incoming/ holds only the open writers' files."""
    incoming = []
    for root, _dirs, files in os.walk(server.layout.incoming_dir):
        incoming += [os.path.join(root, f) for f in files]
    assert len(incoming) == open_writers, incoming
    for root, dirs, files in os.walk(server.layout.shares_dir):
        dirs[:] = [d for d in dirs if os.path.join(root, d) != server.layout.incoming_dir]
        for f in files:
            assert sniff_sharetype(os.path.join(root, f)) is not None, f"{root}/{f} is not a whole share"


@pytest.fixture
def wire(server):
    return FoolscapStorageServer(server)


def after(server: StorageServer, open_writers: int = 0) -> None:
    whole(server, open_writers)
    served_promptly(server)


@FUZZ
@given(si=hostile_sis, renew=hostile_secrets, cancel=hostile_secrets, shares=hostile_share_sets,
       size=hostile_sizes, writes=st.lists(st.tuples(mostly(st.integers(0, 2000), hostile_ints), hostile_data),
                                           max_size=4),
       close=st.booleans())
def test_allocate_write_close_abort(server, si, renew, cancel, shares, size, writes, close):
    answer = call(server.allocate_buckets, si, renew, cancel, shares, size)
    if isinstance(answer, Exception):
        return after(server)
    already, writers = answer
    assert isinstance(already, set) and isinstance(writers, dict)
    assert len(writers) <= 256
    after(server, open_writers=len(writers))
    for writer in writers.values():
        for offset, data in writes:
            call(writer.write, offset, data)
        if close and not writer.remaining():
            call(writer.close)
        else:
            call(writer.abort)
        call(writer.write, 0, b"late")  # after close or abort: refused
    after(server)


@FUZZ
@given(si=st.sampled_from(STORAGE_INDEXES), shares=st.sets(st.integers(0, 255), max_size=300),
       size=st.sampled_from([0, 1, 100, 2**31, 2**63, 2**64 - 1]))
def test_allocate_through_the_adapter(server, wire, si, shares, size):
    answer = call(wire.remote_allocate_buckets, si, b"r" * 32, b"c" * 32, shares, size, Canary())
    if not isinstance(answer, Exception):
        for writer in answer[1].values():
            writer.remote_abort()
    after(server)


@FUZZ
@given(si=hostile_sis, offset=mostly(st.integers(0, 3000), hostile_ints), length=hostile_sizes, reason=hostile_data,
       shnum=hostile_shnums, kind=st.sampled_from([b"immutable", b"mutable", b"", "immutable", None]))
def test_readers_leases_and_advisories(server, si, offset, length, reason, shnum, kind):
    readers = call(server.get_buckets, si)
    if isinstance(readers, dict):
        for reader in readers.values():
            call(reader.read, offset, length)
            call(reader.advise_corrupt_share, reason)
    call(server.add_lease, si, b"r" * 32, b"c" * 32)
    call(server.renew_lease, si, b"r" * 32)
    call(server.advise_corrupt_share, kind, si, shnum, reason)
    after(server)


@FUZZ
@given(si=hostile_sis, shares=hostile_share_sets, readv=hostile_read_vectors)
def test_slot_readv(server, si, shares, readv):
    answer = call(server.slot_readv, si, shares, readv)
    if isinstance(answer, dict):
        assert all(isinstance(v, list) for v in answer.values())
    after(server)


@FUZZ
@given(si=hostile_sis, we=hostile_secrets, renew=hostile_secrets, cancel=hostile_secrets,
       vectors=hostile_tw_vectors, readv=hostile_read_vectors)
def test_slot_test_and_write(server, si, we, renew, cancel, vectors, readv):
    call(server.slot_testv_and_readv_and_writev, si, (we, renew, cancel), vectors, readv)
    after(server)


@FUZZ
@given(si=st.sampled_from(STORAGE_INDEXES), vectors=st.dictionaries(
    st.integers(0, 255),
    st.tuples(st.lists(st.tuples(st.sampled_from([0, 1, 2**63]), st.integers(0, 100), st.just(b"eq"),
                                 st.binary(max_size=8)), max_size=2),
              st.lists(st.tuples(st.sampled_from([0, 7, 4096, 2**40, 2**64 - 1]), st.binary(max_size=64)),
                       max_size=3),
              st.one_of(st.none(), st.sampled_from([0, 1, 2**40, 2**64 - 1]))),
    max_size=4))
def test_slot_writes_through_the_adapter(server, wire, si, vectors):
    wire_vectors = {sh: (list(tv), list(wv), n) for sh, (tv, wv, n) in vectors.items()}
    call(wire.remote_slot_testv_and_readv_and_writev, si, (b"w" * 32, b"r" * 32, b"c" * 32), wire_vectors,
         [(0, 100)])
    call(wire.remote_slot_readv, si, list(vectors), [(0, 100), (2**63, 5)])
    after(server)
