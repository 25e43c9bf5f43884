"""Waiting on a condition instead of sleeping: the one polling loop of the tests.

A test that must see something happen in another process (a server leaving,
a file appearing, a report being written) polls a predicate until it holds,
and fails naming what it waited for. A fixed sleep would either waste time or,
on a loaded machine, be too short.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition a test waited on never held (the message says which)."""


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call predicate until it returns something truthy, and return that.

    Exceptions of the types in `ignore` count as "not yet" (a port not yet
    listening, a file half-written). After `timeout` seconds, WaitTimeout
    names `what` and the last answer or error seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except ignore as e:
            last = e
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what} (last: {last!r})"[:2000])
        time.sleep(interval)
