"""shoal.streaming.ConsumerWriter: backpressure and client disconnects."""

import pytest
from twisted.internet import defer

from shoal.streaming import ClientGoneError, ConsumerWriter


class Consumer:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.producer = None
        self.registrations: list[bool] = []

    def registerProducer(self, producer, streaming):
        self.producer = producer
        self.registrations.append(streaming)

    def unregisterProducer(self):
        self.producer = None

    def write(self, data):
        self.data.append(data)


def test_writes_pass_through_and_count():
    consumer = Consumer()
    seen: list[int] = []
    with ConsumerWriter(consumer, on_bytes=seen.append) as writer:
        assert consumer.producer is writer and consumer.registrations == [True]
        d = writer.write(b"abc")
        assert d.called
        writer.write(b"de")
    assert consumer.data == [b"abc", b"de"] and writer.written == 5 and seen == [3, 2]
    assert consumer.producer is None


def test_a_paused_consumer_holds_the_writer_back_until_it_resumes():
    consumer = Consumer()
    with ConsumerWriter(consumer) as writer:
        writer.pauseProducing()
        d = writer.write(b"x")
        assert consumer.data == [b"x"] and not d.called
        writer.pauseProducing()  # a second pause changes nothing
        writer.resumeProducing()
        assert d.called and d.result is None
        assert writer.write(b"y").called


def test_a_disconnect_fails_the_waiting_write_and_every_later_one():
    consumer = Consumer()
    with ConsumerWriter(consumer) as writer:
        writer.pauseProducing()
        d = writer.write(b"x")
        failure: list = []
        d.addErrback(failure.append)  # the downloader awaits it
        writer.stopProducing()
        assert failure and failure[0].check(ClientGoneError)
        with pytest.raises(ClientGoneError):
            writer.write(b"y")
        # after stopProducing the consumer has dropped its producer itself
        consumer.producer = "dropped"
    assert consumer.producer == "dropped" and consumer.data == [b"x"]


def test_client_gone_is_a_cancellation_and_the_callers_fault():
    from shoal.errors import Fault

    e = ClientGoneError()
    assert isinstance(e, defer.CancelledError) and e.fault is Fault.CALLER


def test_a_disconnect_while_paused_with_nobody_waiting_logs_nothing():
    consumer = Consumer()
    with ConsumerWriter(consumer) as writer:
        writer.pauseProducing()
        writer.stopProducing()
    assert writer.stopped
