"""The client's storage broker: every storage server it knows of, and a connection to each.

Servers come from introducer announcements (any number of IntroducerClients)
and from private/servers.yaml (static entries win over announcements for the
same server id, as in Tahoe 1.20). For each one the broker keeps a connection
from its connector (`foolscap_connector`: Foolscap's Reconnector to the
anonymous-storage-FURL, retrying with exponential backoff and reconnecting
when a lost server returns; tests connect in process), asks get_version on
each connection (parsed once into a ServerVersion), hands out the server's
StorageClient while connected, and remembers when it connected, when it lost
the connection and what the server said. When any server connects, the others'
retry timers are cut short, as Tahoe does after a period offline.

get_servers_for_psi() gives the connected servers in Tahoe's permuted order
for a storage index (shoal.placement.permute).

A Foolscap connector's Tub must be running before this service starts.
"""

import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

import attrs
from twisted.application import service
from twisted.internet import defer
from twisted.internet import reactor as _reactor_module
from twisted.logger import Logger

from shoal.encoding.base32 import a2b, b2a
from shoal.errors import EncodingError, Fault, ShoalError
from shoal.grid.foolscap_client import FoolscapConnection
from shoal.grid.http_connection import http_connection, usable_nurls
from shoal.grid.storage_client import (
    Deadlines,
    ServerProtocolError,
    ServerRefused,
    ServerUnreachable,
    ServerVersion,
    StorageClient,
)
from shoal.introducer.client import IntroducerClient, StaticServer, censor_furl
from shoal.placement.permute import BadSeedError, permuted_servers, seed_for
from shoal.protocol import connection_status
from shoal.protocol.announcement import ANONYMOUS_STORAGE_FURL, ANONYMOUS_STORAGE_NURLS

_log = Logger()
_reactor: Any = _reactor_module

_FURL_TUBID = re.compile(r"\Apb://([a-zA-Z0-9]+)@")


class UnusableServerError(ShoalError):
    """A storage announcement we cannot connect to (no FURL): the announcer's fault."""

    fault = Fault.SERVER


class ServerConnection(Protocol):
    """How the broker reaches one server: it calls on_connected with a StorageClient
    each time a connection is made and on_lost when that connection goes.

    on_connected's second argument is the server's version when making the
    connection already asked for it (HTTP connects by asking), else None and
    the broker asks."""

    protocol: str  # what carries it, for status pages: "Foolscap", "HTTP", ...

    def start(
        self, on_connected: Callable[[Any, ServerVersion | None], None], on_lost: Callable[[], None]
    ) -> None: ...

    def stop(self) -> None: ...

    def reset(self) -> None:
        """Retry soon if waiting to reconnect."""
        ...

    def status(self, now: float) -> connection_status.ConnectionStatus: ...


# (server, deadlines, the clock they are measured on) -> the connection to use for it
Connector = Callable[["GridServer", Deadlines, Any], ServerConnection]


def foolscap_connector(tub: Any) -> Connector:
    """Connections over Foolscap through `tub`."""

    def connect(server: "GridServer", deadlines: Deadlines, timer: Any) -> ServerConnection:
        return FoolscapConnection(tub, server.furl, server.name, timer, deadlines)

    return connect


def storage_connector(tub: Any, *, force_foolscap: bool = False, reactor: Any = None) -> Connector:
    """As Tahoe 1.20 chooses: HTTPS to a server that announces anonymous-storage-NURLs
    (unless [client]force_foolscap), Foolscap through `tub` to the others."""
    over_foolscap = foolscap_connector(tub)

    def connect(server: "GridServer", deadlines: Deadlines, timer: Any) -> ServerConnection:
        if server.nurls and not force_foolscap:
            return http_connection(server.nurls, server.name, timer, deadlines, reactor=reactor)
        return over_foolscap(server, deadlines, timer)

    return connect


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


class GridServer:
    """One storage server we know of: its announcement, and a StorageClient while connected."""

    def __init__(
        self, server_id: bytes, ann: dict[str, Any], *, static: bool, clock: Callable[[], float]
    ) -> None:
        furl = ann.get(ANONYMOUS_STORAGE_FURL)
        if not isinstance(furl, str) or not furl.startswith("pb://"):
            raise UnusableServerError(f"server {_text(server_id)}: announcement has no pb:// anonymous-storage-FURL")
        m = _FURL_TUBID.match(furl)
        try:
            tubid = a2b(m.group(1).lower()) if m else None
        except EncodingError:
            tubid = None
        if tubid is None:
            raise UnusableServerError(f"server {_text(server_id)}: bad tub id in FURL {censor_furl(furl)}")
        self.server_id = server_id
        # the 20-byte tub id: Tahoe's lease and write-enabler seed for this server
        self.tubid: bytes = tubid
        self.announcement = ann
        self.static = static
        self.furl = furl
        # the HTTPS storage NURLs it announces (Tahoe sends a set; any order)
        self.nurls: tuple[str, ...] = usable_nurls(ann.get(ANONYMOUS_STORAGE_NURLS))
        self.permutation_seed = seed_for(ann, server_id)
        nickname = ann.get("nickname", "")
        self.nickname: str = nickname if isinstance(nickname, str) else ""
        # the server's StorageClient (kept, though stale, after a loss: calls then fail)
        self.storage: StorageClient | None = None
        self.version: ServerVersion | None = None
        self.last_connect_time: float | None = None
        self.last_loss_time: float | None = None
        self._connected = False
        self._connection: ServerConnection | None = None
        self._clock = clock
        self._on_connect: Callable[[GridServer], None] | None = None

    @property
    def name(self) -> str:
        """Short name: the first 8 characters after "v0-"."""
        sid = self.server_id[3:] if self.server_id.startswith(b"v0-") else self.server_id
        return _text(sid[:8])

    @property
    def label(self) -> str:
        """"nickname [name]" for messages."""
        return f"{self.nickname} [{self.name}]" if self.nickname else f"[{self.name}]"

    def is_connected(self) -> bool:
        return self._connected

    def connected_storage(self, method: str) -> StorageClient:
        """The server's StorageClient; ServerUnreachable (naming `method`) while not connected."""
        if self.storage is None or not self._connected:
            raise ServerUnreachable(self.name, method, "not connected")
        return self.storage

    @property
    def protocol(self) -> str | None:
        """What carries the connection ("HTTP", "Foolscap", ...), once connecting."""
        return self._connection.protocol if self._connection is not None else None

    @property
    def available_space(self) -> int | None:
        return self.version.space if self.version is not None else None

    @property
    def application_version(self) -> str | None:
        return _text(self.version.application_version) if self.version is not None else None

    # -- connection --

    def start_connecting(self, connection: ServerConnection, on_connect: Callable[["GridServer"], None]) -> None:
        self._on_connect = on_connect
        self._connection = connection
        connection.start(self._got_client, self._lost)

    def stop_connecting(self) -> None:
        if self._connection is not None:
            self._connection.stop()
        self._on_connect = None

    def try_to_connect(self) -> None:
        """Retry soon (in about a second) if waiting to reconnect."""
        if self._connection is not None:
            self._connection.reset()

    def _got_client(self, client: StorageClient, version: ServerVersion | None = None) -> None:
        d = client.get_version() if version is None else defer.succeed(version)

        def no_version(f: Any) -> ServerVersion:
            # a server that cannot answer get_version sensibly: Tahoe's defaults
            f.trap(ServerProtocolError, ServerRefused)
            _log.info("server {name}: unusable version answer, assuming defaults: {e}",
                      name=self.name, e=f.getErrorMessage())
            return ServerVersion()

        d.addErrback(no_version)
        d.addCallback(self._connected_with_version, client)
        d.addErrback(lambda f: _log.info("server {name}: get_version failed: {e}",
                                         name=self.name, e=f.getErrorMessage()))

    def _connected_with_version(self, version: ServerVersion, client: StorageClient) -> None:
        if self._on_connect is None:  # stopped meanwhile
            return
        self.storage = client
        self.version = version
        self._connected = True
        self.last_connect_time = self._clock()
        self._on_connect(self)

    def _lost(self) -> None:
        if self._connected:
            self._connected = False
            self.last_loss_time = self._clock()

    # -- status --

    def connection_status(self) -> connection_status.ConnectionStatus:
        if self._connection is None:
            return connection_status.unstarted()
        cs = self._connection.status(self._clock())
        if cs.connected and not self._connected:
            # connected, but get_version has not answered: not usable yet
            cs = attrs.evolve(cs, connected=False, summary="Connecting (waiting for the server's version)")
        return cs

    def status(self) -> dict[str, Any]:
        """JSON-ready; the first six keys are the fields of Tahoe's welcome-page JSON."""
        cs = self.connection_status()
        since = self.last_connect_time if self._connected else self.last_loss_time
        return {
            "nodeid": _text(self.server_id),
            "connection_status": cs.summary,
            "available_space": self.available_space,
            "nickname": self.nickname,
            "version": self.application_version,
            "last_received_data": cs.last_received_time,
            "connected": self._connected,
            "since": since,
            "last_connect_time": self.last_connect_time,
            "last_loss_time": self.last_loss_time,
            "my_version": _text(self.announcement.get("my-version", "")),
            "permutation_seed": b2a(self.permutation_seed),
            "static": self.static,
            "protocol": self.protocol,
            "details": cs.non_connected_statuses,
        }


class StorageBroker(service.MultiService):
    def __init__(
        self,
        connector: Connector,
        *,
        preferred: Collection[bytes] = (),
        clock: Callable[[], float] = time.time,
        deadlines: Deadlines | None = None,
        timer: Any = None,
    ) -> None:
        """connector: how to reach a server (foolscap_connector(tub), or an in-process one);
        deadlines: how long each call may take; timer: the IReactorTime every
        deadline and wait of the client side is measured on (the reactor by default;
        tests pass a task.Clock)."""
        super().__init__()
        self._connector = connector
        self.deadlines = deadlines or Deadlines()
        self.timer: Any = timer if timer is not None else _reactor
        self._preferred = frozenset(preferred)
        self._clock = clock
        self.servers: dict[bytes, GridServer] = {}
        self._static_ids: set[bytes] = set()
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []
        self._high_water = 0

    # -- sources --

    def use_introducer(self, introducer_client: IntroducerClient) -> None:
        introducer_client.subscribe_to("storage", self.got_announcement)

    def set_static_servers(self, servers: Mapping[bytes, StaticServer] | Iterable[StaticServer]) -> None:
        entries = servers.values() if isinstance(servers, Mapping) else servers
        for entry in sorted(entries, key=lambda s: s.server_id):
            self._static_ids.add(entry.server_id)
            self._replace(entry.server_id, dict(entry.ann), static=True)

    def got_announcement(self, server_id: bytes, ann: dict[str, Any]) -> None:
        """An IntroducerClient callback: a verified storage announcement, new or changed."""
        if server_id in self._static_ids:
            return  # local configuration wins
        old = self.servers.get(server_id)
        if old is not None and old.announcement == ann:
            return
        self._replace(server_id, ann, static=False)

    def _replace(self, server_id: bytes, ann: dict[str, Any], static: bool) -> None:
        try:
            server = GridServer(server_id, ann, static=static, clock=self._clock)
        except (BadSeedError, UnusableServerError) as e:
            _log.warn("ignoring storage server {id}: {e}", id=_text(server_id), e=str(e))
            return
        old = self.servers.pop(server_id, None)
        if old is not None:
            old.stop_connecting()
        self.servers[server_id] = server
        if self.running:
            server.start_connecting(self._connector(server, self.deadlines, self.timer), self._connected)

    # -- service --

    def startService(self) -> None:
        super().startService()
        for server in list(self.servers.values()):
            server.start_connecting(self._connector(server, self.deadlines, self.timer), self._connected)

    def stopService(self) -> Any:
        for server in self.servers.values():
            server.stop_connecting()
        for _, d in self._waiters:
            d.cancel()
        self._waiters = []
        return super().stopService()

    def _connected(self, server: GridServer) -> None:
        # one server is back: try the others soon too (Tahoe's #374)
        for other in list(self.servers.values()):
            if other is not server and not other.is_connected():
                other.try_to_connect()
        count = len(self.get_connected_servers())
        self._high_water = max(self._high_water, count)
        waiting = []
        for threshold, d in self._waiters:
            if self._high_water >= threshold:
                _reactor.callLater(0, d.callback, None)
            else:
                waiting.append((threshold, d))
        self._waiters = waiting

    def try_to_connect(self) -> None:
        """Cut every waiting server's retry timer short."""
        for server in list(self.servers.values()):
            server.try_to_connect()

    def when_connected_enough(self, threshold: int) -> "defer.Deferred[None]":
        """Fires once at least threshold servers are (or ever were at once) connected."""
        d: defer.Deferred[None] = defer.Deferred()
        if self._high_water >= threshold:
            d.callback(None)
        else:
            self._waiters.append((threshold, d))
        return d

    # -- queries --

    def get_server(self, server_id: bytes) -> GridServer | None:
        return self.servers.get(server_id)

    def get_all_servers(self) -> list[GridServer]:
        """Every known server, connected or not, by server id."""
        return [self.servers[sid] for sid in sorted(self.servers)]

    def get_all_serverids(self) -> frozenset[bytes]:
        return frozenset(self.servers)

    def get_connected_servers(self) -> list[GridServer]:
        return [s for s in self.get_all_servers() if s.is_connected()]

    def get_servers_for_psi(self, storage_index: bytes) -> list[GridServer]:
        """Connected servers in Tahoe's permuted order for storage_index."""
        connected = {s.server_id: s for s in self.get_connected_servers()}
        order = permuted_servers(
            storage_index, ((sid, s.permutation_seed) for sid, s in connected.items()), self._preferred
        )
        return [connected[sid] for sid in order]

    def status(self) -> list[dict[str, Any]]:
        """One GridServer.status() per known server, by server id."""
        return [s.status() for s in self.get_all_servers()]
