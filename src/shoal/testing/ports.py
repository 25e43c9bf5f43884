"""Free TCP ports on 127.0.0.1 for tests that must name a port before a process listens on it.

Binding port 0 and closing the socket hands back a port from the kernel's ephemeral range,
where any other process (a node listening on tcp:0, any outgoing connection, the other
pytest-xdist worker doing the same) may take it before the caller's process binds it. So
the ports handed out here come from below the ephemeral range, and each xdist worker
(PYTEST_XDIST_WORKER=gwN) has its own block of them: two workers never pick the same
port, and the kernel never picks one for a bind(0) or a connect. Within a block, each
candidate is checked with a bind, and the next call moves on, so a process never gets
one port twice while an earlier user may still hold it.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
import threading

FIRST_PORT = 20000  # under Linux's default ephemeral range (32768-60999)
BLOCK = 1500  # ports per worker: gw0 20000-21499, gw1 21500-22999, ... (up to 8 workers)
WORKER_SLOTS = 8

_lock = threading.Lock()
_counter: itertools.count[int] | None = None


def _worker_index() -> int:
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(match.group(1)) % WORKER_SLOTS if match else WORKER_SLOTS - 1  # serial: the last block


def _next_offset() -> int:
    global _counter
    with _lock:
        if _counter is None:  # a random start, so two runs side by side rarely walk in step
            _counter = itertools.count(random.randrange(BLOCK))
        return next(_counter) % BLOCK


def free_port(host: str = "127.0.0.1") -> int:
    """A port of this worker's block that nothing listens on or is bound to at the moment."""
    base = FIRST_PORT + _worker_index() * BLOCK
    for _ in range(BLOCK):
        port = base + _next_offset()
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        return port
    raise OSError(f"no free port in {base}-{base + BLOCK - 1} on {host}")
