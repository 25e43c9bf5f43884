"""Blocking network I/O on threads, answered on the reactor as Deferreds.

The HTTP storage client does its socket I/O (TLS and HTTP framing, shoal.grid.https_pool)
on threads of one bounded pool of the process, kept apart from shoal.cpu's pool
so waiting on a slow server never holds up hashing or erasure coding. Each
server also has a limit of its own (`Lane`): a busy server queues its
requests on the reactor instead of taking every thread.

Results come back to the reactor thread (callFromThread). Cancelling a
returned Deferred tells the work (through the InFlight it was given) to
drop its connection, and fails the Deferred with CancelledError at once.
"""

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

from shoal.grid.https_pool import InFlight

T = TypeVar("T")

__all__ = ["IoThreads", "Lane", "io_threads"]


class IoThreads:
    """A bounded pool of I/O threads (made as needed, kept while the process runs)."""

    def __init__(self, reactor: Any, max_threads: int = 32) -> None:
        self._reactor = reactor
        self._max = max_threads
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._queued = 0
        self._stopping = False

    def _worker(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            if job is None:
                return
            job()

    def _submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._queued += 1
            spawn = self._queued > self._idle and self._threads < self._max
            if spawn:
                first = self._threads == 0
                self._threads += 1
        if spawn:
            if first:
                self._reactor.addSystemEventTrigger("during", "shutdown", self.stop)
            threading.Thread(target=self._worker, name="shoal-io", daemon=True).start()
        self._jobs.put(job)

    def stop(self) -> None:
        """Let every thread end once the work queued before now is done."""
        with self._lock:
            count, self._threads = self._threads, 0
            self._queued += count
        for _ in range(count):
            self._jobs.put(None)

    def run(self, work: Callable[[InFlight], T]) -> "defer.Deferred[T]":
        """work(flight) on an I/O thread; its result or exception on the reactor."""
        flight = InFlight()
        d: defer.Deferred[T] = defer.Deferred(lambda _: flight.cancel())

        def deliver(ok: bool, value: Any) -> None:
            if d.called:  # cancelled meanwhile
                return
            if ok:
                d.callback(value)
            else:
                d.errback(value)

        def in_thread() -> None:
            try:
                value: Any = work(flight)
                ok = True
            except BaseException as e:  # delivered to the caller's errback
                value, ok = e, False
            self._reactor.callFromThread(deliver, ok, value)

        self._submit(in_thread)
        return d


class _Job:
    def __init__(self, work: Callable[[InFlight], Any]) -> None:
        self.work = work
        self.outer: defer.Deferred[Any] = defer.Deferred(self._cancel)
        self.inner: defer.Deferred[Any] | None = None
        self.on_cancel_waiting: Callable[[_Job], None] = lambda job: None

    def _cancel(self, _: Any) -> None:
        if self.inner is not None:
            self.inner.cancel()  # drops the connection; the thread's answer is ignored
        else:
            self.on_cancel_waiting(self)


class Lane:
    """At most `limit` requests of one server on I/O threads at once; the rest wait, in order."""

    def __init__(self, threads: IoThreads, limit: int = 4) -> None:
        self._threads = threads
        self._limit = limit
        self._running = 0
        self._waiting: deque[_Job] = deque()

    def run(self, work: Callable[[InFlight], T]) -> "defer.Deferred[T]":
        """Like IoThreads.run, queued behind this server's other requests."""
        job = _Job(work)
        job.on_cancel_waiting = self._waiting.remove
        self._waiting.append(job)
        self._next()
        return job.outer

    def _next(self) -> None:
        while self._running < self._limit and self._waiting:
            job = self._waiting.popleft()
            self._running += 1
            job.inner = self._threads.run(job.work)
            job.inner.addBoth(self._done, job)

    def _done(self, result: Any, job: _Job) -> None:
        self._running -= 1
        if not job.outer.called:  # else the caller cancelled: the answer is of no interest
            if isinstance(result, Failure):
                job.outer.errback(result)
            else:
                job.outer.callback(result)
        self._next()


_shared: IoThreads | None = None


def io_threads(reactor: Any) -> IoThreads:
    """The process's one I/O pool (made on first call)."""
    global _shared
    if _shared is None:
        _shared = IoThreads(reactor)
    return _shared
