"""FoolscapStorageClient's edges, against a fake remote reference and a task.Clock (no reactor).

What goes on the wire (Tahoe 1.20's method names and argument shapes), how
each failure a Foolscap call can meet becomes the ServerError family, answers
of the wrong shape, deadlines to the second, and cancellation by the caller.
"""

from typing import Any

import pytest
from foolscap.api import DeadReferenceError, Referenceable, RemoteException, Violation
from foolscap.call import CopiedFailure
from twisted.internet import defer, task
from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure

from shoal.grid.foolscap_client import FoolscapStorageClient
from shoal.grid.storage_client import (
    Deadlines,
    ServerError,
    ServerFull,
    ServerProtocolError,
    ServerRefused,
    ServerTimeout,
    ServerUnreachable,
    SlotWrite,
    WriteSecrets,
)
from shoal.protocol.version import PROTOCOL_KEY

SI = b"s" * 16
R, C, W = b"r" * 32, b"c" * 32, b"w" * 32
DEADLINES = Deadlines(query=5, read=7, write=11, advise=3)
VERSION = {PROTOCOL_KEY: {b"available-space": 1000}, b"application-version": b"fake/1"}


class FakeRef:
    """A remote reference: records calls; answers from `answers` (value, Failure,
    exception raised at once, or a Deferred the test fires)."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.cancelled: list[str] = []

    def callRemote(self, method: str, *args: Any) -> "defer.Deferred[Any]":
        self.calls.append((method, args))
        answer = self.answers.get(method)
        if isinstance(answer, Failure | RemoteException):  # (a Failure is an exception too)
            return defer.fail(answer)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, defer.Deferred):
            return answer
        if answer is HANG:
            return defer.Deferred(lambda _: self.cancelled.append(method))
        return defer.succeed(answer)


HANG = object()


def client_for(ref: FakeRef, clock: task.Clock | None = None) -> FoolscapStorageClient:
    return FoolscapStorageClient(ref, "srv1", clock or task.Clock(), DEADLINES)


def failure_of(d: "defer.Deferred[Any]") -> BaseException:
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures, "the call did not fail"
    return failures[0].value


def result_of(d: "defer.Deferred[Any]") -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the call did not finish"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def copied_failure(remote_type: str, text: str) -> CopiedFailure:
    """A remote exception as Foolscap delivers it (type and text, no class)."""
    f = CopiedFailure()
    f.setCopyableState({"type": remote_type, "value": text, "traceback": "Traceback...", "parents": [remote_type]})
    return f


# -- what goes on the wire -------------------------------------------------------


def test_calls_go_out_with_tahoes_names_and_shapes() -> None:
    ref = FakeRef(allocate_buckets=(set(), {}), slot_testv_and_readv_and_writev=(True, {}), add_lease=None)
    client = client_for(ref)
    result_of(client.allocate_buckets(SI, R, C, frozenset({1, 2}), 100))
    result_of(client.slot_testv_and_readv_and_writev(
        SI, WriteSecrets(W, R, C), {0: SlotWrite([(0, 1, b"eq", b"")], [(0, b"x")], None)}, [(0, 5)]
    ))
    assert result_of(client.add_lease(SI, R, C)) is None
    (m1, a1), (m2, a2), (m3, a3) = ref.calls
    assert m1 == "allocate_buckets" and a1[:5] == (SI, R, C, {1, 2}, 100)
    assert type(a1[3]) is set and isinstance(a1[5], Referenceable)  # a canary per allocation
    assert m2 == "slot_testv_and_readv_and_writev"
    assert a2 == (SI, (W, R, C), {0: ([(0, 1, b"eq", b"")], [(0, b"x")], None)}, [(0, 5)])
    assert (m3, a3) == ("add_lease", (SI, R, C))


def test_answers_become_values() -> None:
    writer, reader = FakeRef(write=None, close=None), FakeRef(read=b"data")
    ref = FakeRef(
        get_version=VERSION,
        allocate_buckets=({3}, {1: writer}),
        get_buckets={0: reader},
        slot_readv={0: [b"ab", b""]},
        slot_testv_and_readv_and_writev=(False, {2: [b"old"]}),
    )
    client = client_for(ref)
    version = result_of(client.get_version())
    assert version.available_space == 1000 and version.application_version == b"fake/1"
    allocation = result_of(client.allocate_buckets(SI, R, C, frozenset({1, 3}), 10))
    assert allocation.already == frozenset({3}) and set(allocation.writers) == {1}
    result_of(allocation.writers[1].write(0, b"x"))
    assert writer.calls == [("write", (0, b"x"))]
    readers = result_of(client.get_buckets(SI))
    assert result_of(readers[0].read(0, 4)) == b"data"
    assert result_of(client.slot_readv(SI, [], [(0, 2), (5, 0)])) == {0: [b"ab", b""]}
    tw = result_of(client.slot_testv_and_readv_and_writev(SI, WriteSecrets(W, R, C), {}, [(0, 3)]))
    assert tw.success is False and tw.reads == {2: [b"old"]}


# -- answers of the wrong shape -----------------------------------------------------


@pytest.mark.parametrize(
    "method, answer",
    [
        ("get_version", "not a dict"),
        ("get_version", {b"application-version": b"x"}),  # no protocol section
        ("get_version", {PROTOCOL_KEY: {b"available-space": "lots"}}),
        ("allocate_buckets", "nonsense"),
        ("allocate_buckets", (set(), {}, "extra")),
        ("allocate_buckets", ({-1}, {})),
        ("allocate_buckets", (set(), {0: "not a reference"})),
        ("allocate_buckets", (set(), {300: FakeRef()})),
        ("get_buckets", [0, 1]),
        ("get_buckets", {0: 17}),
        ("get_buckets", {True: FakeRef()}),
        ("slot_readv", {0: ["text"]}),
        ("slot_readv", {"0": [b"x"]}),
        ("slot_readv", [b"x"]),
        ("slot_readv", {0: [b"xy"]}),  # longer than the 1 byte asked for
        ("slot_readv", {0: [b"x", b"y"]}),  # two answers to one read
        ("slot_readv", {0: []}),
        ("slot_testv_and_readv_and_writev", ("yes", {})),
        ("slot_testv_and_readv_and_writev", (True, {0: b"not a list"})),
        ("slot_testv_and_readv_and_writev", True),
    ],
)
def test_wrong_shaped_answers_are_protocol_errors(method: str, answer: Any) -> None:
    client = client_for(FakeRef(**{method: answer}))
    calls = {
        "get_version": lambda: client.get_version(),
        "allocate_buckets": lambda: client.allocate_buckets(SI, R, C, frozenset({0}), 10),
        "get_buckets": lambda: client.get_buckets(SI),
        "slot_readv": lambda: client.slot_readv(SI, [], [(0, 1)]),
        "slot_testv_and_readv_and_writev": lambda: client.slot_testv_and_readv_and_writev(
            SI, WriteSecrets(W, R, C), {}, [(0, 1)]
        ),
    }
    error = failure_of(calls[method]())
    assert isinstance(error, ServerProtocolError)
    assert error.server == "srv1" and error.method == method


def test_a_read_answering_more_than_asked_is_a_protocol_error() -> None:
    client = client_for(FakeRef(get_buckets={0: FakeRef(read=b"12345")}))
    reader = result_of(client.get_buckets(SI))[0]
    error = failure_of(reader.read(0, 4))
    assert isinstance(error, ServerProtocolError) and "5 bytes to a read of 4" in error.reason


def test_a_read_answering_text_is_a_protocol_error() -> None:
    client = client_for(FakeRef(get_buckets={0: FakeRef(read="text")}))
    reader = result_of(client.get_buckets(SI))[0]
    error = failure_of(reader.read(0, 4))
    assert isinstance(error, ServerProtocolError) and error.method == "read"


# -- failures -------------------------------------------------------------------------


NO_SPACE_TEXT = "storage index aaaa: mutable write needs 5 more bytes, only 0 available\nsecond line"


@pytest.mark.parametrize("remote_type", ["shoal.storage.errors.NoSpaceError", "allmydata.interfaces.NoSpace"])
def test_remote_no_space_is_server_full_keeping_the_text(remote_type: str) -> None:
    copied = copied_failure(remote_type, NO_SPACE_TEXT)
    for answer in (copied, RemoteException(copied)):
        error = failure_of(client_for(FakeRef(slot_readv=answer)).slot_readv(SI, [], []))
        assert type(error) is ServerFull
        assert error.reason == "storage index aaaa: mutable write needs 5 more bytes, only 0 available"
        assert error.server == "srv1" and error.method == "slot_readv"
        assert "srv1" in str(error) and "only 0 available" in str(error)


@pytest.mark.parametrize("remote_type", ["builtins.OSError", "exceptions.IOError"])
def test_a_tahoe_servers_full_disk_is_server_full(remote_type: str) -> None:
    """Tahoe 1.20 checks no space for mutable writes: the write's OSError comes back."""
    text = "[Errno 28] No space left on device: '/srv/storage/shares/aa/aaaa/0'"
    answer = RemoteException(copied_failure(remote_type, text))
    error = failure_of(
        client_for(FakeRef(slot_testv_and_readv_and_writev=answer)).slot_testv_and_readv_and_writev(
            SI, WriteSecrets(W, R, C), {}, []
        )
    )
    assert type(error) is ServerFull and error.reason == text
    other = failure_of(client_for(FakeRef(add_lease=copied_failure(remote_type, "[Errno 13] Permission denied")))
                       .add_lease(SI, R, C))
    assert type(other) is ServerRefused


def test_other_remote_errors_are_refusals_with_the_servers_first_line() -> None:
    text = "si x, share 0: bad write enabler. The write enabler was recorded by nodeid 'abc'."
    copied = copied_failure("shoal.storage.errors.BadWriteEnablerError", text)
    for answer in (copied, RemoteException(copied), copied_failure("foolscap.tokens.Violation", text)):
        error = failure_of(
            client_for(FakeRef(slot_testv_and_readv_and_writev=answer)).slot_testv_and_readv_and_writev(
                SI, WriteSecrets(W, R, C), {}, []
            )
        )
        assert type(error) is ServerRefused
        assert error.reason == text


def test_a_remote_error_without_text_still_says_something() -> None:
    error = failure_of(client_for(FakeRef(add_lease=copied_failure("builtins.IndexError", ""))).add_lease(SI, R, C))
    assert type(error) is ServerRefused and error.reason


@pytest.mark.parametrize(
    "answer",
    [
        DeadReferenceError("Calling Stale Broker"),  # raised at once by callRemote
        Failure(DeadReferenceError("Calling Stale Broker")),  # or delivered later
        Failure(ConnectionLost("connection was lost")),
    ],
)
def test_a_lost_connection_is_unreachable(answer: Any) -> None:
    error = failure_of(client_for(FakeRef(get_version=answer)).get_version())
    assert type(error) is ServerUnreachable and error.method == "get_version"


def test_a_local_schema_violation_is_a_protocol_error() -> None:
    error = failure_of(client_for(FakeRef(get_buckets=Violation("STRING too long"))).get_buckets(SI))
    assert type(error) is ServerProtocolError and "too long" in error.reason


def test_bucket_calls_translate_too() -> None:
    writer = FakeRef(write=Failure(DeadReferenceError("gone")), close=copied_failure("x.BucketClosedError", "closed"))
    client = client_for(FakeRef(allocate_buckets=(set(), {0: writer})))
    w = result_of(client.allocate_buckets(SI, R, C, frozenset({0}), 4)).writers[0]
    assert type(failure_of(w.write(0, b"x"))) is ServerUnreachable
    closed = failure_of(w.close())
    assert type(closed) is ServerRefused and closed.method == "close" and closed.reason == "closed"


# -- deadlines and cancellation --------------------------------------------------------


def test_a_query_times_out_after_exactly_its_deadline() -> None:
    clock = task.Clock()
    d = client_for(FakeRef(get_version=HANG), clock).get_version()
    clock.advance(DEADLINES.query - 0.001)
    assert not d.called
    clock.advance(0.001)
    error = failure_of(d)
    assert type(error) is ServerTimeout and error.method == "get_version" and "5s" in error.reason


def test_reads_and_writes_have_their_own_deadlines() -> None:
    clock = task.Clock()
    reader, writer = FakeRef(read=HANG), FakeRef(write=HANG)
    client = client_for(FakeRef(get_buckets={0: reader}, allocate_buckets=(set(), {0: writer})), clock)
    read = result_of(client.get_buckets(SI))[0].read(0, 10)
    write = result_of(client.allocate_buckets(SI, R, C, frozenset({0}), 10)).writers[0].write(0, b"x")
    clock.advance(DEADLINES.read - 0.001)
    assert not read.called and not write.called
    clock.advance(0.001)
    assert type(failure_of(read)) is ServerTimeout
    assert not write.called
    clock.advance(DEADLINES.write - DEADLINES.read - 0.001)
    assert not write.called
    clock.advance(0.001)
    assert type(failure_of(write)) is ServerTimeout


def test_an_answer_in_time_is_kept_and_the_deadline_goes() -> None:
    clock = task.Clock()
    answer: defer.Deferred[Any] = defer.Deferred()
    d = client_for(FakeRef(slot_readv=answer), clock).slot_readv(SI, [], [(0, 1)])
    clock.advance(DEADLINES.query - 1)
    answer.callback({0: [b"x"]})
    assert result_of(d) == {0: [b"x"]}
    assert clock.getDelayedCalls() == []


def test_cancelling_a_call_is_cancelled_error_not_a_server_error() -> None:
    clock = task.Clock()
    ref = FakeRef(get_buckets=HANG)
    d = client_for(ref, clock).get_buckets(SI)
    d.cancel()
    error = failure_of(d)
    assert isinstance(error, defer.CancelledError) and not isinstance(error, ServerError)
    assert ref.cancelled == ["get_buckets"]  # the call itself was cancelled
    assert clock.getDelayedCalls() == []  # and its deadline with it
