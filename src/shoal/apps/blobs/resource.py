"""The blob service's HTTP resources, with Soledad's routes, parameters, codes
and headers (``_resource.py``, ``_blobs/resource.py``, ``_streaming_resource.py``):

* ``GET /`` (anonymous): ``{"blobs": true, "version": ...}``; ``GET /robots.txt``.
* ``GET /blobs/{user}/`` list ids (``namespace``, ``order_by``, ``filter_flag``,
  ``deleted``), ``?only_count=true`` ``{"count": N}``.
* ``GET /blobs/{user}/{id}`` bytes with a ``Tag`` header (``Range``: 206/416),
  ``?only_flags=true`` the flags; ``PUT`` create (409, 507); ``POST`` flags
  (404, 406); ``DELETE`` (404).
* ``POST /stream/{user}?direction=download|upload`` (shoal.apps.blobs.framing).

Everything under /blobs and /stream needs ``Authorization: Token ...`` for
the user named in the URL (401 otherwise). Errors are one line of text with
the status of shoal.apps.blobs.errors; unexpected failures are logged and
answered 500 without a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.python import log
from twisted.web import http, resource, server
from twisted.web.client import FileBodyProducer

from shoal.apps.blobs.auth import TokenFile
from shoal.apps.blobs.backend import GridBlobsBackend
from shoal.apps.blobs.errors import BadRequest, BlobError, InvalidRequest, RangeNotSatisfiable
from shoal.apps.blobs.framing import (
    frame_header,
    parse_download_request,
    parse_upload_manifest,
    read_manifest_line,
)
from shoal.apps.blobs.index import BlobRow
from shoal.apps.blobs.ranges import parse_range, unsatisfiable_header
from shoal.apps.blobs.rules import is_true, namespace_or_default, parse_flags_body
from shoal.caps.censor import censor_caps
from shoal.errors import Fault, ShoalError
from shoal.streaming import ConsumerWriter

ROBOTS = b"User-agent: *\nDisallow: /\n"


class SeekableBody(FileBodyProducer):
    """A request body as Soledad hands it to ``write_blob`` (an IBodyProducer with
    ``length``), which also lets the grid backend read the spooled file directly."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__(source)
        self.source = source


def _arg(request: server.Request, name: str) -> str | None:
    values = (request.args or {}).get(name.encode("ascii"))
    if not values:
        return None
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(f"query parameter {name} is not UTF-8") from None


def _text(request: server.Request, status: int, message: str) -> None:
    if request.finished or getattr(request, "_disconnected", False):
        return
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    body = censor_caps(message).encode("utf-8") + b"\n"  # the gateway's caps are not the user's
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()


def _json(request: server.Request, value: object) -> None:
    body = json.dumps(value).encode("utf-8")
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()


def _ok_empty(request: server.Request) -> None:
    """200 with an empty body (Soledad's answer to PUT, POST, DELETE and stream uploads)."""
    request.setResponseCode(http.OK)
    request.setHeader(b"content-length", b"0")
    _done(request)


def _done(request: server.Request) -> None:
    if not request.finished and not getattr(request, "_disconnected", False):
        request.finish()


class _Handler(resource.Resource):
    """Runs an async handler per request and turns errors into answers."""

    isLeaf = True

    def __init__(self, backend: GridBlobsBackend, tokens: TokenFile) -> None:
        super().__init__()
        self.backend = backend
        self.tokens = tokens

    def _run(self, request: server.Request, handler: Callable[[server.Request, str], Awaitable[None]]) -> Any:
        async def go() -> None:
            try:
                user = self._authenticate(request)
                await handler(request, user)
            except RangeNotSatisfiable as e:
                if not request.startedWriting:
                    request.setHeader(b"content-range", unsatisfiable_header(e.size).encode("ascii"))
                _text(request, e.status, str(e))
            except BlobError as e:
                if e.status == 401:
                    request.setHeader(b"www-authenticate", b'Token realm="shoal blobs"')
                if request.startedWriting:
                    log.msg(f"blobs: {request.method!r} {request.uri!r} failed after the answer started: {e}")
                    request.loseConnection()
                else:
                    _text(request, e.status, str(e))
            except Exception as e:
                bug = not isinstance(e, ShoalError) or e.fault is Fault.BUG
                if bug:
                    log.err(None, f"blobs: {request.method!r} {request.uri!r} failed")
                else:
                    log.msg(f"blobs: {request.method!r} {request.uri!r} failed: {e}")
                if request.startedWriting:
                    request.loseConnection()
                elif bug:
                    _text(request, 500, "internal error: see the gateway's log")
                else:  # the grid's trouble (not enough servers, a server failed ...): one line
                    _text(request, 500, f"the grid failed: {e}")

        defer.ensureDeferred(go())
        return server.NOT_DONE_YET

    def _authenticate(self, request: server.Request) -> str:
        postpath = request.postpath or []
        url_user = postpath[0].decode("utf-8", "replace") if postpath else ""
        header = request.getHeader(b"authorization")
        return self.tokens.authenticate(header.decode("latin-1") if header else None, url_user)

    @staticmethod
    def _blob_id(request: server.Request) -> str | None:
        postpath = request.postpath or []
        if len(postpath) < 2 or not postpath[1]:
            return None
        return postpath[1].decode("utf-8", "replace")


class BlobsResource(_Handler):
    """``/blobs/{user}/`` and ``/blobs/{user}/{blob_id}``."""

    def render_GET(self, request: server.Request) -> Any:
        return self._run(request, self._get)

    def render_PUT(self, request: server.Request) -> Any:
        return self._run(request, self._put)

    def render_POST(self, request: server.Request) -> Any:
        return self._run(request, self._post)

    def render_DELETE(self, request: server.Request) -> Any:
        return self._run(request, self._delete)

    def _target(self, request: server.Request) -> tuple[str | None, str]:
        if len(request.postpath or []) > 2:
            raise InvalidRequest("blob paths are /blobs/{user}/ or /blobs/{user}/{blob_id}")
        return self._blob_id(request), namespace_or_default(_arg(request, "namespace"))

    async def _get(self, request: server.Request, user: str) -> None:
        blob_id, namespace = self._target(request)
        if blob_id is None:
            if is_true(_arg(request, "only_count")):
                _json(request, {"count": await self.backend.live_count(user, namespace)})
                return
            ids = await self.backend.listing(
                user, namespace, order_by=_arg(request, "order_by"), deleted=is_true(_arg(request, "deleted")),
                filter_flag=_arg(request, "filter_flag"))
            _json(request, ids)
            return
        row = await self.backend.row(user, blob_id, namespace)
        if is_true(_arg(request, "only_flags")):
            _json(request, list(row.flags))
            return
        header = request.getHeader(b"range")
        wanted = parse_range(header.decode("latin-1") if header is not None else None, row.size)
        request.setHeader(b"tag", row.tag.encode("ascii"))
        request.setHeader(b"content-type", b"application/octet-stream")
        if wanted is None:
            request.setResponseCode(http.OK)
            request.setHeader(b"content-length", b"%d" % row.size)
            offset, length = 0, row.size
        else:
            request.setResponseCode(http.PARTIAL_CONTENT)
            request.setHeader(b"content-range", wanted.content_range.encode("ascii"))
            request.setHeader(b"content-length", b"%d" % wanted.length)
            offset, length = wanted.start, wanted.length
        with ConsumerWriter(request) as writer:
            await self.backend.read(row, writer.write, offset, length)
        _done(request)

    def _one_blob(self, request: server.Request) -> tuple[str, str]:
        blob_id, namespace = self._target(request)
        if blob_id is None:
            raise InvalidRequest(f"{request.method.decode('ascii', 'replace')} needs /blobs/{{user}}/{{blob_id}}")
        return blob_id, namespace

    async def _put(self, request: server.Request, user: str) -> None:
        blob_id, namespace = self._one_blob(request)
        assert request.content is not None
        await self.backend.write_blob(user, blob_id, SeekableBody(request.content), namespace)
        _ok_empty(request)

    async def _post(self, request: server.Request, user: str) -> None:
        blob_id, namespace = self._one_blob(request)
        assert request.content is not None
        await self.backend.row(user, blob_id, namespace)  # 404 before 406, as Soledad
        flags = parse_flags_body(request.content.read())
        await self.backend.set_flags_of(user, blob_id, flags, namespace)
        _ok_empty(request)

    async def _delete(self, request: server.Request, user: str) -> None:
        blob_id, namespace = self._one_blob(request)
        await self.backend.delete(user, blob_id, namespace)
        _ok_empty(request)


class StreamResource(_Handler):
    """``POST /stream/{user}?direction=download|upload``."""

    def render_POST(self, request: server.Request) -> Any:
        return self._run(request, self._post)

    async def _post(self, request: server.Request, user: str) -> None:
        postpath = request.postpath or []
        if len(postpath) > 2 or (len(postpath) == 2 and postpath[1]):
            raise InvalidRequest("the stream path is /stream/{user}")
        namespace = namespace_or_default(_arg(request, "namespace"))
        direction = _arg(request, "direction")
        assert request.content is not None
        if direction == "download":
            await self._download(request, user, namespace, request.content)
        elif direction == "upload":
            await self._upload(request, user, namespace, request.content)
        else:
            raise InvalidRequest(f"error, supported direction values are download/upload, not {direction!r}")

    async def _download(self, request: server.Request, user: str, namespace: str, body: BinaryIO) -> None:
        ids = parse_download_request(body.read())
        rows = await self.backend.rows(user, ids, namespace)  # 404 before any byte is sent

        def frame(row: BlobRow) -> bytes:
            return frame_header(row.size, row.tag)

        for row in rows:
            frame(row)  # a blob too big to frame is refused before the answer starts
        request.setResponseCode(http.OK)
        request.setHeader(b"content-type", b"application/octet-stream")
        with ConsumerWriter(request) as writer:
            await self.backend.stream_out(rows, writer, frame)
        _done(request)

    async def _upload(self, request: server.Request, user: str, namespace: str, body: BinaryIO) -> None:
        items = parse_upload_manifest(read_manifest_line(body))
        start = body.tell()
        body.seek(0, os.SEEK_END)
        remaining = body.tell() - start
        body.seek(start)
        declared = sum(size for _, size in items)
        if remaining != declared:
            raise BadRequest(f"the /stream upload manifest declares {declared} bytes but {remaining} follow it")
        await self.backend.store_many(user, items, body, namespace)
        _ok_empty(request)


class ServerInfo(resource.Resource):
    isLeaf = True

    def __init__(self, version: str) -> None:
        super().__init__()
        self._body = json.dumps({"blobs": True, "version": version}).encode("utf-8")

    def render_GET(self, request: server.Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return self._body


class Robots(resource.Resource):
    isLeaf = True

    def render_GET(self, request: server.Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return ROBOTS


def blob_site_root(backend: GridBlobsBackend, tokens: TokenFile, version: str) -> resource.Resource:
    root = resource.Resource()
    root.putChild(b"", ServerInfo(version))  # type: ignore[arg-type]  # zope interface typing
    root.putChild(b"robots.txt", Robots())  # type: ignore[arg-type]  # zope interface typing
    root.putChild(b"blobs", BlobsResource(backend, tokens))  # type: ignore[arg-type]  # zope interface typing
    root.putChild(b"stream", StreamResource(backend, tokens))  # type: ignore[arg-type]  # zope interface typing
    return root
