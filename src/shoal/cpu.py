"""The one bounded thread pool of the process for CPU work (hashing, AES, zfec, RSA) off the reactor.

hashlib, pycryptodome and zfec release the GIL on large buffers, so two
threads keep both cores busy while the reactor thread moves bytes.
`await run(fn, *args)` from reactor-thread code.
"""

import os
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import reactor as _reactor
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")
reactor: Any = _reactor

_pool: ThreadPool | None = None


def pool() -> ThreadPool:
    global _pool
    if _pool is None:
        size = max(2, min(4, os.cpu_count() or 2))
        _pool = ThreadPool(minthreads=0, maxthreads=size, name="shoal-cpu")
        _pool.start()
        reactor.addSystemEventTrigger("during", "shutdown", _pool.stop)
    return _pool


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> "Any":
    """A Deferred firing with fn(*args, **kwargs), computed in the CPU pool."""
    return threads.deferToThreadPool(reactor, pool(), fn, *args, **kwargs)
