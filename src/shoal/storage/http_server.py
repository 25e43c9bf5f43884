"""HTTP adapter for the storage server: Tahoe-LAFS 1.20's HTTP storage protocol over twisted.web.

Each request is routed, authorized (swissnum, then the endpoint's secrets),
size-capped and schema-checked at the edge (shoal.protocol.http_*), then
handled by calling one StorageServer method and encoding its answer. The
behaviour is Tahoe 1.20's storage/http_server.py; where shoal does better
for a client's mistake, docs/storage.md says so:

- an upload chunk past the allocated size is 416 before its body is read
  (Tahoe: 500 from an assertion), a body shorter or longer than its
  Content-Range is 400 (Tahoe: 500);
- a client that does not accept CBOR learns it (406) before any work;
- no space or a read-only server refusing a write is 507 (Tahoe: 500).

Work that can take long runs off the reactor thread: decoding a large
read-test-write body in shoal.cpu's pool; mutable writes, lease changes,
corruption advisories (which hash the share) and upload chunks in a thread.
Share data streams through shoal.storage.http_streams. Secrets are never
logged or echoed.
"""

import collections
import logging
from collections.abc import Awaitable, Callable
from typing import IO, Any, TypeVar

from twisted.internet import defer, threads
from twisted.internet import reactor as _reactor
from twisted.internet.task import deferLater
from twisted.web import resource, server

from shoal import cpu
from shoal.errors import CallerError, ConflictError, NotFoundError, NotWritableError, TooLargeError
from shoal.protocol import http_bodies as bodies
from shoal.protocol import http_storage as hs
from shoal.protocol.http_errors import (
    BAD_REQUEST,
    CONFLICT,
    CREATED,
    INSUFFICIENT_STORAGE,
    INTERNAL_SERVER_ERROR,
    NO_CONTENT,
    NOT_ACCEPTABLE,
    NOT_ALLOWED,
    NOT_FOUND,
    OK,
    RANGE_NOT_SATISFIABLE,
    TOO_LARGE,
    UNAUTHORIZED,
    HttpRequestError,
)
from shoal.protocol.http_ranges import (
    ByteRange,
    parse_content_range,
)
from shoal.protocol.http_storage import Endpoint, Route, Secret
from shoal.protocol.version import ServerVersion
from shoal.storage.errors import (
    BucketClosedError,
    NoSpaceError,
    ReadOnlyError,
    ShareNotFoundError,
    StorageError,
)
from shoal.storage.http_request import CappedRequest, CappedSite
from shoal.storage.http_sinks import InFlightSinks, UploadSink, transport_pauser
from shoal.storage.http_streams import answer_range, finish_chunk, stream_share
from shoal.storage.http_uploads import UploadsInProgress
from shoal.storage.server import StorageServer

log = logging.getLogger(__name__)
reactor: Any = _reactor
T = TypeVar("T")

MAX_UPLOAD_CHUNK = 2**30  # the largest PATCH body (Tahoe's client sends 1 MB chunks)
CBOR_ANSWERS = frozenset({
    Endpoint.VERSION, Endpoint.IMMUTABLE_ALLOCATE, Endpoint.IMMUTABLE_WRITE, Endpoint.IMMUTABLE_LIST,
    Endpoint.MUTABLE_READ_TEST_WRITE, Endpoint.MUTABLE_LIST,
})
SHARE_DATA_ANSWERS = frozenset({Endpoint.IMMUTABLE_READ, Endpoint.MUTABLE_READ})
_TEXT = b"text/plain; charset=utf-8"
INLINE_DECODE = 64 * 1024
IGNORED_BODY = 8192
IDLE_CONNECTION_TIMEOUT = 600  # seconds an HTTP connection may stay silent (twisted's default: 12 hours)  # bodies up to this size are decoded on the reactor thread

Runner = Callable[..., "defer.Deferred[Any]"]


def status_for(error: StorageError) -> int:
    """The HTTP status of a StorageServer refusal, from its kind of fault."""
    if isinstance(error, BucketClosedError):
        return NOT_FOUND  # the upload ended (aborted, idle, finished) under this request
    if isinstance(error, (NoSpaceError, ReadOnlyError)):
        return INSUFFICIENT_STORAGE
    if isinstance(error, (NotFoundError, ShareNotFoundError)):
        return NOT_FOUND
    if isinstance(error, ConflictError):
        return CONFLICT
    if isinstance(error, NotWritableError):
        return UNAUTHORIZED  # a wrong write enabler (Tahoe: 401)
    if isinstance(error, TooLargeError):
        return TOO_LARGE
    if isinstance(error, CallerError):
        return BAD_REQUEST
    return INTERNAL_SERVER_ERROR


async def _next_turn() -> None:
    await deferLater(reactor, 0, lambda: None)


class HttpStorageServer:
    """The HTTP storage service of one StorageServer, authorized by ``swissnum``."""

    def __init__(self, storage: StorageServer, swissnum: bytes, *,
                 max_read_test_write_body: int = bodies.MAX_READ_TEST_WRITE_BODY,
                 in_thread: Runner = threads.deferToThread, in_cpu_pool: Runner = cpu.run,
                 next_turn: Callable[[], Awaitable[None]] = _next_turn) -> None:
        if not isinstance(swissnum, bytes) or not swissnum:
            raise ValueError("swissnum must be non-empty bytes")
        self._storage = storage
        self._swissnum = swissnum
        self._max_rtw = max_read_test_write_body
        self._in_thread = in_thread
        self._in_cpu_pool = in_cpu_pool
        self._next_turn = next_turn
        self.uploads = UploadsInProgress()
        self.sinks = InFlightSinks()
        self.requests: collections.Counter[str] = collections.Counter()
        self._handlers: dict[Endpoint, Callable[[CappedRequest, Route, dict[Secret, bytes]], Awaitable[None]]] = {
            Endpoint.VERSION: self._version,
            Endpoint.IMMUTABLE_ALLOCATE: self._allocate,
            Endpoint.IMMUTABLE_WRITE: self._write,
            Endpoint.IMMUTABLE_ABORT: self._abort,
            Endpoint.IMMUTABLE_LIST: self._list_immutable,
            Endpoint.IMMUTABLE_READ: self._read_immutable,
            Endpoint.IMMUTABLE_CORRUPT: self._corrupt_immutable,
            Endpoint.MUTABLE_READ_TEST_WRITE: self._read_test_write,
            Endpoint.MUTABLE_LIST: self._list_mutable,
            Endpoint.MUTABLE_READ: self._read_mutable,
            Endpoint.MUTABLE_CORRUPT: self._corrupt_mutable,
            Endpoint.LEASE: self._lease,
        }

    # -- serving -----------------------------------------------------------------

    def resource(self) -> resource.Resource:
        return _StorageResource(self)

    def site(self) -> CappedSite:
        """A twisted.web Site serving only this protocol (wrap it in TLS to listen)."""
        return _QuietSite(self.resource(), self.body_limit, open_sink=self.open_sink, sink_closed=self.sinks.ended,
                          timeout=IDLE_CONNECTION_TIMEOUT)

    def body_limit(self, method: bytes, path: bytes) -> int:
        """How many body bytes the endpoint at ``method path`` takes (stored before it is handled)."""
        try:
            endpoint = hs.route(method, path).endpoint
        except HttpRequestError:
            return 0
        if endpoint is Endpoint.IMMUTABLE_ALLOCATE:
            return bodies.MAX_ALLOCATE_BODY
        if endpoint in (Endpoint.IMMUTABLE_CORRUPT, Endpoint.MUTABLE_CORRUPT):
            return bodies.MAX_CORRUPT_BODY
        if endpoint is Endpoint.MUTABLE_READ_TEST_WRITE:
            return self._max_rtw
        if endpoint is Endpoint.IMMUTABLE_WRITE:
            return MAX_UPLOAD_CHUNK
        return IGNORED_BODY  # endpoints that read no body: a small one is ignored, as Tahoe ignores it

    def stats(self) -> dict[str, int]:
        """Request counts for the node's statistics (``storage_server.http.*``)."""
        result = {"storage_server.http.requests": sum(self.requests.values()),
                  "storage_server.http.uploads_in_progress": len(self.uploads)}
        for name, count in sorted(self.requests.items()):
            result[f"storage_server.http.{name.replace('-', '_')}"] = count
        return result

    def _check_headers(self, request: CappedRequest, route: Route) -> dict[Secret, bytes]:
        """The request's secrets, once its Authorization, secrets and Accept headers pass."""
        headers = request.requestHeaders
        hs.check_authorization(headers.getRawHeaders(hs.AUTHORIZATION), self._swissnum)
        secrets = hs.parse_secrets(headers.getRawHeaders(hs.SECRETS_HEADER), route.endpoint.secrets)
        if route.endpoint in CBOR_ANSWERS and not hs.accepts_cbor(headers.getRawHeaders(hs.ACCEPT)):
            raise HttpRequestError(NOT_ACCEPTABLE, "this server answers in application/cbor only")
        return secrets

    def open_sink(self, request: CappedRequest, length: int | None) -> UploadSink | None:
        """For an upload chunk whose headers just arrived: the sink its body goes into.

        None for any other request, and for a chunk refused from its headers
        (the refusal is kept on the request and answered after the body).
        """
        target = request.pending_target()
        try:
            route = hs.route(*target) if target is not None else None
        except HttpRequestError:
            return None
        if route is None or route.endpoint is not Endpoint.IMMUTABLE_WRITE:
            return None
        try:
            secrets = self._check_headers(request, route)
            chunk = parse_content_range(request.getHeader(hs.CONTENT_RANGE)).range
            writer = self.uploads.get(_si(route), _shnum(route), secrets[Secret.UPLOAD])
            if chunk.end > writer.allocated_size:
                raise HttpRequestError(
                    RANGE_NOT_SATISFIABLE,
                    f"Content-Range ends at {chunk.end}, past the allocated size {writer.allocated_size}",
                )
            if length is not None and length != chunk.length:
                raise HttpRequestError(BAD_REQUEST, f"body of {length} bytes for a Content-Range of {chunk.length}")
        except (HttpRequestError, StorageError) as error:
            request.sink_refusal = error
            return None
        sink = UploadSink(writer.stream(chunk.start, chunk.end), *transport_pauser(request))
        self.sinks.add(sink)
        return sink

    async def handle(self, request: CappedRequest) -> None:
        """Answer one request; every refusal is a status and one line of text."""
        request.defaultContentType = None  # type: ignore[assignment]
        error_type = _TEXT
        try:
            route = hs.route(request.method, request.path)
            if route.endpoint in SHARE_DATA_ANSWERS:
                # Tahoe's client checks a read's Content-Type before its status
                error_type = hs.OCTET_STREAM.encode("ascii")
            self.requests[route.endpoint.value[2]] += 1
            secrets = self._check_headers(request, route)
            if request.body_too_large:
                raise HttpRequestError(TOO_LARGE, "request body is larger than this endpoint takes")
            await self._handlers[route.endpoint](request, route, secrets)
        except HttpRequestError as error:
            self._refuse(request, error.status, error.message, error_type)
        except StorageError as error:
            self._refuse(request, status_for(error), str(error), error_type)
        except Exception:
            log.exception("HTTP storage request %s %s failed", request.method, request.path[:80])
            self._refuse(request, INTERNAL_SERVER_ERROR, "internal error", error_type)

    # -- answers -------------------------------------------------------------------

    @staticmethod
    def _finish(request: CappedRequest, status: int, body: bytes, content_type: bytes | None) -> None:
        if request.finished or request._disconnected:
            return
        if request.startedWriting:  # a streamed answer failed half way: all we can do is cut it
            request.channel.transport.abortConnection()  # type: ignore[union-attr]
            return
        request.setResponseCode(status)
        if status >= BAD_REQUEST:
            request.responseHeaders.removeHeader(hs.CONTENT_RANGE)
        if content_type is not None:
            request.setHeader(b"Content-Type", content_type)
        request.setHeader(b"Content-Length", b"%d" % len(body))
        if body:
            request.write(body)
        request.finish()

    def _refuse(self, request: CappedRequest, status: int, message: str, content_type: bytes = b"") -> None:
        self._finish(request, status, message.encode("utf-8"), content_type or _TEXT)

    def _cbor(self, request: CappedRequest, body: bytes, status: int = OK) -> None:
        self._finish(request, status, body, hs.CBOR_MIME_TYPE.encode("ascii"))

    def _empty(self, request: CappedRequest, status: int = OK) -> None:
        self._finish(request, status, b"", None)

    async def _body(self, request: CappedRequest, decode: Callable[[bytes], T]) -> T:
        """The request's CBOR body, decoded and checked (in the CPU pool when large)."""
        hs.check_request_content_type(request.requestHeaders.getRawHeaders(hs.CONTENT_TYPE))
        content = _content(request)
        content.seek(0)
        data = content.read()
        if len(data) <= INLINE_DECODE:
            return decode(data)
        decoded: T = await self._in_cpu_pool(decode, data)
        return decoded

    # -- general --------------------------------------------------------------------

    async def _version(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        version = ServerVersion.parse(self._storage.get_version())
        self._cbor(request, bodies.encode_version(version))

    async def _lease(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        si = _si(route)
        if not self._storage.share_numbers(si):
            raise HttpRequestError(NOT_FOUND, "no shares under this storage index")
        await self._in_thread(
            self._storage.add_lease, si, secrets[Secret.LEASE_RENEW], secrets[Secret.LEASE_CANCEL]
        )
        self._empty(request, NO_CONTENT)

    # -- immutable ------------------------------------------------------------------

    async def _allocate(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        message = await self._body(request, bodies.decode_allocate_request)
        already, writers = self._storage.allocate_buckets(
            _si(route), secrets[Secret.LEASE_RENEW], secrets[Secret.LEASE_CANCEL],
            set(message.share_numbers), message.allocated_size,
        )
        for writer in writers.values():
            self.uploads.add(writer, secrets[Secret.UPLOAD])
        allocated = set(writers)
        for shnum in set(message.share_numbers) - already - allocated:  # the same client, allocating again
            if self.uploads.resumable(_si(route), shnum, secrets[Secret.UPLOAD], message.allocated_size):
                allocated.add(shnum)
        self._cbor(request, bodies.AllocateResponse(already, allocated).encode())

    async def _write(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        if request.sink_refusal is not None:
            raise request.sink_refusal
        sink: UploadSink | None = request.sink
        if sink is None:
            raise HttpRequestError(BAD_REQUEST, "upload chunk without a body")
        try:
            await sink.ready()
            if sink.error is not None:
                raise sink.error
            if sink.received != sink.length:
                raise HttpRequestError(BAD_REQUEST, f"body of {sink.received} bytes for a Content-Range of "
                                                    f"{sink.length}")
            writer = sink.stream.writer
            remaining = await self._in_thread(finish_chunk, self._storage.lock, sink.stream)
        finally:
            sink.abandon()
            self.sinks.ended(sink)
        status = OK
        if not remaining:
            self.uploads.forget(writer)
            status = CREATED
        progress = bodies.UploadProgress(ByteRange(start, end) for start, end in remaining)
        self._cbor(request, progress.encode(), status)

    async def _abort(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        si, shnum = _si(route), _shnum(route)
        try:
            writer = self.uploads.get(si, shnum, secrets[Secret.UPLOAD])
        except HttpRequestError as error:
            if error.status == NOT_FOUND and shnum in self._storage.get_buckets(si):
                raise HttpRequestError(NOT_ALLOWED, f"share {shnum} is finished: nothing to abort") from None
            raise
        writer.abort()
        self.uploads.forget(writer)
        self._empty(request)

    async def _list_immutable(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        self._cbor(request, bodies.encode_share_numbers(self._storage.get_buckets(_si(route))))

    async def _read_immutable(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        reader = self._storage.get_buckets(_si(route)).get(_shnum(route))
        if reader is None:
            raise HttpRequestError(NOT_FOUND, f"no immutable share {route.share_number}")
        await self._stream(request, reader.read, reader.get_length())

    async def _corrupt_immutable(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        await self._advise(request, route, b"immutable", set(self._storage.get_buckets(_si(route))))

    async def _advise(self, request: CappedRequest, route: Route, share_type: bytes, held: set[int]) -> None:
        """Record a corruption advisory about a share this server holds (404 otherwise), then check it."""
        si, shnum = _si(route), _shnum(route)
        if shnum not in held:
            raise HttpRequestError(NOT_FOUND, f"no {share_type.decode()} share {shnum}")
        advice = await self._body(request, bodies.decode_corruption_advice)
        await self._in_thread(self._storage.advise_corrupt_share, share_type, si, shnum,
                              advice.reason.encode("utf-8"))
        self._empty(request)

    # -- mutable --------------------------------------------------------------------

    async def _read_test_write(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        message = await self._body(
            request, lambda data: bodies.decode_read_test_write_request(data, self._max_rtw)
        )
        vectors = {
            shnum: (
                [(t.offset, t.size, b"eq", t.specimen) for t in v.tests],
                [(w.offset, w.data) for w in v.writes],
                v.new_length,
            )
            for shnum, v in message.test_write_vectors
        }
        success, data = await self._in_thread(
            self._storage.slot_testv_and_readv_and_writev,
            _si(route),
            (secrets[Secret.WRITE_ENABLER], secrets[Secret.LEASE_RENEW], secrets[Secret.LEASE_CANCEL]),
            vectors,
            [(r.offset, r.size) for r in message.read_vector],
        )
        self._cbor(request, bodies.ReadTestWriteResponse(success, data).encode())

    async def _list_mutable(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        self._cbor(request, bodies.encode_share_numbers(self._storage.share_numbers(_si(route))))

    async def _read_mutable(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        si, shnum = _si(route), _shnum(route)
        length = self._storage.mutable_share_length(si, shnum)
        if length is None:
            raise HttpRequestError(NOT_FOUND, f"no mutable share {shnum}")

        def read(offset: int, size: int) -> bytes:
            found = self._storage.slot_readv(si, [shnum], [(offset, size)])
            if shnum not in found:
                raise ShareNotFoundError(f"mutable share {shnum} went away during a read")
            return found[shnum][0]

        await self._stream(request, read, length)

    async def _corrupt_mutable(self, request: CappedRequest, route: Route, secrets: dict[Secret, bytes]) -> None:
        await self._advise(request, route, b"mutable", self._storage.share_numbers(_si(route)))

    # -- streaming share data ----------------------------------------------------------

    async def _stream(self, request: CappedRequest, read: Callable[[int, int], bytes], length: int) -> None:
        """Answer with the share data the Range header asks for (all of it without one)."""
        span = answer_range(request, length)
        if span is None and request.code == NO_CONTENT:
            self._empty(request, NO_CONTENT)
            return
        await stream_share(request, read, span, self._next_turn)

def _content(request: CappedRequest) -> IO[bytes]:
    content = request.content
    if content is None:
        raise HttpRequestError(BAD_REQUEST, "request has no body")
    return content  # type: ignore[no-any-return]


def _si(route: Route) -> bytes:
    assert route.storage_index is not None
    return route.storage_index


def _shnum(route: Route) -> int:
    assert route.share_number is not None
    return route.share_number


class _StorageResource(resource.Resource):
    isLeaf = True

    def __init__(self, adapter: HttpStorageServer) -> None:
        super().__init__()
        self._adapter = adapter

    def render(self, request: server.Request) -> int:
        if not isinstance(request, CappedRequest):
            request.setResponseCode(INTERNAL_SERVER_ERROR)
            return b"requests must come through CappedSite"  # type: ignore[return-value]
        defer.ensureDeferred(self._adapter.handle(request))
        return server.NOT_DONE_YET  # type: ignore[no-any-return]


class _QuietSite(CappedSite):
    """No access log: the storage protocol's paths name storage indexes, and Tahoe logs none."""

    def log(self, request: Any) -> None:
        pass
