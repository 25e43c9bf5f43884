"""A few RSA-2048 signing keys made ahead of need, so creating a mutable file
or directory does not wait for key generation.

Generating a 2048-bit key costs 20 to 50 ms of OpenSSL (more under load,
and the prime search varies a lot); Tahoe 1.20 pays it on every create. The pool
keeps up to `size` keys, made one at a time in the CPU pool: `get()` hands
out a ready key when there is one, and otherwise makes one on the spot. A pool
of size 0 is plain on-demand generation. Keys are made from os.urandom and
used once.

Refilling waits for a lull: while a burst of creates is served from the pool,
making keys behind it would only take the CPU the burst itself needs (each key
costs more than the rest of a small create). So a get() that leaves more than
a quarter of the pool starts the refill only once no get() came for
`idle_delay` seconds; one that leaves a quarter or less starts it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet import reactor as _reactor

from shoal import cpu
from shoal.crypto import rsa

IDLE_DELAY = 1.0  # seconds without a get() before a pool still a quarter full is refilled


class KeyPool:
    def __init__(self, size: int = 0, generate: Callable[[], rsa.PrivateKey] = rsa.generate_private_key, *,
                 idle_delay: float = IDLE_DELAY, clock: Any = None) -> None:
        if size < 0:
            raise ValueError("a key pool size is zero or more")
        self.size = size
        self._generate = generate
        self.idle_delay = idle_delay
        self._clock: Any = clock if clock is not None else _reactor
        self._refill: Any = None  # the delayed call of fill() after a lull
        self._ready: list[rsa.PrivateKey] = []
        self._filling: defer.Deferred[Any] | None = None
        self.made = 0
        self.served_from_pool = 0

    def ready(self) -> int:
        return len(self._ready)

    def fill(self) -> None:
        """Start making keys until `size` are ready (one at a time, in the CPU pool)."""
        if self._filling is not None or len(self._ready) >= self.size:
            return
        self._filling = defer.ensureDeferred(self._fill())

    async def _fill(self) -> None:
        try:
            while len(self._ready) < self.size:
                key = await cpu.run(self._generate)
                self.made += 1
                self._ready.append(key)
        finally:
            self._filling = None

    async def get(self) -> rsa.PrivateKey:
        if self._ready:
            key = self._ready.pop(0)
            self.served_from_pool += 1
        else:
            key = await cpu.run(self._generate)
            self.made += 1
        self._after_get()
        return key

    def _after_get(self) -> None:
        """Refill now if a quarter of the pool or less is left, else after a lull."""
        if self._refill is not None and self._refill.active():
            self._refill.cancel()
        self._refill = None
        if len(self._ready) * 4 <= self.size:
            self.fill()
        elif self._filling is None and len(self._ready) < self.size:
            self._refill = self._clock.callLater(self.idle_delay, self.fill)

    async def stop(self) -> None:
        """Wait for a refill in progress (so a stopping node leaves no thread busy)."""
        self.size = 0
        if self._refill is not None and self._refill.active():
            self._refill.cancel()
        if self._filling is not None:
            await self._filling
