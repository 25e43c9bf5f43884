"""HTTP client of Soledad's blob server contract (app-apis.md 1.1-1.3).

Routes: ``GET/PUT/POST/DELETE {remote}{user}/{blob_id}?namespace=``,
``GET {remote}{user}/`` (order_by, filter_flag, deleted, only_count),
``?only_flags=true``, ``POST {remote_stream}{user}?direction=upload|download``.
Auth header ``Authorization: Token base64(user:token)``. Status mapping:
404 BlobNotFoundError, 406 InvalidFlagsError, 409 BlobAlreadyExistsError,
507 QuotaExceededError, connection failures and other 5xx
RetriableTransferError. Persistent connections (the pool) because per-request
connection setup dominated Soledad's small-blob benchmark (1.7).
"""

import base64
import io
import json
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote, urlencode

from OpenSSL import SSL, crypto
from twisted.internet import defer, protocol, ssl
from twisted.internet import error as ierror
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    ResponseDone,
    ResponseFailed,
    readBody,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer

from shoal.apps.blobmanager.errors import (
    BlobAlreadyExistsError,
    BlobManagerError,
    BlobNotFoundError,
    FramingError,
    InvalidFlagsError,
    QuotaExceededError,
    RetriableTransferError,
)
from shoal.apps.blobmanager.framing import DownloadParser, encode_upload
from shoal.encoding import bounded_json

_TRANSIENT = (ierror.ConnectError, ierror.ConnectionLost, ierror.ConnectionDone, ierror.TimeoutError,
              ResponseFailed, ierror.DNSLookupError)


class BlobsRemote:
    def __init__(self, reactor: Any, remote: str, user: str, token: str | None = None,
                 remote_stream: str | None = None, *, connections: int = 3, cert_file: str | None = None) -> None:
        self.remote = remote if remote.endswith("/") else remote + "/"
        if remote_stream is None:
            remote_stream = self.remote.rstrip("/").rsplit("/", 1)[0] + "/stream/"
        self.remote_stream = remote_stream if remote_stream.endswith("/") else remote_stream + "/"
        self.user = user
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = max(2, connections)
        self.pool.retryAutomatically = False
        if cert_file is not None:
            self.agent = Agent(reactor, contextFactory=_pinned_ca(cert_file), pool=self.pool)
        else:
            self.agent = Agent(reactor, pool=self.pool)
        self.headers: dict[bytes, list[bytes]] = {}
        if token is not None:
            cred = base64.b64encode(f"{user}:{token}".encode())
            self.headers[b"Authorization"] = [b"Token " + cred]

    async def close(self) -> None:
        await self.pool.closeCachedConnections()

    async def _request(self, method: str, url: str, body: bytes | None = None,
                       extra: dict[bytes, list[bytes]] | None = None) -> tuple[int, Headers, bytes]:
        headers = Headers({**self.headers, **(extra or {})})
        producer = cast(IBodyProducer, FileBodyProducer(io.BytesIO(body))) if body is not None else None
        try:
            response = await self.agent.request(method.encode("ascii"), url.encode("ascii"), headers, producer)
            data = await readBody(response)
        except _TRANSIENT as e:
            raise RetriableTransferError(f"{method} {url}: {e.__class__.__name__}: {e}") from None
        return response.code, response.headers, data

    def _url(self, blob_id: str | None, namespace: str, **query: str) -> str:
        args = {**({"namespace": namespace} if namespace else {}), **query}
        tail = quote(blob_id, safe="") if blob_id else ""
        return f"{self.remote}{quote(self.user, safe='')}/{tail}" + (("?" + urlencode(args)) if args else "")

    @staticmethod
    def _check(code: int, what: str, body: bytes, ok: tuple[int, ...] = (200,)) -> None:
        if code in ok:
            return
        detail = body[:200].decode("utf-8", "replace")
        if code == 404:
            raise BlobNotFoundError(f"{what}: not on the server")
        if code == 406:
            raise InvalidFlagsError(f"{what}: server refused the flags: {detail}")
        if code == 409:
            raise BlobAlreadyExistsError(f"{what}: already on the server")
        if code == 507:
            raise QuotaExceededError(f"{what}: the user's quota on the server is full")
        if code >= 500 or code in (408, 429):
            raise RetriableTransferError(f"{what}: server answered {code} {detail}")
        raise BlobManagerError(f"{what}: server answered {code} {detail}")

    async def put(self, blob_id: str, stored: bytes, namespace: str = "") -> None:
        code, _, body = await self._request("PUT", self._url(blob_id, namespace), stored)
        self._check(code, f"PUT blob {blob_id}", body)

    async def get(self, blob_id: str, namespace: str = "") -> tuple[bytes, str | None]:
        """(stored bytes, Tag header)."""
        code, headers, body = await self._request("GET", self._url(blob_id, namespace))
        self._check(code, f"GET blob {blob_id}", body)
        tags = headers.getRawHeaders(b"tag") or []
        return body, (tags[0].decode("ascii", "replace") if tags else None)

    async def delete(self, blob_id: str, namespace: str = "") -> None:
        code, _, body = await self._request("DELETE", self._url(blob_id, namespace))
        self._check(code, f"DELETE blob {blob_id}", body)

    async def set_flags(self, blob_id: str, flags: list[str], namespace: str = "") -> None:
        code, _, body = await self._request("POST", self._url(blob_id, namespace),
                                            json.dumps(list(flags)).encode("utf-8"))
        self._check(code, f"POST flags of blob {blob_id}", body)

    async def get_flags(self, blob_id: str, namespace: str = "") -> list[str]:
        code, _, body = await self._request("GET", self._url(blob_id, namespace, only_flags="true"))
        self._check(code, f"GET flags of blob {blob_id}", body)
        return list(bounded_json.loads(body)) if body.strip() else []

    async def listing(self, namespace: str = "", order_by: str | None = None, deleted: bool = False,
                   filter_flag: str | None = None, only_count: bool = False) -> Any:
        query: dict[str, str] = {}
        if order_by:
            query["order_by"] = order_by
        if deleted:
            query["deleted"] = "true"
        if filter_flag:
            query["filter_flag"] = filter_flag
        if only_count:
            query["only_count"] = "true"
        code, _, body = await self._request("GET", self._url(None, namespace, **query))
        self._check(code, "GET blob list", body)
        return bounded_json.loads(body)

    def _stream_url(self, direction: str, namespace: str) -> str:
        args = {"direction": direction, **({"namespace": namespace} if namespace else {})}
        return f"{self.remote_stream}{quote(self.user, safe='')}?{urlencode(args)}"

    async def stream_upload(self, blobs: list[tuple[str, bytes]], namespace: str = "") -> None:
        code, _, body = await self._request("POST", self._stream_url("upload", namespace), encode_upload(blobs))
        self._check(code, f"stream upload of {len(blobs)} blobs", body)

    async def stream_download(self, blob_ids: list[str], each: Callable[[str, bytes], None],
                              namespace: str = "") -> int:
        """Call each(tag, stored bytes) per blob as it arrives (one blob in memory at a time);
        returns how many blobs came."""
        url = self._stream_url("download", namespace)
        body = json.dumps(list(blob_ids)).encode("utf-8")
        try:
            response = await self.agent.request(b"POST", url.encode("ascii"), Headers(self.headers),
                                                cast(IBodyProducer, FileBodyProducer(io.BytesIO(body))))
            if response.code != 200:
                self._check(response.code, f"stream download of {len(blob_ids)} blobs", await readBody(response))
            done: defer.Deferred[int] = defer.Deferred()
            response.deliverBody(_FramedBody(each, done))  # type: ignore[call-arg, misc]
            return await done
        except _TRANSIENT as e:
            raise RetriableTransferError(f"POST {url}: {e.__class__.__name__}: {e}") from None


def _pinned_ca(cert_file: str) -> BrowserLikePolicyForHTTPS:
    """HTTPS that trusts only the CA certificate in `cert_file` (Soledad's ``cert_file``)."""
    try:
        with open(cert_file, "rb") as f:
            root = ssl.Certificate.loadPEM(f.read())
    except (OSError, ValueError, SSL.Error, crypto.Error) as e:
        raise BlobManagerError(f"cert_file {cert_file}: not a readable PEM certificate ({e.__class__.__name__})") from None
    return BrowserLikePolicyForHTTPS(trustRoot=root)


class _FramedBody(protocol.Protocol):
    """Feeds a stream download body through the framing parser as it arrives."""

    def __init__(self, each: Callable[[str, bytes], None], done: "defer.Deferred[int]") -> None:
        self.parser = DownloadParser()
        self.each = each
        self.done = done
        self.count = 0
        self.error: Exception | None = None

    def dataReceived(self, data: bytes) -> None:
        if self.error is not None:
            return
        try:
            for tag, stored in self.parser.feed(data):
                self.count += 1
                self.each(tag, stored)
        except Exception as e:  # noqa: BLE001 - reported through `done`
            self.error = e

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self.error is None and not reason.check(ResponseDone, PotentialDataLoss):
            self.error = RetriableTransferError(f"stream download cut short: {reason.getErrorMessage()}")
        if self.error is None:
            try:
                self.parser.close()
            except FramingError as e:
                self.error = e
        if self.error is not None:
            self.done.errback(self.error)
        else:
            self.done.callback(self.count)
