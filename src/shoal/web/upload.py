"""Creating files through the web API: request bodies in, caps out.

`upload_body` turns a PUT body into an immutable (CHK or literal) file: the
body is already on disk with its convergent key when the handler runs (see
shoal.web.spool), so the upload encodes and pushes at once. `create_mutable`
makes an SDMF or MDMF file. Both record their progress in the node's
history (for /status) and bump Tahoe's counters ("uploader.files_uploaded",
"uploader.bytes_uploaded", "mutable.files_published", ...).
"""

import io
from typing import Any, BinaryIO

from twisted.web import http
from twisted.web.server import Request

from shoal.web.common import NotAvailable, WebError
from shoal.web.services import WebServices
from shoal.web.spool import BodySpool

MAX_MUTABLE_BODY = 1024 * 1024 * 1024  # bytes: mutable files are held in memory whole


class _Counting:
    """A read-only file wrapper counting the bytes read (upload progress)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.count += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def seekable(self) -> bool:
        return True


async def body_file(request: Request) -> tuple[BinaryIO, int, bytes | None]:
    """(file positioned at 0, size, convergent key or None) of the request body."""
    body = request.content
    if body is None:
        return _empty(), 0, None
    if isinstance(body, BodySpool):
        await body.ready()
        return body.file, body.size, body.key
    body.seek(0, 2)
    size = body.tell()
    body.seek(0)
    return body, size, None


def _empty() -> BinaryIO:
    return io.BytesIO(b"")


async def read_body(request: Request, limit: int = MAX_MUTABLE_BODY) -> bytes:
    f, size, _ = await body_file(request)
    if size > limit:
        raise WebError(f"a body of {size} bytes is too large here (at most {limit})", http.REQUEST_ENTITY_TOO_LARGE)
    return f.read(size)


async def upload_file(services: WebServices, source: BinaryIO, size: int, key: bytes | None = None) -> Any:
    """Upload an immutable file from `source`; returns the UploadResult."""
    if services.files is None:
        raise NotAvailable("this node cannot upload files")
    op = services.history.start("upload", size)
    op.phase = "pushing"
    counting = _Counting(source)
    op.progress_of = lambda: counting.count
    try:
        result = await services.files.upload(counting, size, key=key)
    except BaseException as e:
        op.finish(e)
        raise
    op.storage_index = result.storage_index
    op.servers = sorted({r.name for r in result.servers if r.allocated or r.already})
    op.timings.update(result.timings)
    op.finish()
    services.stats.count("uploader.files_uploaded")
    services.stats.count("uploader.bytes_uploaded", size)
    return result


async def upload_body(services: WebServices, request: Request) -> str:
    """The request body as an immutable file; its cap."""
    source, size, key = await body_file(request)
    try:
        result = await upload_file(services, source, size, key)
    finally:
        if isinstance(request.content, BodySpool):
            request.content.close()
    return str(result.cap)


async def create_mutable(services: WebServices, contents: bytes, fmt: str, private_key: Any = None) -> Any:
    """A new mutable file (SDMF or MDMF) holding `contents` (signed with `private_key`,
    a fresh one if None); its node."""
    if services.mutable is None:
        raise NotAvailable("mutable files are not available on this node")
    op = services.history.start("publish", len(contents))
    try:
        node = await services.mutable.create(contents, format=fmt, private_key=private_key)
    except BaseException as e:
        op.finish(e)
        raise
    op.storage_index = node.storage_index
    op.finish()
    services.stats.count("mutable.files_published")
    services.stats.count("mutable.bytes_published", len(contents))
    return node
