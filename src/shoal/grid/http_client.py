"""StorageClient over Tahoe-LAFS 1.20's HTTP storage protocol ("Great Black Swamp").

Every StorageClient method is one or a few requests under /storage/v1 on a
pinned-TLS keep-alive pool to the server (shoal.grid.https_pool), run on the
process's I/O threads with at most a few requests per server at once
(shoal.grid.io_threads), answered on the reactor. What Tahoe 1.20's own client
does, shoal does too:

- allocate_buckets is one POST with a fresh upload secret; a writer's write
  is one PATCH with Content-Range, and the server answers 201 once the share
  is complete, so close() sends nothing: it waits for the writes in flight
  and succeeds if the server said the share was complete.
- a bucket read is one GET with a single Range (206 with Content-Range;
  204 for a read at or past the end); get_buckets lists the shares first.
- slot_readv is one GET per share and read vector, all at once (the list of
  shares first when none are named); a share the server does not have is
  left out of the answer, as over Foolscap.
- add_lease on a storage index the server holds nothing of (404), and
  corruption advisories for unknown shares (404), succeed quietly.
- get_version adds the four features the HTTP specification makes
  mandatory (read overrun tolerated, zero-length writes delete, holes
  filled with zeros, no reads past the end).

There is no canary over HTTP: a server discards a partial upload after its
idle timeout (30 minutes in Tahoe), or when the client aborts it.

Failures are the ServerError family, mapped here and nowhere else: the HTTP
status with the server's own text (its first line) is a ServerRefused
(ServerFull for 507 or a body that says the server is full); no
connection, a dropped one or a certificate that does not match the NURL is
ServerUnreachable; an answer of the wrong shape (bad CBOR, wrong types,
a body over its cap, more bytes than asked) is ServerProtocolError.
"""

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet import reactor as _global_reactor
from twisted.python.failure import Failure

from shoal.grid.https_pool import (
    BadResponse,
    CertificateMismatch,
    HttpsTransportError,
    Request,
    Response,
    ResponseTooLarge,
    ServerPool,
)
from shoal.grid.io_threads import Lane, io_threads
from shoal.grid.storage_client import (
    Allocation,
    BucketReader,
    BucketWriter,
    Deadlines,
    ReadVector,
    ServerError,
    ServerFull,
    ServerProtocolError,
    ServerRefused,
    ServerUnreachable,
    ServerVersion,
    SlotWrite,
    TestWriteResult,
    WriteSecrets,
    check_bytes,
    check_read_answer,
    first_line,
    with_deadline,
)
from shoal.protocol import http_bodies as bodies
from shoal.protocol.http_errors import (
    CREATED,
    INSUFFICIENT_STORAGE,
    NO_CONTENT,
    NOT_ALLOWED,
    NOT_FOUND,
    OK,
    PARTIAL_CONTENT,
    UNAUTHORIZED,
    HttpProtocolError,
)
from shoal.protocol.http_ranges import (
    ByteRange,
    format_content_range,
    format_range,
    parse_content_range,
)
from shoal.protocol.http_storage import (
    CBOR_MIME_TYPE,
    LEASE_SECRET_LENGTH,
    Endpoint,
    Secret,
    authorization_header,
    media_type,
    path_for,
    secret_headers,
)
from shoal.protocol.nurl import spki_hash

__all__ = ["HttpStorageClient", "translate_status", "translate_transport"]

T = TypeVar("T")

CBOR = CBOR_MIME_TYPE.encode("ascii")
MAX_CBOR_ANSWER = bodies.MAX_READ_TEST_WRITE_RESPONSE  # the largest CBOR answer any call takes
MAX_ERROR_TEXT = 10_000  # Tahoe's client reads at most this much of an error's body
_FULL_WORDS = ("no space", "no room", "is full", "insufficient storage")


# -- errors ---------------------------------------------------------------------------


def translate_status(resp: Response, server: str, method: str) -> ServerError:
    """An unexpected HTTP status as a ServerError, keeping the server's text."""
    text = first_line(resp.body[:MAX_ERROR_TEXT].decode("utf-8", "replace"))
    reason = f"HTTP {resp.status}" + (f": {text}" if text else "")
    if resp.status == INSUFFICIENT_STORAGE or any(w in text.lower() for w in _FULL_WORDS):
        return ServerFull(server, method, reason)
    return ServerRefused(server, method, reason)


def translate_transport(failure: Failure, server: str, method: str) -> Failure:
    """A transport failure as a ServerError (ServerErrors and CancelledError pass)."""
    value = failure.value
    if isinstance(value, ServerError | defer.CancelledError):
        return failure
    if isinstance(value, ResponseTooLarge | BadResponse):
        raise ServerProtocolError(server, method, str(value))
    if isinstance(value, CertificateMismatch):
        raise ServerUnreachable(server, method, "the server's TLS certificate does not match its NURL")
    if isinstance(value, HttpsTransportError):
        raise ServerUnreachable(server, method, str(value))
    raise ServerUnreachable(server, method, first_line(f"{type(value).__name__}: {value}"))


def _decoded(decode: Callable[[bytes], T], resp: Response, server: str, method: str) -> T:
    """A CBOR answer decoded and checked by shoal.protocol.http_bodies; ServerProtocolError if it is not one."""
    if media_type([resp.header(b"content-type") or b""]) != CBOR_MIME_TYPE:
        raise ServerProtocolError(server, method, "answered without a CBOR body")
    try:
        return decode(resp.body)
    except HttpProtocolError as e:
        raise ServerProtocolError(server, method, e.message) from None


def _pin_of(der_certificate: bytes) -> bytes:
    return spki_hash(der_certificate).encode("ascii")


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) != LEASE_SECRET_LENGTH:
        raise ValueError(f"secrets are {LEASE_SECRET_LENGTH} bytes")


def _check_offset(offset: int) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset {offset!r:.20} is not a count of bytes")


F = TypeVar("F", bound=Callable[..., "defer.Deferred[Any]"])


def _failing_late(method: F) -> F:
    """A malformed argument fails the returned Deferred (ValueError) instead of raising here."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> "defer.Deferred[Any]":
        try:
            return method(*args, **kwargs)
        except ValueError:
            return defer.fail()

    return wrapper  # type: ignore[return-value]


# -- the client -------------------------------------------------------------------------


class _Http:
    """Requests to one server: headers, deadlines, failures translated."""

    def __init__(
        self, pool: ServerPool, lane: Lane, swissnum: bytes, name: str, clock: Any,
        on_unreachable: Callable[[], None],
    ) -> None:
        self.pool = pool
        self.lane = lane
        self.name = name
        self.clock = clock
        self._auth = authorization_header(swissnum)
        self._on_unreachable = on_unreachable

    def request(
        self,
        method: str,
        seconds: float,
        path: str,
        endpoint: Endpoint,
        *,
        secrets: Mapping[Secret, bytes] | None = None,
        message: bytes | None = None,
        body: Sequence[bytes | memoryview] = (),
        headers: Sequence[tuple[bytes, bytes]] = (),
        max_body: int = MAX_CBOR_ANSWER,
    ) -> "defer.Deferred[Response]":
        """`method` names the StorageClient call (for messages); message is an encoded CBOR body."""
        all_headers = [(b"authorization", self._auth), (b"accept", CBOR), *headers]
        all_headers += [(b"x-tahoe-authorization", value) for value in secret_headers(secrets or {})]
        if message is not None:
            body = [message]
            all_headers.append((b"content-type", CBOR))
        req = Request(endpoint.method.encode("ascii"), path.encode("ascii"), all_headers, body,
                      max(max_body, MAX_ERROR_TEXT))
        d = self.lane.run(lambda flight: self.pool.request(req, flight))
        d.addErrback(self._failed, method)
        return with_deadline(d, seconds, self.clock, self.name, method)

    def _failed(self, failure: Failure, method: str) -> Failure:
        try:
            return translate_transport(failure, self.name, method)
        except ServerUnreachable:
            self._on_unreachable()
            raise

    def expect(self, resp: Response, method: str, *statuses: int) -> Response:
        if resp.status not in statuses:
            raise translate_status(resp, self.name, method)
        return resp


class HttpBucketWriter:
    """An allocated share: PATCHes; complete when the server answers 201."""

    def __init__(self, http: _Http, deadlines: Deadlines, si: bytes, shnum: int, upload_secret: bytes) -> None:
        self._http = http
        self._deadlines = deadlines
        self._si = si
        self._shnum = shnum
        self._secrets = {Secret.UPLOAD: upload_secret}
        self._settling: list[defer.Deferred[None]] = []  # one per write in flight, fired when it ends
        self.complete = False
        self._ended: str | None = None  # "closed" or "aborted": the server forgets the upload

    def _refuse_if_ended(self, method: str) -> None:
        if self._ended is not None:
            raise ServerRefused(self._http.name, method, f"the bucket is already {self._ended}")
        if self.complete and method == "write":  # the server finished the share with the last write
            raise ServerRefused(self._http.name, method, "the bucket is already closed (the share is complete)")

    def write(self, offset: int, data: bytes) -> "defer.Deferred[None]":
        try:
            self._refuse_if_ended("write")
            _check_offset(offset)
        except (ServerRefused, ValueError):
            return defer.fail()
        if not data:  # HTTP cannot carry an empty range; there is nothing to write
            return defer.succeed(None)
        view = memoryview(data)

        def done(resp: Response) -> None:
            self._http.expect(resp, "write", OK, CREATED)
            _decoded(bodies.decode_upload_progress, resp, self._http.name, "write")  # what is left
            if resp.status == CREATED:
                self.complete = True

        d = self._http.request(
            "write", self._deadlines.write, path_for(Endpoint.IMMUTABLE_WRITE, self._si, self._shnum),
            Endpoint.IMMUTABLE_WRITE, secrets=self._secrets, body=[view],
            headers=[(b"content-range", format_content_range(ByteRange(offset, offset + len(view))))],
        ).addCallback(done)
        settled: defer.Deferred[None] = defer.Deferred()
        self._settling.append(settled)

        def ended(result: Any) -> Any:
            self._settling.remove(settled)
            settled.callback(None)
            return result

        return d.addBoth(ended)

    def close(self) -> "defer.Deferred[None]":
        """Nothing to send: the last write completed the share (or it is incomplete: refused)."""

        def check(_: Any) -> None:
            if not self.complete:
                raise ServerRefused(self._http.name, "close", "the server still wants data for this share")
            self._ended = "closed"

        try:
            self._refuse_if_ended("close")
        except ServerRefused:
            return defer.fail()
        return defer.gatherResults(list(self._settling)).addCallback(check)

    def abort(self) -> "defer.Deferred[None]":
        """Drop the partial share; after close or abort there is nothing to abort (as over Foolscap)."""
        if self._ended is not None or self.complete:
            return defer.succeed(None)
        self._ended = "aborted"

        def done(resp: Response) -> None:
            if resp.status in (UNAUTHORIZED, NOT_FOUND, NOT_ALLOWED):  # not (or no longer) ours: nothing to abort
                return
            self._http.expect(resp, "abort", OK)

        return self._http.request(
            "abort", self._deadlines.write, path_for(Endpoint.IMMUTABLE_ABORT, self._si, self._shnum),
            Endpoint.IMMUTABLE_ABORT, secrets=self._secrets,
        ).addCallback(done)


def _read(http: _Http, seconds: float, endpoint: Endpoint, si: bytes, shnum: int, offset: int, length: int,
          method: str) -> "defer.Deferred[bytes | None]":
    """One ranged GET of a share; None when the server has no such share (404)."""
    try:
        _check_offset(offset)
        _check_offset(length)
        path = path_for(endpoint, si, shnum)
    except ValueError:
        return defer.fail()
    if length == 0:
        return defer.succeed(b"")
    wanted = ByteRange(offset, offset + length)

    def done(resp: Response) -> bytes | None:
        if resp.status == NOT_FOUND:
            return None
        if resp.status == NO_CONTENT:  # at or past the end
            return b""
        http.expect(resp, method, PARTIAL_CONTENT)
        try:
            got = parse_content_range(resp.header(b"content-range")).range
        except HttpProtocolError as e:
            raise ServerProtocolError(http.name, method, f"answered a bad Content-Range: {e.message}") from None
        if got.start != offset or got.length != len(resp.body):
            raise ServerProtocolError(http.name, method, "answered a body that does not match the range asked")
        return check_bytes(resp.body, http.name, method, length)

    return http.request(
        method, seconds, path, endpoint, headers=[(b"range", format_range(wanted))], max_body=length,
    ).addCallback(done)


class HttpBucketReader:
    def __init__(self, http: _Http, deadlines: Deadlines, si: bytes, shnum: int) -> None:
        self._http = http
        self._deadlines = deadlines
        self._si = si
        self._shnum = shnum

    def read(self, offset: int, length: int) -> "defer.Deferred[bytes]":
        def present(data: bytes | None) -> bytes:
            if data is None:
                raise ServerRefused(self._http.name, "read", "HTTP 404: the server no longer has this share")
            return data

        d = _read(self._http, self._deadlines.read, Endpoint.IMMUTABLE_READ, self._si, self._shnum, offset, length,
                  "read")
        return d.addCallback(present)

    def advise_corrupt_share(self, reason: bytes) -> "defer.Deferred[None]":
        return _advise(self._http, self._deadlines, Endpoint.IMMUTABLE_CORRUPT, self._si, self._shnum, reason)


def _advise(http: _Http, deadlines: Deadlines, endpoint: Endpoint, si: bytes, shnum: int, reason: bytes,
            ) -> "defer.Deferred[None]":
    def done(resp: Response) -> None:
        if resp.status != NOT_FOUND:  # an unknown share: nothing to say, as over Foolscap
            http.expect(resp, "advise_corrupt_share", OK)

    text = reason.decode("utf-8", "backslashreplace")[: bodies.MAX_REASON_SIZE // 4] or "corrupt"
    return http.request(
        "advise_corrupt_share", deadlines.advise, path_for(endpoint, si, shnum), endpoint,
        message=bodies.CorruptionAdvice(text).encode(),
    ).addCallback(done)


class HttpStorageClient:
    """A StorageClient for one server's HTTP storage protocol (its NURL's host, port, pin, swissnum);
    certificate_hash computes a certificate's pin as bytes (from shoal.protocol.nurl.spki_hash)."""

    def __init__(
        self,
        host: str,
        port: int,
        pin: bytes,
        swissnum: bytes,
        name: str,
        clock: Any,
        deadlines: Deadlines | None = None,
        *,
        certificate_hash: Callable[[bytes], bytes] = _pin_of,
        reactor: Any = None,
        per_server: int = 4,
        on_unreachable: Callable[[], None] = lambda: None,
    ) -> None:
        self._name = name
        self._deadlines = deadlines or Deadlines()
        self.pool = ServerPool(host, port, pin, certificate_hash,
                               timeout=max(self._deadlines.write, self._deadlines.query) * 2, max_idle=per_server)
        lane = Lane(io_threads(reactor if reactor is not None else _global_reactor), per_server)
        self._http = _Http(self.pool, lane, swissnum, name, clock, on_unreachable)
        self.address = f"{host}:{port}"

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        """Close idle connections (requests in flight finish first)."""
        self.pool.close()

    def get_version(self) -> "defer.Deferred[ServerVersion]":
        def done(resp: Response) -> ServerVersion:
            self._http.expect(resp, "get_version", OK)
            return _decoded(bodies.decode_version, resp, self._name, "get_version")

        return self._http.request("get_version", self._deadlines.query, path_for(Endpoint.VERSION),
                                  Endpoint.VERSION).addCallback(done)

    @_failing_late
    def allocate_buckets(
        self,
        storage_index: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        sharenums: frozenset[int],
        allocated_size: int,
    ) -> "defer.Deferred[Allocation]":
        path = path_for(Endpoint.IMMUTABLE_ALLOCATE, storage_index)
        _check_secret(renew_secret)
        _check_secret(cancel_secret)
        message = bodies.AllocateRequest(frozenset(sharenums), allocated_size).encode()
        upload_secret = os.urandom(32)

        def done(resp: Response) -> Allocation:
            self._http.expect(resp, "allocate_buckets", OK)
            answer = _decoded(bodies.decode_allocate_response, resp, self._name, "allocate_buckets")
            writers: dict[int, BucketWriter] = {
                sh: HttpBucketWriter(self._http, self._deadlines, storage_index, sh, upload_secret)
                for sh in sorted(answer.allocated)
            }
            return Allocation(frozenset(answer.already_have), writers)

        return self._http.request(
            "allocate_buckets", self._deadlines.query, path, Endpoint.IMMUTABLE_ALLOCATE,
            secrets={Secret.LEASE_RENEW: renew_secret, Secret.LEASE_CANCEL: cancel_secret,
                     Secret.UPLOAD: upload_secret},
            message=message,
        ).addCallback(done)

    def _list(self, endpoint: Endpoint, storage_index: bytes, method: str) -> "defer.Deferred[frozenset[int]]":
        def done(resp: Response) -> frozenset[int]:
            self._http.expect(resp, method, OK)
            return _decoded(bodies.decode_share_numbers, resp, self._name, method)

        return self._http.request(method, self._deadlines.query, path_for(endpoint, storage_index), endpoint
                                  ).addCallback(done)

    @_failing_late
    def get_buckets(self, storage_index: bytes) -> "defer.Deferred[dict[int, BucketReader]]":
        def readers(shnums: frozenset[int]) -> dict[int, BucketReader]:
            return {sh: HttpBucketReader(self._http, self._deadlines, storage_index, sh) for sh in sorted(shnums)}

        return self._list(Endpoint.IMMUTABLE_LIST, storage_index, "get_buckets").addCallback(readers)

    @_failing_late
    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> "defer.Deferred[None]":
        path = path_for(Endpoint.LEASE, storage_index)
        _check_secret(renew_secret)
        _check_secret(cancel_secret)

        def done(resp: Response) -> None:
            if resp.status != NOT_FOUND:  # nothing stored under this index: nothing to renew, as over Foolscap
                self._http.expect(resp, "add_lease", NO_CONTENT)

        return self._http.request(
            "add_lease", self._deadlines.query, path, Endpoint.LEASE,
            secrets={Secret.LEASE_RENEW: renew_secret, Secret.LEASE_CANCEL: cancel_secret},
        ).addCallback(done)

    @_failing_late
    def slot_readv(
        self, storage_index: bytes, shares: Sequence[int], readv: ReadVector
    ) -> "defer.Deferred[dict[int, list[bytes]]]":
        path_for(Endpoint.MUTABLE_LIST, storage_index)  # checks the storage index
        wanted = [(o, n) for o, n in readv]
        for o, n in wanted:
            _check_offset(o)
            _check_offset(n)
        for sh in shares:
            path_for(Endpoint.MUTABLE_READ, storage_index, sh)  # checks the share number

        async def run() -> dict[int, list[bytes]]:
            shnums = sorted(set(shares)) if shares else sorted(
                await self._list(Endpoint.MUTABLE_LIST, storage_index, "slot_readv"))
            reads = {
                sh: [_read(self._http, self._deadlines.query, Endpoint.MUTABLE_READ, storage_index, sh, o, n,
                           "slot_readv") for o, n in wanted]
                for sh in shnums
            }
            out: dict[int, list[bytes]] = {}
            for sh, ds in reads.items():
                got = await defer.gatherResults(ds, consumeErrors=True).addErrback(_first_error)
                if all(x is not None for x in got):
                    out[sh] = [x for x in got if x is not None]
            return check_read_answer(out, self._name, "slot_readv", wanted)

        return defer.ensureDeferred(run())

    @_failing_late
    def slot_testv_and_readv_and_writev(
        self,
        storage_index: bytes,
        secrets: WriteSecrets,
        tw_vectors: Mapping[int, SlotWrite],
        r_vector: ReadVector,
    ) -> "defer.Deferred[TestWriteResult]":
        method = "slot_testv_and_readv_and_writev"
        path = path_for(Endpoint.MUTABLE_READ_TEST_WRITE, storage_index)
        for secret in (secrets.write_enabler, secrets.renew, secrets.cancel):
            _check_secret(secret)
        wanted = [(o, n) for o, n in r_vector]
        for w in tw_vectors.values():
            for _, _, op, _ in w.tests:
                if op != b"eq":
                    return defer.fail(ServerRefused(
                        self._name, method, f"test operator {op!r}: only b'eq' is supported over HTTP"))
        message = bodies.ReadTestWriteRequest(
            {
                sh: bodies.ShareTestWrite(
                    [bodies.TestVector(o, n, spec) for o, n, _, spec in w.tests],
                    [bodies.WriteVector(o, data) for o, data in w.writes],
                    w.new_length,
                )
                for sh, w in tw_vectors.items()
            },
            [bodies.ReadVector(o, n) for o, n in wanted],
        ).encode()

        def done(resp: Response) -> TestWriteResult:
            if resp.status == UNAUTHORIZED:
                text = first_line(resp.body[:MAX_ERROR_TEXT].decode("utf-8", "replace"))
                raise ServerRefused(self._name, method, f"HTTP 401: {text or 'bad write enabler'}")
            self._http.expect(resp, method, OK)
            answer = _decoded(bodies.decode_read_test_write_response, resp, self._name, method)
            return TestWriteResult(answer.success, check_read_answer(answer.as_dict(), self._name, method, wanted))

        return self._http.request(
            method, self._deadlines.query, path, Endpoint.MUTABLE_READ_TEST_WRITE,
            secrets={Secret.LEASE_RENEW: secrets.renew, Secret.LEASE_CANCEL: secrets.cancel,
                     Secret.WRITE_ENABLER: secrets.write_enabler},
            message=message,
        ).addCallback(done)

    @_failing_late
    def advise_corrupt_share(
        self, share_type: bytes, storage_index: bytes, shnum: int, reason: bytes
    ) -> "defer.Deferred[None]":
        endpoints = {b"immutable": Endpoint.IMMUTABLE_CORRUPT, b"mutable": Endpoint.MUTABLE_CORRUPT}
        if share_type not in endpoints:
            raise ValueError(f"unknown share type {share_type!r}")
        return _advise(self._http, self._deadlines, endpoints[share_type], storage_index, shnum, reason)


def _first_error(failure: Failure) -> Failure:
    """gatherResults' FirstError unwrapped to the ServerError inside."""
    value = failure.value
    if isinstance(value, defer.FirstError):
        sub: Failure = value.subFailure
        return sub
    return failure
