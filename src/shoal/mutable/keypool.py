"""A few RSA-2048 signing keys made ahead of need, so creating a mutable file
or directory does not wait for key generation.

Generating a 2048-bit key costs 20 to 50 ms of OpenSSL (more under load,
and the prime search varies a lot); Tahoe 1.20 pays it on every create. The pool
keeps up to `size` keys, made one at a time in the CPU pool: `get()` hands
out a ready key when there is one and starts a refill, and otherwise makes
one on the spot. A pool of size 0 is plain on-demand generation. Keys are
made from os.urandom and used once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from shoal import cpu
from shoal.crypto import rsa


class KeyPool:
    def __init__(self, size: int = 0, generate: Callable[[], rsa.PrivateKey] = rsa.generate_private_key) -> None:
        if size < 0:
            raise ValueError("a key pool size is zero or more")
        self.size = size
        self._generate = generate
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
        self.fill()
        return key

    async def stop(self) -> None:
        """Wait for a refill in progress (so a stopping node leaves no thread busy)."""
        self.size = 0
        if self._filling is not None:
            await self._filling
