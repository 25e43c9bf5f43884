"""Run the Twisted reactor in a background thread so synchronous test code can
make real Foolscap calls (`call(fn, *args)` waits for fn's Deferred)."""

import threading
from collections.abc import Callable
from typing import Any

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


class RemoteCallError(Exception):
    """A remote call failed on the far side; str() carries the remote type and message.

    Each remote exception type arrives as its own subclass (see remote_error),
    so tests can expect e.g. remote_error("shoal.storage.errors.NoSpaceError").
    """

    remote_type = ""


_remote_classes: dict[str, type[RemoteCallError]] = {}


def remote_error(qualname: str) -> type[RemoteCallError]:
    """The RemoteCallError subclass that stands for a remote exception type."""
    cls = _remote_classes.get(qualname)
    if cls is None:
        name = qualname.rsplit(".", 1)[-1]
        cls = type(f"Remote{name}", (RemoteCallError,), {"remote_type": qualname})
        _remote_classes[qualname] = cls
    return cls


def _reraise(failure: Failure) -> None:
    if isinstance(failure.value, str) or not isinstance(failure.value, BaseException):
        # Foolscap's CopiedFailure: the remote exception as text
        kind = f"{failure.type.__module__}.{getattr(failure.type, '__name__', 'Error')}"
        raise remote_error(kind)(f"{kind}: {failure.getErrorMessage()}")
    failure.raiseException()


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run fn in the reactor thread; block for its result (Deferreds are awaited)."""
    ensure_running()

    def run() -> Any:
        return defer.maybeDeferred(fn, *args, **kwargs).addErrback(_reraise)

    return threads.blockingCallFromThread(reactor, run)
