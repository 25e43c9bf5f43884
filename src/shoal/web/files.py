"""A file in the web API (`/uri/$FILECAP`, `/named/$FILECAP/NAME`, a directory's child),
as webapi.rst of Tahoe-LAFS 1.20 defines it.

GET   (no t)           the bytes; `Range: bytes=a-b` -> 206 with Content-Range (only the
                       first of several ranges; unparseable headers are ignored; a first
                       byte past the end -> 416); `filename=` (or the child name) picks the
                       Content-Type (default text/plain, as Tahoe); `save=true` adds
                       Content-Disposition: attachment; ETag "<SI>-<t>" for immutable files
                       (If-None-Match -> 304)
GET   t=json           ["filenode", {"mutable", "format", "size", "ro_uri", "rw_uri",
                       "verify_uri", "metadata"}] (only the keys that apply)
GET   t=info           an HTML page about the object
GET   t=uri            the cap; t=readonly-uri: its read-only cap
HEAD  (no t)           the headers of GET
PUT   (no t)           mutable file: replace the contents, or `offset=` to write in place
                       (MDMF; SDMF read-modify-write); immutable file: 400 (a
                       directory's child: replaced by a new upload); replace=false: 409.
                       shoal's extension (Tahoe clients send no If-Match and see no change):
                       `If-Match: <ETag>` replaces the contents only if the file's current
                       version has that tag (`*`: any), else 412 and nothing written;
                       two writers from one version never both succeed. The answer
                       carries the new version's ETag.
                       GET (no t) of a mutable file sends the ETag of the version it
                       sends: "<seqnum>-<base32 root hash>".
POST  t=upload         mutable file: replace with the form's `file` field
POST  t=check          check (verify=, repair=, add-lease=; output=JSON), see shoal.web.deep
anything else          400 "<METHOD> file: bad t=..."

A file's verify cap (VerifierResource) answers GET and HEAD with 400 and
otherwise as a file: POST t=check checks it.

Bytes stream (shoal.streaming.ConsumerWriter): the first validated segment is
sent as soon as it is decoded, and the transport's flow control (IPushProducer
pause/resume) holds the downloader back when the client reads slowly, so memory
stays a few segments per download.
"""

import json
import mimetypes
import re
from typing import Any

from twisted.web import http, resource
from twisted.web.server import Request

from shoal.dirnode import FileNode, VerifierNode
from shoal.encoding import digits
from shoal.encoding.base32 import b2a
from shoal.mutable.filenode import MutableFileNode, MutableVersion, version_tag
from shoal.streaming import ConsumerWriter
from shoal.web.children import check_replace, put_child_cap, put_child_file, unlink_child
from shoal.web.common import (
    WalkError,
    WebError,
    arg,
    bool_arg,
    offset_arg,
    run_async,
    t_arg,
)
from shoal.web.deep import check_object
from shoal.web.dirpage import info_html
from shoal.web.services import WebServices
from shoal.web.upload import read_body

VERIFY_CAP_UNREADABLE = "a verify cap cannot be read; use it with t=check"
_RANGE_SPEC = re.compile(r"^\s*([0-9]*)\s*-\s*([0-9]*)\s*$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The first range of a `Range:` header -> (first, last) inclusive, clipped to the
    file; None to ignore the header (unparseable or not bytes=); WebError 416 when the
    first byte is past the end (Tahoe's FileDownloader rules, but see below)."""
    units, _, rangeset = header.partition("=")
    if units.strip().lower() != "bytes" or not rangeset:
        return None
    spans: list[tuple[int, int]] = []
    for spec in rangeset.split(","):
        m = _RANGE_SPEC.match(spec)
        if not m or not (m.group(1) or m.group(2)):
            return None
        if m.group(1):
            first = digits.clamped(m.group(1))
            if first >= size and not spans:
                # Tahoe ignores "bytes=SIZE-" (its last defaults to the end, before the
                # first); shoal answers 416 as RFC 9110 asks, as for "bytes=SIZE-SIZE"
                raise WebError("First beyond end of file", http.REQUESTED_RANGE_NOT_SATISFIABLE)
            last = digits.clamped(m.group(2)) if m.group(2) else size - 1
        else:
            first, last = size - digits.clamped(m.group(2)), size - 1
        if last < first:
            return None
        spans.append((first, last))
    first, last = spans[0]
    return max(0, first), min(size - 1, last)


def content_type_for(filename: str) -> str:
    ctype = mimetypes.guess_type(filename, strict=False)[0] if filename else None
    return ctype or "text/plain"


def filenode_info(node: FileNode | VerifierNode) -> dict[str, Any]:
    """Tahoe's get_filenode_metadata without the network: "mutable", "format" (CHK
    for every immutable file, LIT ones too, as Tahoe) and "size" when it is known."""
    mutable = node.is_mutable()
    data: dict[str, Any] = {"mutable": mutable, "format": node.format if mutable else "CHK"}
    size = node.get_size()
    if size is not None:
        data["size"] = size
    return data


class FileResource(resource.Resource):
    """One file node (immutable or mutable), optionally as `name` in `parent`."""

    isLeaf = True

    def __init__(
        self,
        services: WebServices,
        node: FileNode | VerifierNode,
        *,
        name: str | None = None,
        parent: Any = None,
        metadata: dict[str, Any] | None = None,
        rest: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.services = services
        self.node = node
        self.name = name
        self.parent = parent
        self.metadata = metadata
        self.rest = rest or []

    def _check_path(self, request: Request) -> None:
        # as Tahoe's FileNodeHandler.getChild: an ErrorPage with its own title
        if self.rest and any(self.rest):
            name = self.rest[0]
            if request.method in (b"PUT", b"POST") and t_arg(request) not in ("delete", "rename", "rename-form",
                                                                             "check"):
                raise WalkError.page(http.CONFLICT, f"Cannot create directory {name!r}, because its parent is "
                                     "a file, not a directory")
            raise WalkError.page(http.BAD_REQUEST, f"Files have no children named {name!r}")

    # -- GET / HEAD --

    def render_GET(self, request: Request) -> Any:
        return run_async(request, lambda: self._get(request))

    def render_HEAD(self, request: Request) -> Any:
        return run_async(request, lambda: self._head(request))

    async def _head(self, request: Request) -> bytes | None:
        self._check_path(request)
        t = t_arg(request)
        if t:
            raise WebError(f"HEAD file: bad t={t}")
        return await self._download(request, head=True)

    async def _get(self, request: Request) -> bytes | str | None:
        self._check_path(request)
        t = t_arg(request)
        node = self.node
        if not node.is_mutable() and t in ("", "json", "uri", "readonly-uri"):
            si = node.storage_index
            if si and request.setETag(b"%s-%s" % (b2a(si).encode("ascii"), t.encode("ascii"))) == http.CACHED:
                return b""
        if t == "":
            return await self._download(request)
        if t == "json":
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return json.dumps(await self.json(), indent=1) + "\n"
        if t == "info":
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            return await self._info(request)
        if t == "uri":
            return str(node.cap.to_string())
        if t == "readonly-uri":
            return str(node.readonly_cap.to_string())
        raise WebError(f"GET file: bad t={t}")

    async def json(self) -> list[Any]:
        """Tahoe's ["filenode", {...}] for this file (the size asked of the grid if it must)."""
        node = self.node
        data = filenode_info(node)
        data["size"] = await node.get_current_size()
        data["ro_uri"] = node.readonly_cap.to_string()
        if node.readonly_cap != node.cap:
            data["rw_uri"] = node.cap.to_string()
        if node.verifier_cap is not None:
            data["verify_uri"] = node.verifier_cap.to_string()
        if self.metadata is not None:
            data["metadata"] = self.metadata
        return ["filenode", data]

    async def _info(self, request: Request) -> str:
        _, data = await self.json()
        kind = f"{'mutable' if data['mutable'] else 'immutable'} file ({data['format']})"
        caps = [(label, data[key]) for label, key in (
            ("Read-write cap", "rw_uri"), ("Read-only cap", "ro_uri"), ("Verify cap", "verify_uri")) if key in data]
        return info_html(request, self.name or "file", kind, data.get("size"), self.node.storage_index, caps, False)

    async def _download(self, request: Request, head: bool = False) -> bytes | None:
        filename = arg(request, "filename", self.name) or "unknown"
        node = self.node
        # a mutable file is mapped once: its size, then its bytes, from one version
        version = await node.best_readable_version() if isinstance(node, MutableFileNode) else None
        size = version.size if version is not None else await node.get_current_size()
        request.setHeader(b"content-type", content_type_for(filename).encode("ascii", "replace"))
        if bool_arg(request, "save"):
            quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
            request.setHeader(b"content-disposition", f'attachment; filename="{quoted}"'.encode())
        request.setHeader(b"accept-ranges", b"bytes")
        first, length = 0, size
        header = request.getHeader(b"range")
        if header:
            span = parse_range(header.decode("latin-1"), size)
            if span is not None:
                first, last = span
                length = last - first + 1
                request.setResponseCode(http.PARTIAL_CONTENT)
                request.setHeader(b"content-range", b"bytes %d-%d/%d" % (first, last, size))
        request.setHeader(b"content-length", b"%d" % length)
        if head or length == 0:
            return b""
        await self._stream(request, first, length, version)
        return None

    async def _stream(self, request: Request, first: int, length: int, version: MutableVersion | None = None) -> None:
        node = self.node
        if isinstance(node, MutableFileNode):
            version = version if version is not None else await node.best_readable_version()
            request.setHeader(b"etag", version.tag.encode("ascii"))
            with ConsumerWriter(request) as writer:
                await self._fetch(node, writer, first, length, version=version)
            return
        await self._stream_immutable(request, first, length)

    async def _stream_immutable(self, request: Request, first: int, length: int) -> None:
        node = self.node
        with ConsumerWriter(request) as writer:
            if node.storage_index is None:  # a literal file: the bytes are in the cap, nothing to fetch
                await node.read(writer.write, first, length)
                return
            await self._fetch(node, writer, first, length)

    async def _fetch(self, node: FileNode | VerifierNode, writer: ConsumerWriter, first: int, length: int,
                     version: MutableVersion | None = None) -> None:
        """Read from the grid, as an operation of the node's history and statistics."""
        services = self.services
        mutable = node.is_mutable()
        op = services.history.start("retrieve" if mutable else "download", length, node.storage_index)
        op.phase = "fetching"
        op.progress_of = lambda: writer.written
        try:
            if version is not None:
                await version.read(writer.write, first, length)
                result = None
            else:
                result = await node.read(writer.write, first, length)
            if result is not None:  # an immutable download says where the shares came from
                op.servers = sorted({result.server_names.get(s, b2a(s)[:8])
                                     for ss in result.servers_used.values() for s in ss})
                if result.time_to_first_byte is not None:
                    op.timings["first-byte"] = result.time_to_first_byte
        except BaseException as e:
            op.finish(e)
            raise
        op.finish()
        key = "mutable.bytes_retrieved" if mutable else "downloader.bytes_downloaded"
        services.stats.count("mutable.files_retrieved" if mutable else "downloader.files_downloaded")
        services.stats.count(key, writer.written)

    # -- PUT / POST / DELETE --

    def render_PUT(self, request: Request) -> Any:
        return run_async(request, lambda: self._put(request))

    def _mutable(self, method: str) -> MutableFileNode:
        """The node, to change its contents: a mutable file held through its write cap."""
        node = self.node
        if not isinstance(node, MutableFileNode):
            raise WebError("PUT to an immutable file cap: its contents cannot change (PUT /uri uploads a new file)")
        if node.is_readonly():
            raise WebError(f"{method} to a read-only mutable file cap", http.FORBIDDEN)
        return node

    async def _put(self, request: Request) -> bytes | str | None:
        self._check_path(request)
        t = t_arg(request)
        if t == "uri" and self.parent is not None:
            return await put_child_cap(self.services, request, self.parent, self.name or "")
        if t:
            raise WebError(f"PUT to a file: bad t={t}")
        # replace=false and a file is already there: 409 before anything is written, a
        # mutable one's contents included (Tahoe's early trap)
        check_replace(request, True)
        if self.parent is not None and not self.node.is_mutable():
            return await put_child_file(self.services, request, self.parent, self.name or "")
        node = self._mutable("PUT")
        offset = offset_arg(request)
        condition = request.getHeader(b"if-match")
        if condition is not None and offset is not None:
            raise WebError("PUT to a mutable file: If-Match cannot be combined with offset=")
        data = await read_body(request)
        op = self.services.history.start("publish", len(data), node.storage_index)
        try:
            if offset is None:
                if condition is None:
                    version = await node.overwrite(data)
                else:
                    version = await node.overwrite_if(data, condition.decode("latin-1"))
                request.setHeader(b"etag", version_tag(version).encode("ascii"))
            else:
                if offset < 0:
                    raise WebError("PUT to a mutable file: Invalid offset")
                await node.update(offset, data)
        except BaseException as e:
            op.finish(e)
            raise
        op.finish()
        self.services.stats.count("mutable.files_published")
        self.services.stats.count("mutable.bytes_published", len(data))
        return node.cap.to_string()

    def render_POST(self, request: Request) -> Any:
        return run_async(request, lambda: self._post(request))

    async def _post(self, request: Request) -> bytes | str | None:
        self._check_path(request)
        t = t_arg(request)
        if t == "upload" and self.node.is_mutable():
            node = self._mutable("POST")
            values = (request.args or {}).get(b"file")
            if not values:
                raise WebError("POST t=upload needs a 'file' field")
            await node.overwrite(values[0])
            when_done = arg(request, "when_done")
            if when_done:
                request.redirect(when_done.encode("utf-8"))
                return b""
            return node.cap.to_string()
        if t == "check":
            return await check_object(self.services, request, self.node.cap)
        raise WebError(f"POST to file: bad t={t}")

    def render_DELETE(self, request: Request) -> Any:
        return run_async(request, lambda: self._delete(request))

    async def _delete(self, request: Request) -> bytes | str | None:
        if self.parent is None:
            raise WebError("DELETE needs a directory: DELETE /uri/$DIRCAP/NAME unlinks NAME")
        return await unlink_child(self.services, self.parent, self.name or "")


class VerifierResource(FileResource):
    """A verify cap of a file: it finds and checks the shares (POST t=check) and
    cannot read them, so GET and HEAD are 400; PUT, POST and DELETE are a file's."""

    def __init__(self, services: WebServices, node: VerifierNode, **kwargs: Any) -> None:
        super().__init__(services, node, **kwargs)

    async def _head(self, request: Request) -> bytes | None:
        self._check_path(request)
        t = t_arg(request)
        if t:
            raise WebError(f"HEAD file: bad t={t}")
        raise WebError(VERIFY_CAP_UNREADABLE)

    async def _get(self, request: Request) -> bytes | str | None:
        self._check_path(request)
        raise WebError(VERIFY_CAP_UNREADABLE)


def file_resource(services: WebServices, node: FileNode | VerifierNode, **kwargs: Any) -> FileResource:
    """The resource of a file node, or of a file's verify cap."""
    if isinstance(node, VerifierNode):
        return VerifierResource(services, node, **kwargs)
    return FileResource(services, node, **kwargs)
