"""A test grid in one process: N real StorageServers on real disk (temporary
directories), and a client StorageBroker that reaches them through
LocalStorageClient: the same server code as a storage node, no sockets, no TLS.

Everything runs in the reactor thread (see reactor_thread); tests drive it
synchronously with `grid.call(fn, ...)`. Faults: stop or restart a server
(its connection drops; the server aborts unclosed writers), disconnect or hang
it, make it lie (its readers flip one bit), corrupt or delete share files on
disk, or fill it (max_space).
"""

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer

from shoal.crypto.ed25519 import SigningKey
from shoal.encoding.base32 import b2a
from shoal.grid.storage_broker import GridServer, StorageBroker
from shoal.grid.storage_client import Deadlines, SlotWrite, WriteSecrets
from shoal.introducer.files import StaticServer
from shoal.protocol.announcement import storage_announcement
from shoal.storage.server import StorageServer
from shoal.testing import reactor_thread
from shoal.testing.local_storage import LocalConnection, ReaderFilter

PUT_CHUNK = 1_000_000  # bytes per write when a test stores whole shares (as Tahoe 1.20's uploader)


def flip_bit_at(flip_at: int) -> ReaderFilter:
    """A lying server's reads: one bit flipped at share offset `flip_at`."""

    def lie(offset: int, data: bytes) -> bytes:
        if offset <= flip_at < offset + len(data):
            out = bytearray(data)
            out[flip_at - offset] ^= 0x01
            return bytes(out)
        return data

    return lie


class LocalServer:
    """One storage server of the grid: its directory, its StorageServer while running."""

    def __init__(self, base: str, index: int, max_space: int | None = None, lie: ReaderFilter | None = None) -> None:
        self.index = index
        self.base = base
        self.max_space = max_space
        self.key = SigningKey.generate()
        self.server_id = self.key.verifying_key().server_id()
        self.tubid = os.urandom(20)  # its lease and write-enabler seed
        self.furl = f"pb://{b2a(self.tubid)}@tcp:127.0.0.1:1/storage"  # announced, never dialled
        self.storage: StorageServer | None = None
        self.lie = lie
        self.connections: list[LocalConnection] = []

    @property
    def storage_dir(self) -> str:
        return os.path.join(self.base, "storage")

    def start(self) -> None:
        if self.storage is None:
            self.storage = StorageServer(self.storage_dir, self.tubid, max_space=self.max_space)
        for c in self.connections:
            c.connect()

    def stop(self) -> None:
        for c in self.connections:
            c.disconnect()
        if self.storage is not None:
            self.storage.shutdown()
            self.storage = None

    def connection(self, clock: Any, deadlines: Deadlines) -> LocalConnection:
        conn = LocalConnection(lambda: self.storage, self.name, clock, deadlines)
        conn.set_reader_filter(self.lie)
        self.connections.append(conn)
        return conn

    @property
    def name(self) -> str:
        return self.server_id[3:11].decode("ascii")

    def announcement(self) -> dict[str, Any]:
        ann = storage_announcement(self.furl, b2a(self.key.verifying_key().raw()))
        ann["nickname"] = f"mem{self.index}"
        return ann

    def share_files(self) -> list[str]:
        out = []
        shares = os.path.join(self.storage_dir, "shares")
        for root, dirs, files in os.walk(shares):
            dirs[:] = [d for d in dirs if d != "incoming"]
            out += [os.path.join(root, f) for f in files if f.isdigit()]
        return sorted(out)


class LocalGrid:
    """`LocalGrid(n)`; use as a context manager or call close()."""

    def __init__(
        self,
        num_servers: int,
        lying: dict[int, int] | None = None,
        max_space: dict[int, int] | None = None,
        *,
        clock: Any = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        """lying: server index -> offset whose bit its readers flip; max_space:
        server index -> bytes it may hold; clock: what deadlines are measured on
        (the reactor unless a test passes a task.Clock)."""
        self.base = tempfile.mkdtemp(prefix="shoal-localgrid-")
        lying = lying or {}
        self.servers: list[LocalServer] = []
        for i in range(num_servers):
            d = os.path.join(self.base, f"server{i}")
            os.makedirs(d)
            lie = flip_bit_at(lying[i]) if i in lying else None
            self.servers.append(LocalServer(d, i, (max_space or {}).get(i), lie))
        self._by_id = {s.server_id: s for s in self.servers}
        self.clock = clock if clock is not None else reactor_thread.reactor
        self.broker: StorageBroker = StorageBroker(self._connect, deadlines=deadlines or Deadlines(), timer=self.clock)
        self.call(self._start)
        self.wait_connected(num_servers)

    def _connect(self, server: GridServer, deadlines: Deadlines, timer: Any) -> LocalConnection:
        return self._by_id[server.server_id].connection(timer, deadlines)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return reactor_thread.call(fn, *args, **kwargs)

    def _start(self) -> None:
        for s in self.servers:
            s.start()
        self.broker.set_static_servers([StaticServer(s.server_id, s.announcement()) for s in self.servers])
        self.broker.startService()

    def wait_connected(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            n = self.call(lambda: len(self.broker.get_connected_servers()))
            if n >= count:
                return
            time.sleep(0.001)
        raise TimeoutError(f"only {n} of {count} servers connected")

    def server_for(self, i: int) -> GridServer:
        """The broker's GridServer for server i."""
        return self.broker.servers[self.servers[i].server_id]

    def put_shares(
        self, storage_index: bytes, shares: Mapping[int, bytes], placement: Mapping[int, int] | None = None
    ) -> None:
        """Store whole share data through the storage protocol: share shnum goes to
        server placement[shnum] (default: server shnum modulo the grid size)."""

        async def put(shnum: int, data: bytes) -> None:
            index = placement[shnum] if placement is not None else shnum % len(self.servers)
            client = self.server_for(index).storage
            assert client is not None
            secret = b"%032d" % shnum
            allocation = await client.allocate_buckets(storage_index, secret, secret, frozenset({shnum}), len(data))
            writer = allocation.writers[shnum]
            for pos in range(0, len(data), PUT_CHUNK):
                await writer.write(pos, data[pos : pos + PUT_CHUNK])
            await writer.close()

        def run() -> Any:
            return defer.gatherResults(
                [defer.ensureDeferred(put(sh, d)) for sh, d in shares.items()], consumeErrors=True
            )

        self.call(run)

    def write_slot(self, i: int, storage_index: bytes, secrets: WriteSecrets, writes: Mapping[int, SlotWrite]) -> bool:
        """A test-and-set write straight to server i (for setting up mutable cases)."""
        client = self.server_for(i).storage
        assert client is not None
        result = self.call(lambda: client.slot_testv_and_readv_and_writev(storage_index, secrets, writes, []))
        return bool(result.success)

    def stop_server(self, i: int) -> None:
        self.call(self.servers[i].stop)

    def restart_server(self, i: int) -> None:
        self.call(self.servers[i].start)

    def disconnect(self, i: int) -> None:
        """Drop the client's connection to server i (the server keeps running)."""
        def drop() -> None:
            for c in self.servers[i].connections:
                c.disconnect()

        self.call(drop)

    def hang(self, i: int, hung: bool = True, methods: frozenset[str] | None = None) -> None:
        """Server i stops answering (calls meet their deadlines) or resumes;
        with `methods`, only calls of those names."""

        def hang() -> None:
            for c in self.servers[i].connections:
                c.hang(hung, methods)

        self.call(hang)

    def slow(self, i: int, seconds: float, methods: frozenset[str] = frozenset({"write", "close", "abort"})) -> None:
        """Server i behind a slow link: each of its calls named in `methods` (by
        default a bucket's writes, close and abort) takes `seconds`, one after another."""

        def slow() -> None:
            for c in self.servers[i].connections:
                c.slow(seconds, methods)

        self.call(slow)

    def set_lying(self, i: int, reads: ReaderFilter | None = None, slots: ReaderFilter | None = None) -> None:
        """Server i's bucket reads pass through `reads`, its slot reads through `slots`
        (None: the truth)."""
        self.servers[i].lie = reads

        def lie() -> None:
            for c in self.servers[i].connections:
                c.set_reader_filter(reads, slots)

        self.call(lie)

    def add_servers(self, count: int) -> None:
        """Start `count` more storage servers and tell the broker about them."""
        new = []
        for i in range(len(self.servers), len(self.servers) + count):
            d = os.path.join(self.base, f"server{i}")
            os.makedirs(d)
            new.append(LocalServer(d, i))
        self.servers.extend(new)
        self._by_id.update((s.server_id, s) for s in new)

        def start() -> None:
            for s in new:
                s.start()
            self.broker.set_static_servers([StaticServer(s.server_id, s.announcement()) for s in new])

        self.call(start)
        self.wait_connected(len(self.servers))

    def close(self) -> None:
        def _stop() -> Any:
            d = defer.maybeDeferred(self.broker.stopService)
            for s in self.servers:
                s.stop()
            return d

        self.call(_stop)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "LocalGrid":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
