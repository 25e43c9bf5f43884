"""Run the Twisted reactor in a background thread so synchronous test code can
make real Foolscap calls (`call(fn, *args)` waits for fn's Deferred; a remote
failure that reaches it raises foolscap's RemoteException)."""

import threading
from collections.abc import Callable
from typing import Any

from foolscap.api import RemoteException
from twisted.internet import defer, threads
from twisted.internet import reactor as _reactor
from twisted.python.failure import Failure

reactor: Any = _reactor  # the global reactor, untyped as Twisted's own code uses it

_thread: threading.Thread | None = None


def ensure_running() -> None:
    global _thread
    if _thread is not None:
        return
    _thread = threading.Thread(
        target=lambda: reactor.run(installSignalHandlers=False),
        name="twisted-reactor",
        daemon=True,
    )
    _thread.start()


def _reraise(failure: Failure) -> None:
    if not isinstance(failure.value, BaseException):
        # Foolscap's CopiedFailure (a remote exception as text): raise it as Foolscap's RemoteException
        raise RemoteException(failure)
    failure.raiseException()


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run fn in the reactor thread; block for its result (Deferreds are awaited)."""
    ensure_running()

    def run() -> Any:
        return defer.maybeDeferred(fn, *args, **kwargs).addErrback(_reraise)

    return threads.blockingCallFromThread(reactor, run)
