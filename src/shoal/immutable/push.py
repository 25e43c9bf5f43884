"""The push pipeline of an immutable upload: encrypt, encode, write every share in parallel.

Each segment is one job in the CPU pool: read and encrypt it (the encoder's
`encrypt_segment` must see segments in order, so a job first waits for the
previous segment's encryption), then erasure-code it (`encode_segment`, any
order, any thread). The reactor only submits jobs while the budget allows
and never waits for one, so the coding of segment s overlaps the encryption
of s+1 and both cores work. Encoded segments are handed over in order to one
`_Bucket` per share, which coalesces its header, blocks and finally its
trailer into writes of about `write_size` bytes and sends each write as soon
as it is full; writes to the same bucket do not wait for each other.

Memory is bounded by a byte budget over the expanded data (n blocks per
segment) reserved before a segment is read and released when the write
carrying a block is acknowledged (or its share is dropped): whatever the
file size, at most `window` bytes of blocks are buffered or in flight, plus
the segments being encrypted or coded.

Writes go through each share's BucketWriter (shoal.grid.storage_client:
deadlines and errors are the storage client's). A write or close that fails
drops that share (the server is assumed gone, its writers aborted); `on_drop`
tells the caller (shoal.immutable.share_upload), which decides whether the
upload goes on. `write_all` and `close_all` are the two halves of `run`, so
a caller can push more shares before anything is closed. Everything here
runs on the reactor thread except the functions handed to the CPU pool.

**Stragglers.** Given a `LagRule` and a `spare(server, shnum)` predicate, a
push watches every write (shoal.placement.straggler): a share whose writes
lag far behind the median share's (a server behind a slow uplink) is given
up, if `spare` says happiness holds without it, so the upload does not wait
for it: its batch and its writes in flight stop counting against the budget
and `write_all` no longer waits for them, its writer is aborted in the
background (not awaited: on a slow link the abort queues behind the writes)
and `on_drop` reports it like any lost share. Only while writing: a share
is never given up once closing has begun. The shares' contents, and so the
cap, are the same whether or not one was given up.
"""

import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, BinaryIO, TypeVar

import attrs
from twisted.internet import defer
from twisted.internet import reactor as _global_reactor

from shoal import cpu
from shoal.errors import Fault, ShoalError
from shoal.grid.storage_client import BucketWriter, ServerError, ServerFull
from shoal.immutable.encoder import EncodedSegment, EncodeResult, ImmutableEncoder
from shoal.placement.straggler import Lag, LagRule, StragglerWatch

MiB = 1024 * 1024
WRITE_SIZE = MiB  # bytes per remote write (Tahoe 1.20 batches 1 MB)
MIN_WRITE_SIZE = 64 * 1024
MAX_BATCHED = 16 * MiB  # all shares' write batches together (caps the write size for large n)
PIPELINE_SEGMENTS = 4  # segments of expanded data in flight at least

T = TypeVar("T")


class SourceError(ShoalError):
    """The uploaded stream ended early or could not be read."""

    fault = Fault.CALLER


def read_exactly(source: BinaryIO, length: int, position: int) -> bytes:
    """`length` bytes from the source (short reads retried); SourceError at an early end."""
    data = source.read(length)
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = source.read(length - got)
        if not more:
            raise SourceError(f"the source ended at byte {position + got}, expected {length - got} more")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


async def gather(ds: list["defer.Deferred[Any]"]) -> list[Any]:
    """Wait for all; raise the first failure's own exception (not FirstError)."""
    try:
        return await defer.gatherResults(ds, consumeErrors=True)
    except defer.FirstError as e:
        e.subFailure.raiseException()
        raise  # unreachable


def write_size_for(n: int) -> int:
    return max(MIN_WRITE_SIZE, min(WRITE_SIZE, MAX_BATCHED // n))


class _InFlight:
    """Counts tasks in flight; `idle()` waits until none is (memory stays
    O(tasks in flight), not O(file size))."""

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[defer.Deferred[None]] = []

    def start(self) -> None:
        self.count += 1

    def done(self) -> None:
        self.count -= 1
        if not self.count:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    async def idle(self) -> None:
        if self.count:
            d: defer.Deferred[None] = defer.Deferred()
            self._waiters.append(d)
            await d


class _Bucket:
    """One share being written: its writer, the pending batch, where it has got to."""

    def __init__(self, shnum: int, server: Any, writer: BucketWriter, header: bytes) -> None:
        self.shnum = shnum
        self.server = server  # the caller's key for the server
        self.writer = writer
        self.offset = 0
        self.batch: list[bytes] = [header]
        self.batch_len = len(header)
        self.batch_blocks = 0  # bytes of blocks in the batch (the budget's unit)
        self.alive = True
        self.closed = False
        self.writes = 0  # writes sent so far (the straggler watch numbers them)
        self.inflight: dict[int, int] = {}  # write number -> bytes of blocks it carries, until answered


@attrs.frozen
class PushResult:
    encoded: EncodeResult
    bytes_pushed: int  # acknowledged by servers, dropped shares included
    shares_pushed: dict[int, Any]  # shnum -> server key, for shares closed on their server


class Pusher:
    """Run with `await Pusher(...).run()`; `stop(error)` makes run() abort and raise error."""

    def __init__(
        self,
        encoder: ImmutableEncoder,
        source: BinaryIO,
        position: int,
        writers: Mapping[int, tuple[Any, BucketWriter]],
        on_drop: Callable[[Any, int, str, bool], None],
        *,
        write_size: int | None = None,
        pipeline_segments: int = PIPELINE_SEGMENTS,
        inline: bool = False,
        stragglers: LagRule | None = None,
        spare: Callable[[Any, int], bool] | None = None,
        clock: Any = None,  # an IReactorTime (the global reactor by default)
    ) -> None:
        self.encoder = encoder
        self.shape = encoder.shape
        self.source = source
        self.position = position
        self.on_drop = on_drop
        n = self.shape.n
        self.write_size = write_size or write_size_for(n)
        header = encoder.header
        self.buckets: dict[int, _Bucket] = {
            sh: _Bucket(sh, server, writer, header) for sh, (server, writer) in writers.items()
        }
        expanded = self.shape.block_size * n
        # bytes of blocks buffered or in flight: a few segments, and at least
        # room for every bucket to have one full write in flight while the
        # next one fills (1 MiB segments, 3-of-10: 7 segments, 24.5 MB)
        self.window = max(pipeline_segments * expanded, 2 * self.write_size * n + expanded)
        self.inline = inline  # tiny files: do the CPU work on the calling thread
        self._outstanding = 0
        self._room: defer.Deferred[None] | None = None
        self._ready: dict[int, EncodedSegment] = {}
        self._next = 0
        self._error: BaseException | None = None
        self._turn = threading.Condition()
        self._encrypted = 0  # segments encrypted so far (guarded by _turn)
        self._cpu_error: BaseException | None = None
        self._aborts: list[defer.Deferred[Any]] = []
        self._jobs = _InFlight()  # segments in the CPU pool
        self._writes = _InFlight()  # remote writes not yet answered
        self.bytes_pushed = 0
        self._spare = spare
        self._watch: StragglerWatch[int] | None = (
            StragglerWatch(stragglers, list(self.buckets)) if stragglers is not None and spare is not None else None
        )
        self._clock: Any = clock if clock is not None else _global_reactor
        self._timer: Any = None  # the IDelayedCall of the next look

    # -- CPU step (pool threads) --

    def _segment(self, segnum: int) -> EncodedSegment:
        """Read, encrypt and encode one segment. Encryption is strictly in
        order: a job waits (briefly: the pool starts jobs in order) for the
        previous segment's encryption, then codes in parallel with the next."""
        with self._turn:
            while self._encrypted != segnum:
                self._turn.wait()
            try:
                if self._cpu_error is not None:
                    raise self._cpu_error
                length = self.shape.segment_length(segnum)
                if segnum == 0 and self.source.seekable():
                    self.source.seek(self.position)
                plaintext = read_exactly(self.source, length, self.position)
                self.position += length
                _, crypttext = self.encoder.encrypt_segment(plaintext)
            except BaseException as e:
                self._cpu_error = e
                raise
            finally:
                self._encrypted += 1
                self._turn.notify_all()
        return self.encoder.encode_segment(segnum, crypttext)

    async def _cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.inline:
            return fn(*args)
        return await cpu.run(fn, *args)

    # -- flow control --

    def _release(self, nbytes: int) -> None:
        self._outstanding -= nbytes
        self._wake()

    def _wake(self) -> None:
        if self._room is not None:
            d, self._room = self._room, None
            d.callback(None)

    async def _reserve(self, nbytes: int) -> None:
        while self._error is None and self._outstanding and self._outstanding + nbytes > self.window:
            self._room = defer.Deferred()
            await self._room
        self._outstanding += nbytes

    def stop(self, error: BaseException) -> None:
        """Stop producing; run() will abort every bucket and raise `error`."""
        if self._error is None:
            self._error = error
        self._wake()

    # -- buckets --

    def _lose(self, bucket: _Bucket, why: str, full: bool = False) -> None:
        if not bucket.alive:
            return
        bucket.alive = False
        if self._watch is not None:
            self._watch.remove(bucket.shnum)
        bucket.batch = []
        self._release(bucket.batch_blocks)
        bucket.batch_blocks = 0
        bucket.batch_len = 0
        self._abort(bucket)
        self.on_drop(bucket.server, bucket.shnum, why, full)

    def _abort(self, bucket: _Bucket) -> None:
        d = bucket.writer.abort()
        d.addErrback(lambda _f: None)  # the server may be gone; it discards the share then
        self._aborts.append(d)

    def _flush(self, bucket: _Bucket) -> None:
        if not bucket.batch_len:
            return
        data = bucket.batch[0] if len(bucket.batch) == 1 else b"".join(bucket.batch)
        blocks = bucket.batch_blocks
        offset = bucket.offset
        bucket.batch, bucket.batch_len, bucket.batch_blocks = [], 0, 0
        bucket.offset += len(data)
        number = bucket.writes
        bucket.writes += 1
        bucket.inflight[number] = blocks
        if self._watch is not None:
            self._watch.sent(bucket.shnum, number, self._clock.seconds())
        self._writes.start()
        defer.ensureDeferred(self._write(bucket, number, offset, data))

    async def _write(self, bucket: _Bucket, number: int, offset: int, data: bytes) -> None:
        answered = False
        try:
            await bucket.writer.write(offset, data)
        except Exception as e:
            self._lose(bucket, f"write of {len(data)} bytes at offset {offset} failed: {error_text(e)}",
                       isinstance(e, ServerFull))
        else:
            self.bytes_pushed += len(data)
            answered = True
            if self._watch is not None:
                self._watch.acked(bucket.shnum, number, self._clock.seconds())
        finally:
            blocks = bucket.inflight.pop(number, None)
            if blocks is not None:  # else the share was given up: already released
                self._release(blocks)
                self._writes.done()
        if answered:
            self._look()

    # -- stragglers --

    def _look(self) -> None:
        """Give up the stragglers that can be spared; arm the timer for the next look."""
        self._timer = None
        watch = self._watch
        if watch is None:
            return
        while True:
            verdict = watch.check(self._clock.seconds())
            for shnum, lag in verdict.stragglers.items():
                if self._watch is None:  # giving one up let the writes end
                    break
                bucket = self.buckets[shnum]
                if bucket.alive and self._spare is not None and self._spare(bucket.server, shnum):
                    self._give_up(bucket, lag)
                else:
                    watch.remove(shnum)  # not to be spared: the upload waits for it
            if not verdict.stragglers or self._watch is None:
                break
        self._cancel_timer()
        if self._watch is not None and verdict.next_check is not None:
            delay = max(0.0, verdict.next_check - self._clock.seconds())
            self._timer = self._clock.callLater(delay, self._look)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _stop_watching(self) -> None:
        self._watch = None
        self._cancel_timer()

    def _give_up(self, bucket: _Bucket, lag: Lag) -> None:
        """Drop a straggler without waiting for its writes or its abort."""
        bucket.alive = False
        if self._watch is not None:
            self._watch.remove(bucket.shnum)
        d = bucket.writer.abort()  # not awaited: on a slow link it waits behind the writes
        d.addErrback(lambda _f: None)
        self.on_drop(
            bucket.server, bucket.shnum,
            f"given up: its writes lagged {lag.lag:.1f} s behind the median server's, "
            f"which took {lag.median_time:.2f} s for write {lag.write}",
            False,
        )
        released = bucket.batch_blocks + sum(bucket.inflight.values())
        pending = len(bucket.inflight)
        bucket.batch, bucket.batch_len, bucket.batch_blocks = [], 0, 0
        bucket.inflight.clear()
        self._release(released)
        for _ in range(pending):
            self._writes.done()

    def _deliver(self) -> None:
        """Hand the encoded segments that are next in order to the buckets."""
        while self._next in self._ready:
            seg = self._ready.pop(self._next)
            self._next += 1
            for shnum, block in enumerate(seg.blocks):
                bucket = self.buckets.get(shnum)
                if bucket is None or not bucket.alive:
                    self._release(len(block))
                    continue
                bucket.batch.append(block)
                bucket.batch_len += len(block)
                bucket.batch_blocks += len(block)
                if bucket.batch_len >= self.write_size:
                    self._flush(bucket)

    async def _code_and_deliver(self, segnum: int) -> None:
        try:
            self._ready[segnum] = await self._cpu(self._segment, segnum)
        except BaseException as e:
            self.stop(e)
        else:
            self._deliver()
        finally:
            self._jobs.done()

    async def _close(self, bucket: _Bucket) -> None:
        if not bucket.alive:
            return
        try:
            await bucket.writer.close()
        except Exception as e:
            self._lose(bucket, f"close failed: {error_text(e)}", isinstance(e, ServerFull))
        else:
            bucket.closed = True

    # -- the whole push --

    async def run(self) -> PushResult:
        """Push every share and close it; on any error abort every unfinished
        bucket (and wait for the servers to confirm) before raising."""
        encoded = await self.write_all()
        shares = await self.close_all()
        return PushResult(encoded=encoded, bytes_pushed=self.bytes_pushed, shares_pushed=shares)

    async def write_all(self) -> EncodeResult:
        """Write every share's header, blocks and trailer and wait for every
        write to be answered; close nothing (a share lost now can still make
        the upload unhappy, and then nothing must have been closed)."""
        try:
            return await self._aborting(self._write_all())
        finally:
            self._stop_watching()

    async def close_all(self) -> dict[int, Any]:
        """Close every share still alive once `write_all` is done: shnum -> server key of those closed."""
        return await self._aborting(self._close_all())

    async def _aborting(self, work: Coroutine[Any, Any, T]) -> T:
        try:
            return await work
        except BaseException:
            for bucket in self.buckets.values():
                if bucket.alive and not bucket.closed:
                    bucket.alive = False
                    self._abort(bucket)
            raise
        finally:
            await defer.DeferredList(self._aborts)

    async def _write_all(self) -> EncodeResult:
        shape = self.shape
        for segnum in range(shape.num_segments):
            await self._reserve(shape.block_length(segnum) * shape.n)
            if self._error is not None:
                break
            self._jobs.start()
            defer.ensureDeferred(self._code_and_deliver(segnum))
        await self._jobs.idle()
        if self._error is not None:
            raise self._error
        encoded: EncodeResult = await self._cpu(self.encoder.finish)
        for bucket in self.buckets.values():
            if bucket.alive:
                trailer = encoded.trailers[bucket.shnum]
                bucket.batch.append(trailer)
                bucket.batch_len += len(trailer)
                self._flush(bucket)
        await self._writes.idle()
        if self._error is not None:
            raise self._error
        return encoded

    async def _close_all(self) -> dict[int, Any]:
        await gather([defer.ensureDeferred(self._close(b)) for b in self.buckets.values()])
        if self._error is not None:
            raise self._error
        return {b.shnum: b.server for b in self.buckets.values() if b.closed}


def error_text(error: BaseException) -> str:
    """One line for an error (its type when it has no message); a server's own
    reason for a ServerError (the caller names the server)."""
    lines = (error.reason if isinstance(error, ServerError) else str(error)).strip().splitlines()
    return lines[0] if lines else type(error).__name__
