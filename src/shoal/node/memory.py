"""How a node process asks the C allocator to keep its footprint small.

glibc gives each thread that allocates its own malloc arena (up to 8 per
core), and a freed block goes back to the arena it came from. A node's
Twisted thread pools (CPU work, disk I/O, TLS) touch many threads, so after
a large transfer each of them holds memory the others cannot reuse: a 1 GiB
upload peaked at 178 MiB RSS with the default and at 150 MiB with two
arenas, for the same CPU time (bench/updown.py on this machine).

`limit_malloc_arenas` sets glibc's M_ARENA_MAX for the running process
through mallopt(3). The environment variable MALLOC_ARENA_MAX, which glibc
reads at start, wins: an operator who sets it keeps their value. On a C
library other than glibc (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (glibc's malloc.h)."""
DEFAULT_ARENAS = 2


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS, environ: dict[str, str] | None = None) -> bool:
    """Cap glibc's malloc arenas at `arenas`; True if the limit was set here.

    False when MALLOC_ARENA_MAX is in the environment (glibc already applied
    it) or when the C library has no mallopt with that parameter.
    """
    if arenas < 1:
        raise ValueError(f"a process needs at least one malloc arena, not {arenas}")
    env = os.environ if environ is None else environ
    if "MALLOC_ARENA_MAX" in env:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas) == 1)
