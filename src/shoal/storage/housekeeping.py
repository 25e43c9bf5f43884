"""The storage server's housekeeping: the Twisted shell over its two walks.

Every ``interval`` seconds (a LoopingCall on the reactor): abort uploads idle
for 30 minutes, then one slice of the lease crawler and one of the scrubber
(``storage.walk``). Each step's disk and hash work (reading leases, rewriting
or deleting shares, proving a share's blocks) runs through ``offload``,
shoal.cpu's one bounded pool by default, so the reactor thread only keeps
the walks' books and saves their state: a big share being scrubbed, or a
share copied to drop a lease, never holds it up. The next tick waits until
this one's slices are done; between cycles a slice answers at once.
"""

from typing import Any

from twisted.internet import defer, task
from twisted.python import log

from shoal import cpu
from shoal.storage.server import StorageServer
from shoal.storage.walk import Offload

INTERVAL = 1.0  # seconds between ticks
SLICE = 0.1  # seconds of walking per slice


class Housekeeping:
    """Runs a StorageServer's periodic work while started (see the module docstring)."""

    def __init__(self, server: StorageServer, *, offload: Offload = cpu.run, clock: Any = None,
                 interval: float = INTERVAL, slice_seconds: float = SLICE) -> None:
        self._server = server
        self._offload = offload
        self._interval = interval
        self._slice_seconds = slice_seconds
        self._loop = task.LoopingCall(self._tick)
        if clock is not None:
            self._loop.clock = clock
        self._ticking: defer.Deferred[None] | None = None

    @property
    def running(self) -> bool:
        return bool(self._loop.running)

    def start(self) -> None:
        self._loop.start(self._interval, now=False)

    def stop(self) -> "defer.Deferred[None]":
        """Stop ticking; the Deferred fires once a slice still running has saved its state."""
        if self._loop.running:
            self._loop.stop()
        ticking = self._ticking
        if ticking is None:
            return defer.succeed(None)
        done: defer.Deferred[None] = defer.Deferred()

        def finished(result: Any) -> Any:
            done.callback(None)
            return result

        ticking.addBoth(finished)
        return done

    def _tick(self) -> "defer.Deferred[None]":
        self._ticking = defer.ensureDeferred(self.tick())
        self._ticking.addBoth(self._ticked)
        return self._ticking

    def _ticked(self, result: Any) -> Any:
        self._ticking = None
        return result

    async def tick(self) -> None:
        """One round: idle uploads, a crawler slice, a scrubber slice (errors are logged)."""
        server = self._server
        try:
            server.abort_idle_writers()
            await server.crawler.slice(self._slice_seconds, offload=self._offload)
            await server.scrubber.slice(self._slice_seconds, offload=self._offload)
        except Exception:
            log.err(None, "storage housekeeping failed")
