"""LocalStorageClient's edges: eventual send, dropped and hung connections, deadlines.

The real StorageServer on a temporary directory; the reactor turns that carry
calls and answers are those of a task.Clock (`turns`), the deadlines another
(`deadline_clock`), so each step is driven by hand without a reactor.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.python.failure import Failure

from shoal.grid.storage_client import (
    Deadlines,
    ServerError,
    ServerFull,
    ServerRefused,
    ServerTimeout,
    ServerUnreachable,
    SlotWrite,
    WriteSecrets,
)
from shoal.storage.server import StorageServer
from shoal.testing import local_storage
from shoal.testing.local_storage import LocalConnection, LocalStorageClient

SI = b"s" * 16
R, C, W = b"r" * 32, b"c" * 32, b"w" * 32
DEADLINES = Deadlines(query=5, read=7, write=11, advise=3)


class Rig:
    def __init__(self, directory: str, turns: task.Clock, max_space: int | None = None) -> None:
        self.turns = turns
        self.deadline_clock = task.Clock()
        self.server = StorageServer(directory, bytes(range(20)), max_space=max_space)
        self.connection = LocalConnection(lambda: self.server, "local1", self.deadline_clock, DEADLINES)
        self.lost: list[bool] = []
        clients: list[LocalStorageClient] = []
        self.connection.start(lambda client, version: clients.append(client), lambda: self.lost.append(True))
        self.turns.advance(0)
        self.client = clients[0]

    def run(self, d: "defer.Deferred[Any]") -> Any:
        """d's result once the pending turns have run (its failure raised)."""
        self.turns.advance(0)
        results: list[Any] = []
        d.addBoth(results.append)
        assert results, "no answer after the pending turns"
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]


@pytest.fixture
def turns(monkeypatch: pytest.MonkeyPatch) -> task.Clock:
    clock = task.Clock()
    monkeypatch.setattr(local_storage, "_reactor", clock)
    return clock


@pytest.fixture
def rig(tmp_path: Any, turns: task.Clock) -> Iterator[Rig]:
    made = Rig(str(tmp_path / "storage"), turns)
    yield made
    made.server.shutdown()


def test_calls_are_eventual_sends(rig: Rig) -> None:
    d = rig.client.allocate_buckets(SI, R, C, frozenset({0}), 10)
    assert not d.called  # unfired when the call returns
    _, first = rig.server.allocate_buckets(SI, R, C, {0}, 10)
    assert set(first) == {0}  # the client's call has not reached the server yet
    first[0].abort()
    allocation = rig.run(d)
    assert set(allocation.writers) == {0}
    write = allocation.writers[0].write(0, b"0123456789")
    assert not write.called
    rig.run(write)
    rig.run(allocation.writers[0].close())
    read = rig.run(rig.client.get_buckets(SI))[0].read(2, 3)
    assert not read.called
    assert rig.run(read) == b"234"


def test_the_answer_comes_a_turn_after_the_server_ran(rig: Rig) -> None:
    d = rig.client.slot_testv_and_readv_and_writev(SI, WriteSecrets(W, R, C), {0: SlotWrite((), [(0, b"m")])}, [])
    calls = rig.turns.getDelayedCalls()
    assert len(calls) == 1  # the call, travelling
    calls[0].func(*calls[0].args, **calls[0].kw)  # the server runs it ...
    rig.turns.calls.remove(calls[0])
    assert rig.server.slot_readv(SI, [], [(0, 1)]) == {0: [b"m"]}
    assert not d.called  # ... and its answer is still on the way
    assert rig.run(d).success is True


def test_arguments_are_copied_at_the_call(rig: Rig) -> None:
    allocation = rig.run(rig.client.allocate_buckets(SI, R, C, frozenset({0}), 3))
    data = bytearray(b"abc")
    write = allocation.writers[0].write(0, data)  # type: ignore[arg-type]
    data[:] = b"XYZ"
    rig.run(write)
    rig.run(allocation.writers[0].close())
    assert rig.server.get_buckets(SI)[0].read(0, 3) == b"abc"


def test_server_errors_arrive_as_refusals_with_the_servers_text(rig: Rig) -> None:
    secrets = WriteSecrets(W, R, C)
    rig.run(rig.client.slot_testv_and_readv_and_writev(SI, secrets, {0: SlotWrite((), [(0, b"m")])}, []))
    bad = WriteSecrets(b"\x00" * 32, R, C)
    with pytest.raises(ServerRefused) as caught:
        rig.run(rig.client.slot_testv_and_readv_and_writev(SI, bad, {0: SlotWrite((), [(0, b"x")])}, []))
    assert type(caught.value) is ServerRefused
    assert "bad write enabler. The write enabler was recorded by nodeid" in caught.value.reason
    assert caught.value.server == "local1" and caught.value.method == "slot_testv_and_readv_and_writev"


def test_a_full_server_is_server_full(tmp_path: Any, turns: task.Clock) -> None:
    rig = Rig(str(tmp_path / "small"), turns, max_space=100)
    try:
        with pytest.raises(ServerFull) as caught:
            rig.run(rig.client.slot_testv_and_readv_and_writev(
                SI, WriteSecrets(W, R, C), {0: SlotWrite((), [(0, b"x" * 1000)])}, []
            ))
        assert "more bytes, only" in caught.value.reason
    finally:
        rig.server.shutdown()


def test_disconnect_fails_calls_in_flight_and_aborts_unclosed_writers(rig: Rig) -> None:
    allocation = rig.run(rig.client.allocate_buckets(SI, R, C, frozenset({0, 1}), 4))
    rig.run(allocation.writers[0].write(0, b"done"))
    rig.run(allocation.writers[0].close())
    rig.run(allocation.writers[1].write(0, b"ha"))
    in_flight = rig.client.get_version()
    rig.connection.disconnect()
    assert rig.lost == [True]
    with pytest.raises(ServerUnreachable):
        rig.run(in_flight)
    with pytest.raises(ServerUnreachable):
        rig.run(rig.client.get_buckets(SI))  # and every call after
    # the server let the unclosed share go (as when a canary's connection drops); the closed one stays
    already, writers = rig.server.allocate_buckets(SI, R, C, {0, 1}, 4)
    assert already == {0} and set(writers) == {1}
    writers[1].abort()


def test_a_hung_server_meets_the_deadline_and_nothing_before(rig: Rig) -> None:
    rig.connection.hang()
    d = rig.client.get_version()
    rig.turns.advance(0)
    rig.deadline_clock.advance(DEADLINES.query - 0.001)
    rig.turns.advance(0)
    assert not d.called
    rig.deadline_clock.advance(0.001)
    with pytest.raises(ServerTimeout) as caught:
        rig.run(d)
    assert caught.value.method == "get_version"
    rig.connection.hang(False)
    assert rig.run(rig.client.get_version()).available_space is not None


def test_hanging_one_method_leaves_the_others_answering(rig: Rig) -> None:
    rig.connection.hang(methods=frozenset({"read"}))
    rig.run(rig.client.slot_readv(SI, [], [(0, 1)]))
    allocation = rig.run(rig.client.allocate_buckets(SI, R, C, frozenset({0}), 1))
    rig.run(allocation.writers[0].write(0, b"x"))
    rig.run(allocation.writers[0].close())
    read = rig.run(rig.client.get_buckets(SI))[0].read(0, 1)
    rig.turns.advance(0)
    assert not read.called
    rig.deadline_clock.advance(DEADLINES.read)
    with pytest.raises(ServerTimeout):
        rig.run(read)


def test_cancelling_a_call_is_not_a_server_error(rig: Rig) -> None:
    rig.connection.hang()
    d = rig.client.get_buckets(SI)
    d.cancel()
    with pytest.raises(defer.CancelledError) as caught:
        rig.run(d)
    assert not isinstance(caught.value, ServerError)
    assert rig.deadline_clock.getDelayedCalls() == []


def test_a_lying_reader_changes_what_the_client_sees_not_the_share(rig: Rig) -> None:
    allocation = rig.run(rig.client.allocate_buckets(SI, R, C, frozenset({0}), 4))
    rig.run(allocation.writers[0].write(0, b"\x00\x00\x00\x00"))
    rig.run(allocation.writers[0].close())
    rig.connection.set_reader_filter(lambda offset, data: bytes(b ^ 1 for b in data))
    reader = rig.run(rig.client.get_buckets(SI))[0]
    assert rig.run(reader.read(0, 4)) == b"\x01\x01\x01\x01"
    assert rig.server.get_buckets(SI)[0].read(0, 4) == bytes(4)
