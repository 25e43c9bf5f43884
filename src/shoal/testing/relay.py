"""The userspace links of the namespace grid: a delaying, "lossy", partitionable TCP relay.

One asyncio loop on its own thread, moved into the hub namespace (setns on
that thread only), accepts connections on the relay addresses and forwards
each to the host it stands for. Every chunk waits the one-way delay of the
link model (netlinks.chunk_delay) without stopping the next chunk, so a
link keeps its throughput; chunks of one direction stay in order. While a
partition separates the two ends, both directions stop moving (a black
hole: nothing is refused or reset), and they resume on heal. Link settings
and partitions may change at any time from any thread.

Forwards from 127.0.0.1 in the test's own namespace to 127.0.0.1 in a
host's (for a client's web API: the user's program runs beside the client,
so this path crosses no link) use a listening socket made by the calling
thread and upstream sockets made by a thread that entered the host's
namespace; sockets stay in the namespace they were made in.
"""

import asyncio
import ctypes
import os
import random
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from shoal.testing.netlinks import Link, Partition, chunk_delay, host_of_node_ip, node_ip

CLONE_NEWNET = 0x40000000
CHUNK = 64 * 1024
QUEUED_CHUNKS = 256  # per direction: at most 16 MiB in flight inside the relay


def enter_netns(name: str) -> None:
    """Move the calling thread (only) into the named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Relay:
    """Relays for every host of one grid, on a loop thread inside the hub namespace."""

    def __init__(self, hub_namespace: str, seed: int = 0) -> None:
        self.links: dict[int, Link] = {}
        self.partition = Partition()
        self._rng = random.Random(seed)
        self._changed: asyncio.Event | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[asyncio.Future[None]] = set()
        self._ns_threads: dict[str, ThreadPoolExecutor] = {}
        self.loop = asyncio.new_event_loop()
        started: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(hub_namespace, started),
                                        name=f"relay-{hub_namespace}", daemon=True)
        self._thread.start()
        started.result(timeout=30)

    def _run(self, hub_namespace: str, started: "Future[None]") -> None:
        try:
            enter_netns(hub_namespace)
        except OSError as e:
            started.set_exception(e)
            return
        asyncio.set_event_loop(self.loop)
        self._changed = asyncio.Event()
        started.set_result(None)
        self.loop.run_forever()

    def _call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    # -- settings (any thread) -----------------------------------------------------

    def set_link(self, host: int, link: Link) -> None:
        self._call(lambda: self._update(lambda: self.links.__setitem__(host, link)))

    def set_partition(self, partition: Partition) -> None:
        self._call(lambda: self._update(lambda: setattr(self, "partition", partition)))

    def _update(self, change: Callable[[], Any]) -> None:
        change()
        assert self._changed is not None
        old, self._changed = self._changed, asyncio.Event()
        old.set()  # wakes every pipe waiting for a partition to heal

    # -- listeners -------------------------------------------------------------------

    def listen(self, host: int, address: str, port: int) -> None:
        """Relay connections to address:port (a relay address, in the hub) to host's node_ip:port."""

        async def start() -> None:
            server = await asyncio.start_server(
                lambda r, w: self._accepted(r, w, host, port), address, port, reuse_address=True)
            self._servers.append(server)

        self._call(start)

    def forward_local(self, namespace: str, port: int) -> int:
        """A 127.0.0.1 port in the caller's namespace forwarding, without delay or link, to
        127.0.0.1:port inside `namespace`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        local_port = sock.getsockname()[1]
        if namespace not in self._ns_threads:
            self._ns_threads[namespace] = ThreadPoolExecutor(1, initializer=enter_netns, initargs=(namespace,))
        pool = self._ns_threads[namespace]

        def connect() -> socket.socket:
            return socket.create_connection(("127.0.0.1", port), timeout=10)

        async def accepted(down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
            up_w = None
            try:
                up = await asyncio.get_running_loop().run_in_executor(pool, connect)
                up.settimeout(None)
                up_r, up_w = await asyncio.open_connection(sock=up)
                await asyncio.gather(self._pipe(down_r, up_w, None, None), self._pipe(up_r, down_w, None, None))
            except OSError:
                pass
            finally:
                for w in (down_w, up_w):
                    if w is not None:
                        w.close()

        def track(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(accepted(r, w))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

        async def start() -> None:
            self._servers.append(await asyncio.start_server(track, sock=sock))

        self._call(start)
        return local_port

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        if self._thread.is_alive():
            try:
                self._call(stop)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()
        for pool in self._ns_threads.values():
            pool.shutdown(wait=False)

    # -- connections (loop thread) ---------------------------------------------------

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: int, port: int) -> None:
        peer = writer.get_extra_info("peername")
        source = host_of_node_ip(peer[0]) if peer else None
        task = asyncio.ensure_future(self._connection(reader, writer, source, host, port))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _connection(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter,
                          source: int | None, host: int, port: int) -> None:
        up_w = None
        try:
            await self._until_allowed(source, host)
            up_r, up_w = await asyncio.open_connection(node_ip(host), port)
            pipes = [asyncio.ensure_future(self._pipe(down_r, up_w, source, host)),
                     asyncio.ensure_future(self._pipe(up_r, down_w, host, source))]
            try:
                done, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
                for p in pending:
                    if any(d.exception() for d in done):
                        p.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
            finally:
                for p in pipes:
                    p.cancel()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the far end is unreachable or went away: so does this connection
        finally:
            for w in (down_w, up_w):
                if w is not None:
                    w.close()

    async def _until_allowed(self, a: int | None, b: int | None) -> None:
        while not self.partition.allows(a, b):
            assert self._changed is not None
            await self._changed.wait()

    def _delay(self, a: int | None, b: int | None) -> float:
        none = Link()
        la = self.links.get(a, none) if a is not None else none
        lb = self.links.get(b, none) if b is not None else none
        return chunk_delay(la, lb, self._rng)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    a: int | None, b: int | None) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED_CHUNKS)
        loop = asyncio.get_running_loop()

        async def read() -> None:
            last = 0.0
            while True:
                data = await reader.read(CHUNK)
                await self._until_allowed(a, b)
                last = max(last, loop.time() + self._delay(a, b))
                await queue.put((last, data))
                if not data:
                    return

        async def write() -> None:
            while True:
                at, data = await queue.get()
                wait = at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._until_allowed(a, b)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        reading, writing = asyncio.ensure_future(read()), asyncio.ensure_future(write())
        try:
            await asyncio.gather(reading, writing)
        finally:
            reading.cancel()
            writing.cancel()
