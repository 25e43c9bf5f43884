"""The broker's link to one server over HTTPS: its announced anonymous-storage-NURLs.

As Tahoe-LAFS 1.20 does, the first connection races a GET /storage/v1/version
to every NURL the server announces and keeps the first that answers. Being
"connected" over HTTP means the last version request answered: the link asks
again every `probe_interval` seconds, and any call that finds the server
unreachable (no connection, a dropped one) counts as a loss. After a failed
attempt or a loss it tries again with exponential backoff (1 s doubling up to
`max_delay`); reset() cuts a wait short. Status lines use the words of the
Foolscap link ("Connected to ... via HTTPS", "Trying to connect",
"Reconnecting in N seconds (last attempt Ms ago)").
"""

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from shoal.grid.http_client import HttpStorageClient
from shoal.grid.storage_client import Deadlines, ServerVersion
from shoal.protocol import connection_status
from shoal.protocol.nurl import Nurl, NurlError

__all__ = ["HttpConnection", "http_connection", "usable_nurls"]

_log = Logger()


# An idle kept-alive socket does not tell a blocking pool that its server went away, so
# a version request every this many seconds does (what Foolscap learns from the TCP
# close). Ten servers cost about one small request a second, well under 0.1% of a core.
PROBE_INTERVAL = 10.0


class HttpConnection:
    protocol = "HTTP"

    def __init__(
        self,
        clients: Sequence[HttpStorageClient],
        clock: Any,
        deadlines: Deadlines,
        *,
        probe_interval: float = PROBE_INTERVAL,
        max_delay: float = 300.0,
    ) -> None:
        """clients: one per announced NURL (built by the connector, each with its own pool)."""
        self._candidates = list(clients)
        self._clock = clock
        self._deadlines = deadlines
        self._probe_interval = probe_interval
        self._max_delay = max_delay
        self._client: HttpStorageClient | None = None
        self._state = "unstarted"  # connecting, connected, waiting, stopped
        self._delay = 1.0
        self._timer: Any = None
        self._attempt: defer.Deferred[Any] | None = None
        self._last_attempt: float | None = None
        self._next_attempt: float | None = None
        self._connected_at: float | None = None
        self._last_received: float | None = None
        self._failures: dict[str, str] = {}
        self._on_connected: Callable[[Any, ServerVersion | None], None] = lambda client, version: None
        self._on_lost: Callable[[], None] = lambda: None

    def unreachable(self) -> None:
        """A call to the server found it unreachable (wired into each client by the connector)."""
        if self._state == "connected":
            self._lose("a request found the server unreachable")

    def start(self, on_connected: Callable[[Any, ServerVersion | None], None], on_lost: Callable[[], None]) -> None:
        self._on_connected = on_connected
        self._on_lost = on_lost
        self._try()

    def stop(self) -> None:
        self._state = "stopped"
        self._cancel_timer()
        if self._attempt is not None:
            self._attempt.cancel()
        for client in self._candidates:
            client.close()

    def reset(self) -> None:
        if self._state == "waiting":
            self._cancel_timer()
            self._delay = 1.0
            self._schedule(1.0)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _schedule(self, delay: float) -> None:
        self._next_attempt = self._clock.seconds() + delay
        self._timer = self._clock.callLater(delay, self._try)

    def _try(self) -> None:
        self._timer = None
        if self._state == "stopped":
            return
        self._state = "connecting"
        self._last_attempt = self._clock.seconds()
        chosen = [self._client] if self._client is not None else self._candidates
        self._attempt = _race([(c, c.get_version()) for c in chosen])
        self._attempt.addCallbacks(self._won, self._failed)

    def _won(self, answer: tuple[HttpStorageClient, ServerVersion]) -> None:
        client, version = answer
        self._attempt = None
        if self._state == "stopped":
            return
        if self._client is None:
            self._client = client
            for other in self._candidates:
                if other is not client:
                    other.close()
        self._state = "connected"
        self._delay = 1.0
        self._failures = {}
        now = self._clock.seconds()
        self._connected_at = self._last_received = now
        self._timer = self._clock.callLater(self._probe_interval, self._probe)
        self._on_connected(client, version)

    def _failed(self, failure: Failure) -> None:
        self._attempt = None
        if self._state == "stopped" or failure.check(defer.CancelledError):
            return
        self._failures = {c.address: failure.getErrorMessage() for c in self._candidates}
        _log.info("HTTPS storage server: {e}", e=failure.getErrorMessage())
        self._state = "waiting"
        self._schedule(self._delay)
        self._delay = min(self._delay * 2, self._max_delay)

    def _probe(self) -> None:
        self._timer = None
        if self._state != "connected" or self._client is None:
            return

        def alive(_: Any) -> None:
            if self._state == "connected":
                self._last_received = self._clock.seconds()
                self._timer = self._clock.callLater(self._probe_interval, self._probe)

        def dead(f: Failure) -> None:
            if self._state == "connected":
                self._lose(f.getErrorMessage())

        self._client.get_version().addCallbacks(alive, dead)

    def _lose(self, why: str) -> None:
        self._cancel_timer()
        self._state = "waiting"
        self._failures = {self._client.address if self._client else "?": why}
        self._on_lost()
        self._delay = 1.0
        self._schedule(self._delay)
        self._delay *= 2

    def status(self, now: float) -> connection_status.ConnectionStatus:
        if self._state in ("unstarted", "stopped"):
            return connection_status.unstarted()
        if self._state == "connected" and self._client is not None:
            return connection_status.ConnectionStatus(
                True, f"Connected to {self._client.address} via HTTPS", {}, self._connected_at, self._last_received
            )
        if self._state == "connecting":
            summary = "Trying to connect"
        else:
            delay = (self._next_attempt or now) - now
            elapsed = now - (self._last_attempt or now)
            summary = "Reconnecting in %d seconds (last attempt %ds ago)" % (delay, elapsed)
        others = {f"{addr} via HTTPS": why for addr, why in self._failures.items()}
        return connection_status.ConnectionStatus(False, summary, others, None, self._last_received)


def _race(
    attempts: Sequence[tuple[HttpStorageClient, "defer.Deferred[ServerVersion]"]],
) -> "defer.Deferred[tuple[HttpStorageClient, ServerVersion]]":
    """The client whose version answered first, with that answer (the broker
    needs it and need not ask again); the last failure if none did (the
    others cancelled)."""
    def cancel_all(_: Any) -> None:
        for _, d in attempts:
            d.cancel()

    result: defer.Deferred[tuple[HttpStorageClient, ServerVersion]] = defer.Deferred(cancel_all)
    left = [len(attempts)]

    def won(version: ServerVersion, client: HttpStorageClient) -> None:
        if not result.called:
            result.callback((client, version))
            for other, d in attempts:
                if other is not client:
                    d.cancel()

    def lost(f: Failure) -> None:
        left[0] -= 1
        if not result.called and left[0] == 0:
            result.errback(f)

    for client, d in attempts:
        d.addCallback(won, client).addErrback(lost)
    return result


def http_connection(
    nurls: Sequence[str], name: str, clock: Any, deadlines: Deadlines, *, reactor: Any = None,
    probe_interval: float = PROBE_INTERVAL,
) -> HttpConnection:
    """The link to a server at its announced NURLs (those usable_nurls keeps)."""
    def unreachable() -> None:
        connection.unreachable()

    clients = []
    for text in nurls:
        nurl = Nurl.parse(text)
        clients.append(HttpStorageClient(
            nurl.host, nurl.port, nurl.spki_hash.encode("ascii"), nurl.swissnum.encode("ascii"), name, clock,
            deadlines,
            reactor=reactor, on_unreachable=unreachable,
        ))
    connection = HttpConnection(clients, clock, deadlines, probe_interval=probe_interval)
    return connection


def usable_nurls(announced: object) -> tuple[str, ...]:
    """The NURLs of an announcement's anonymous-storage-NURLs that shoal can reach (TCP, not Tor),
    sorted (Tahoe sends a set)."""
    if not isinstance(announced, list | tuple | set | frozenset):
        return ()
    usable = []
    for text in announced:
        try:
            nurl = Nurl.parse(text)
        except NurlError:
            continue
        if not nurl.tor:
            usable.append(text)
    return tuple(sorted(usable))
