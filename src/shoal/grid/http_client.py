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

Requests and what their failures mean are shoal.grid.http_requests; the
bucket writers and readers shoal.grid.http_buckets. Arguments a server could
not be sent (a storage index not of 16 bytes, secrets not of 32, share
numbers, offsets or lengths out of range) fail the call with ValueError
before any request.
"""

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet import reactor as _global_reactor
from twisted.python.failure import Failure

from shoal.crypto.hashes import http_upload_secret
from shoal.grid.http_buckets import HttpBucketReader, HttpBucketWriter, advise, read_share
from shoal.grid.http_requests import (
    MAX_ERROR_TEXT,
    HttpRequests,
    check_offset,
    check_secret,
    decoded,
)
from shoal.grid.https_pool import Response, ServerPool
from shoal.grid.io_threads import Lane, io_threads
from shoal.grid.storage_client import (
    Allocation,
    BucketReader,
    BucketWriter,
    Deadlines,
    ReadVector,
    ServerRefused,
    ServerVersion,
    SlotWrite,
    TestWriteResult,
    WriteSecrets,
    check_read_answer,
    first_line,
)
from shoal.protocol import http_bodies as bodies
from shoal.protocol.http_errors import NO_CONTENT, NOT_FOUND, OK, UNAUTHORIZED
from shoal.protocol.http_storage import Endpoint, Secret, path_for
from shoal.protocol.nurl import spki_hash

__all__ = ["HttpStorageClient"]


def _pin_of(der_certificate: bytes) -> bytes:
    return spki_hash(der_certificate).encode("ascii")


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
        self._http = HttpRequests(self.pool, lane, swissnum, name, clock, on_unreachable)
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
            return decoded(bodies.decode_version, resp, self._name, "get_version")

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
        check_secret(renew_secret)
        check_secret(cancel_secret)
        message = bodies.AllocateRequest(frozenset(sharenums), allocated_size).encode()
        upload_secret = http_upload_secret(renew_secret)  # the same after a restart: partial shares resume

        def done(resp: Response) -> Allocation:
            self._http.expect(resp, "allocate_buckets", OK)
            answer = decoded(bodies.decode_allocate_response, resp, self._name, "allocate_buckets")
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
            return decoded(bodies.decode_share_numbers, resp, self._name, method)

        return self._http.request(method, self._deadlines.query, path_for(endpoint, storage_index), endpoint
                                  ).addCallback(done)

    @_failing_late
    def get_buckets(self, storage_index: bytes) -> "defer.Deferred[dict[int, BucketReader]]":
        def readers(shnums: frozenset[int]) -> dict[int, BucketReader]:
            return {sh: HttpBucketReader(self._http, self._deadlines, storage_index, sh) for sh in sorted(shnums)}

        return self._list(Endpoint.IMMUTABLE_LIST, storage_index, "get_buckets").addCallback(readers)

    @_failing_late
    def read_unlisted(
        self, storage_index: bytes, shnum: int, offset: int, length: int
    ) -> "defer.Deferred[tuple[BucketReader, bytes] | None]":
        """One ranged GET by share number, without listing first; None on 404 (no such share)."""
        reader = HttpBucketReader(self._http, self._deadlines, storage_index, shnum)

        def found(data: bytes | None) -> tuple[BucketReader, bytes] | None:
            return None if data is None else (reader, data)

        return read_share(self._http, self._deadlines.read, Endpoint.IMMUTABLE_READ, storage_index, shnum, offset,
                          length, "read").addCallback(found)

    @_failing_late
    def add_lease(self, storage_index: bytes, renew_secret: bytes, cancel_secret: bytes) -> "defer.Deferred[None]":
        path = path_for(Endpoint.LEASE, storage_index)
        check_secret(renew_secret)
        check_secret(cancel_secret)

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
            check_offset(o)
            check_offset(n)
        for sh in shares:
            path_for(Endpoint.MUTABLE_READ, storage_index, sh)  # checks the share number

        async def run() -> dict[int, list[bytes]]:
            shnums = sorted(set(shares)) if shares else sorted(
                await self._list(Endpoint.MUTABLE_LIST, storage_index, "slot_readv"))
            reads = {
                sh: [read_share(self._http, self._deadlines.query, Endpoint.MUTABLE_READ, storage_index, sh, o, n,
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
            check_secret(secret)
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
            answer = decoded(bodies.decode_read_test_write_response, resp, self._name, method)
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
        return advise(self._http, self._deadlines, endpoints[share_type], storage_index, shnum, reason)


def _first_error(failure: Failure) -> Failure:
    """gatherResults' FirstError unwrapped to the ServerError inside."""
    value = failure.value
    if isinstance(value, defer.FirstError):
        sub: Failure = value.subFailure
        return sub
    return failure
