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

import base64
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import cbor2
from twisted.internet import defer
from twisted.internet import reactor as _global_reactor
from twisted.python.failure import Failure

from shoal.encoding.base32 import b2a
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
    check_shnums,
    first_line,
    parse_version,
    with_deadline,
)
from shoal.protocol.nurl import spki_hash
from shoal.protocol.version import PROTOCOL_KEY

__all__ = ["HttpStorageClient", "translate_status", "translate_transport"]

CBOR = b"application/cbor"
MAX_CBOR_ANSWER = 30 * 1024 * 1024  # Tahoe's client reads at most this much of a CBOR answer
MAX_ERROR_TEXT = 10_000  # ... and of an error's body
_FULL_WORDS = ("no space", "no room", "is full", "insufficient storage")
_HTTP_FEATURES = (
    b"tolerates-immutable-read-overrun",
    b"delete-mutable-shares-with-zero-length-writev",
    b"fills-holes-with-zero-bytes",
    b"prevents-read-past-end-of-share-data",
)


# -- errors ---------------------------------------------------------------------------


def translate_status(resp: Response, server: str, method: str) -> ServerError:
    """An unexpected HTTP status as a ServerError, keeping the server's text."""
    text = first_line(resp.body[:MAX_ERROR_TEXT].decode("utf-8", "replace"))
    reason = f"HTTP {resp.status}" + (f": {text}" if text else "")
    if resp.status == 507 or any(w in text.lower() for w in _FULL_WORDS):
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


def _decode(resp: Response, server: str, method: str) -> Any:
    if (resp.header(b"content-type") or b"").split(b";")[0].strip().lower() != CBOR:
        raise ServerProtocolError(server, method, "answered without a CBOR body")
    try:
        return cbor2.loads(resp.body)
    except Exception as e:  # cbor2 raises many kinds on malformed input
        raise ServerProtocolError(server, method, f"answered malformed CBOR: {e}") from None


def _field(answer: Any, key: str, kind: type | tuple[type, ...], server: str, method: str) -> Any:
    if not isinstance(answer, Mapping) or key not in answer or not isinstance(answer[key], kind):
        raise ServerProtocolError(server, method, f"answer has no {key!r} of the right type")
    return answer[key]


def _si(storage_index: bytes) -> str:
    """The storage index as the path carries it; ValueError (the caller's mistake) if malformed."""
    if not isinstance(storage_index, bytes) or len(storage_index) != 16:
        raise ValueError(f"a storage index is 16 bytes, not {storage_index!r:.40}")
    return b2a(storage_index)


def _check_shnum(shnum: int) -> None:
    if isinstance(shnum, bool) or not isinstance(shnum, int) or not 0 <= shnum < 256:
        raise ValueError(f"share number {shnum!r:.20} is not in 0..255")


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) != 32:
        raise ValueError("secrets are 32 bytes")


def _check_span(offset: int, length: int) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset {offset!r:.20} is not a count of bytes")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length {length!r:.20} is not a count of bytes")


def _content_range(offset: int, length: int) -> bytes:
    return f"bytes {offset}-{offset + length - 1}/*".encode("ascii")


def _parse_content_range(value: bytes | None) -> tuple[int, int] | None:
    """(start, end exclusive) of a 'bytes a-b/...' Content-Range, or None."""
    if value is None or not value.startswith(b"bytes "):
        return None
    span = value[6:].split(b"/", 1)[0]
    first, sep, last = span.partition(b"-")
    if not sep or not first.isdigit() or not last.isdigit():
        return None
    start, end = int(first), int(last) + 1
    return (start, end) if end > start else None


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
        self._auth = b"Tahoe-LAFS " + base64.b64encode(swissnum)
        self._on_unreachable = on_unreachable

    def request(
        self,
        method: str,
        seconds: float,
        verb: bytes,
        path: str,
        *,
        secrets: Sequence[tuple[str, bytes]] = (),
        message: object = None,
        body: Sequence[bytes | memoryview] = (),
        headers: Sequence[tuple[bytes, bytes]] = (),
        max_body: int = MAX_CBOR_ANSWER,
    ) -> "defer.Deferred[Response]":
        all_headers = [(b"authorization", self._auth), (b"accept", CBOR), *headers]
        for kind, value in secrets:
            all_headers.append((b"x-tahoe-authorization", kind.encode("ascii") + b" " + base64.b64encode(value)))
        if message is not None:
            body = [cbor2.dumps(message)]
            all_headers.append((b"content-type", CBOR))
        req = Request(verb, path.encode("ascii"), all_headers, body, max(max_body, MAX_ERROR_TEXT))
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

    def __init__(self, http: _Http, deadlines: Deadlines, si: str, shnum: int, upload_secret: bytes) -> None:
        self._http = http
        self._deadlines = deadlines
        self._path = f"/storage/v1/immutable/{si}/{shnum}"
        self._secret = [("upload-secret", upload_secret)]
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
            _check_span(offset, len(data))
        except Exception:
            return defer.fail()
        if not data:  # HTTP cannot carry an empty range; there is nothing to write
            return defer.succeed(None)
        view = memoryview(data)

        def done(resp: Response) -> None:
            self._http.expect(resp, "write", 200, 201)
            _decode(resp, self._http.name, "write")  # {required: [...]}: what is left
            if resp.status == 201:
                self.complete = True

        d = self._http.request(
            "write", self._deadlines.write, b"PATCH", self._path, secrets=self._secret, body=[view],
            headers=[(b"content-range", _content_range(offset, len(view)))],
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
            if resp.status in (401, 404, 405):  # not (or no longer) an upload of ours: nothing to abort
                return
            self._http.expect(resp, "abort", 200)

        return self._http.request(
            "abort", self._deadlines.write, b"PUT", self._path + "/abort", secrets=self._secret
        ).addCallback(done)


def _read(http: _Http, seconds: float, kind: str, si: str, shnum: int, offset: int, length: int,
          method: str) -> "defer.Deferred[bytes | None]":
    """One ranged GET of a share; None when the server has no such share (404)."""
    try:
        _check_span(offset, length)
    except ValueError:
        return defer.fail()
    if length == 0:
        return defer.succeed(b"")

    def done(resp: Response) -> bytes | None:
        if resp.status == 404:
            return None
        if resp.status == 204:
            return b""
        http.expect(resp, method, 206)
        span = _parse_content_range(resp.header(b"content-range"))
        if span is None or span[0] != offset:
            raise ServerProtocolError(http.name, method, f"answered a read at {offset} with the wrong Content-Range")
        if span[1] - span[0] != len(resp.body):
            raise ServerProtocolError(http.name, method, "answered a body that does not match its Content-Range")
        return check_bytes(resp.body, http.name, method, length)

    return http.request(
        method, seconds, b"GET", f"/storage/v1/{kind}/{si}/{shnum}",
        headers=[(b"range", f"bytes={offset}-{offset + length - 1}".encode("ascii"))], max_body=length,
    ).addCallback(done)


class HttpBucketReader:
    def __init__(self, http: _Http, deadlines: Deadlines, si: str, shnum: int) -> None:
        self._http = http
        self._deadlines = deadlines
        self._si = si
        self._shnum = shnum

    def read(self, offset: int, length: int) -> "defer.Deferred[bytes]":
        def present(data: bytes | None) -> bytes:
            if data is None:
                raise ServerRefused(self._http.name, "read", "HTTP 404: the server no longer has this share")
            return data

        d = _read(self._http, self._deadlines.read, "immutable", self._si, self._shnum, offset, length, "read")
        return d.addCallback(present)

    def advise_corrupt_share(self, reason: bytes) -> "defer.Deferred[None]":
        return _advise(self._http, self._deadlines, "immutable", self._si, self._shnum, reason)


def _advise(http: _Http, deadlines: Deadlines, kind: str, si: str, shnum: int, reason: bytes,
            ) -> "defer.Deferred[None]":
    def done(resp: Response) -> None:
        if resp.status != 404:  # an unknown share: nothing to say, as over Foolscap
            http.expect(resp, "advise_corrupt_share", 200)

    return http.request(
        "advise_corrupt_share", deadlines.advise, b"POST", f"/storage/v1/{kind}/{si}/{shnum}/corrupt",
        message={"reason": reason.decode("utf-8", "backslashreplace")},
    ).addCallback(done)


class HttpStorageClient:
    """A StorageClient for one server's HTTP storage protocol (its NURL's host, port, pin, swissnum);
    certificate_hash computes a certificate's pin (shoal.protocol.nurl.spki_hash)."""

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
        certificate_hash: Callable[[bytes], bytes] = spki_hash,
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
            answer = _decode(self._http.expect(resp, "get_version", 200), self._name, "get_version")
            if isinstance(answer, dict) and isinstance(answer.get(PROTOCOL_KEY), dict):
                for feature in _HTTP_FEATURES:
                    answer[PROTOCOL_KEY].setdefault(feature, True)
            return parse_version(answer, self._name)

        return self._http.request("get_version", self._deadlines.query, b"GET", "/storage/v1/version").addCallback(done)

    @_failing_late
    def allocate_buckets(
        self,
        storage_index: bytes,
        renew_secret: bytes,
        cancel_secret: bytes,
        sharenums: frozenset[int],
        allocated_size: int,
    ) -> "defer.Deferred[Allocation]":
        si = _si(storage_index)
        _check_secret(renew_secret)
        _check_secret(cancel_secret)
        for sh in sharenums:
            _check_shnum(sh)
        _check_span(allocated_size, 0)
        upload_secret = os.urandom(32)

        def done(resp: Response) -> Allocation:
            answer = _decode(self._http.expect(resp, "allocate_buckets", 200), self._name, "allocate_buckets")
            kinds = (set, frozenset, list, tuple)
            already = check_shnums(_field(answer, "already-have", kinds, self._name, "allocate_buckets"),
                                   self._name, "allocate_buckets")
            allocated = check_shnums(_field(answer, "allocated", kinds, self._name, "allocate_buckets"),
                                     self._name, "allocate_buckets")
            writers: dict[int, BucketWriter] = {
                sh: HttpBucketWriter(self._http, self._deadlines, si, sh, upload_secret) for sh in sorted(allocated)
            }
            return Allocation(already, writers)

        return self._http.request(
            "allocate_buckets", self._deadlines.query, b"POST", f"/storage/v1/immutable/{si}",
            secrets=[("lease-renew-secret", renew_secret), ("lease-cancel-secret", cancel_secret),
                     ("upload-secret", upload_secret)],
            message={"share-numbers": set(sharenums), "allocated-size": allocated_size},
        ).addCallback(done)

    def _list(self, kind: str, si: str, method: str) -> "defer.Deferred[frozenset[int]]":
        def done(resp: Response) -> frozenset[int]:
            return check_shnums(_decode(self._http.expect(resp, method, 200), self._name, method), self._name, method)

        return self._http.request(method, self._deadlines.query, b"GET", f"/storage/v1/{kind}/{si}/shares"
                                  ).addCallback(done)

    @_failing_late
    def get_buckets(self, storage_index: bytes) -> "defer.Deferred[dict[int, BucketReader]]":
        si = _si(storage_index)

        def readers(shnums: frozenset[int]) -> dict[int, BucketReader]:
            return {sh: HttpBucketReader(self._http, self._deadlines, si, sh) for sh in sorted(shnums)}

        return self._list("immutable", si, "get_buckets").addCallback(readers)

    @_failing_late
    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> "defer.Deferred[None]":
        _check_secret(renew_secret)
        _check_secret(cancel_secret)

        def done(resp: Response) -> None:
            if resp.status != 404:  # nothing stored under this index: nothing to renew, as over Foolscap
                self._http.expect(resp, "add_lease", 204)

        return self._http.request(
            "add_lease", self._deadlines.query, b"PUT", f"/storage/v1/lease/{_si(storage_index)}",
            secrets=[("lease-renew-secret", renew_secret), ("lease-cancel-secret", cancel_secret)],
        ).addCallback(done)

    @_failing_late
    def slot_readv(
        self, storage_index: bytes, shares: Sequence[int], readv: ReadVector
    ) -> "defer.Deferred[dict[int, list[bytes]]]":
        si = _si(storage_index)
        wanted = [(o, n) for o, n in readv]
        for o, n in wanted:
            _check_span(o, n)
        for sh in shares:
            _check_shnum(sh)

        async def run() -> dict[int, list[bytes]]:
            shnums = sorted(set(shares)) if shares else sorted(await self._list("mutable", si, "slot_readv"))
            reads = {
                sh: [_read(self._http, self._deadlines.query, "mutable", si, sh, o, n, "slot_readv") for o, n in wanted]
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
        wanted = [(o, n) for o, n in r_vector]
        si = _si(storage_index)
        for secret in (secrets.write_enabler, secrets.renew, secrets.cancel):
            _check_secret(secret)
        for o, n in wanted:
            _check_span(o, n)
        vectors = {}
        for sh, w in tw_vectors.items():
            _check_shnum(sh)
            for o, n, op, spec in w.tests:
                _check_span(o, n)
                if not isinstance(spec, bytes):
                    raise ValueError("a test specimen is bytes")
                if op != b"eq":
                    return defer.fail(ServerRefused(
                        self._name, method, f"test operator {op!r}: only b'eq' is supported over HTTP"))
            for o, data in w.writes:
                _check_span(o, 0)
                if not isinstance(data, bytes):
                    raise ValueError("written data is bytes")
            if w.new_length is not None:
                _check_span(w.new_length, 0)
            vectors[sh] = {
                "test": [{"offset": o, "size": n, "specimen": spec} for o, n, _, spec in w.tests],
                "write": [{"offset": o, "data": data} for o, data in w.writes],
                "new-length": w.new_length,
            }

        def done(resp: Response) -> TestWriteResult:
            if resp.status == 401:
                text = first_line(resp.body[:MAX_ERROR_TEXT].decode("utf-8", "replace"))
                raise ServerRefused(self._name, method, f"HTTP 401: {text or 'bad write enabler'}")
            answer = _decode(self._http.expect(resp, method, 200), self._name, method)
            success = _field(answer, "success", bool, self._name, method)
            data = _field(answer, "data", Mapping, self._name, method)
            return TestWriteResult(success, check_read_answer(data, self._name, method, wanted))

        return self._http.request(
            method, self._deadlines.query, b"POST", f"/storage/v1/mutable/{si}/read-test-write",
            secrets=[("write-enabler", secrets.write_enabler), ("lease-renew-secret", secrets.renew),
                     ("lease-cancel-secret", secrets.cancel)],
            message={"test-write-vectors": vectors, "read-vector": [{"offset": o, "size": n} for o, n in wanted]},
        ).addCallback(done)

    @_failing_late
    def advise_corrupt_share(
        self, share_type: bytes, storage_index: bytes, shnum: int, reason: bytes
    ) -> "defer.Deferred[None]":
        if share_type not in (b"immutable", b"mutable"):
            return defer.fail(ValueError(f"unknown share type {share_type!r}"))
        return _advise(self._http, self._deadlines, share_type.decode("ascii"), _si(storage_index), shnum, reason)


def _first_error(failure: Failure) -> Failure:
    """gatherResults' FirstError unwrapped to the ServerError inside."""
    value = failure.value
    if isinstance(value, defer.FirstError):
        sub: Failure = value.subFailure
        return sub
    return failure
