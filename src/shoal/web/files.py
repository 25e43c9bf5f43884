"""`/uri` (alias `/cap`): upload with PUT, download with GET (Range supported).

PUT /uri                 body = file contents -> 200, the cap as text
GET /uri/$CAP            -> the bytes (Range: bytes=a-b -> 206); ?filename= sets the type,
                            ?save=true asks the browser to save
GET /uri?uri=$CAP        -> redirect to /uri/$CAP
"""

import mimetypes
import re
from typing import Any
from urllib.parse import quote

from twisted.web import http, resource
from twisted.web.server import Request

from shoal.caps import CHKCap, LiteralCap, parse_cap
from shoal.web.common import FileService, WebError, arg, run_async

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One byte range -> (first, last) inclusive; None to send everything; WebError 416."""
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # unsupported forms (several ranges) are ignored, as RFC 7233 allows
    if m.group(1):
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else size - 1
    else:
        suffix = int(m.group(2))
        if suffix == 0:
            raise WebError("unsatisfiable range", http.REQUESTED_RANGE_NOT_SATISFIABLE)
        first, last = max(0, size - suffix), size - 1
    last = min(last, size - 1)
    if first > last or first >= size:
        raise WebError(f"range not satisfiable for a file of {size} bytes", http.REQUESTED_RANGE_NOT_SATISFIABLE)
    return first, last


class FileNode(resource.Resource):
    isLeaf = True

    def __init__(self, files: FileService, cap_text: str) -> None:
        super().__init__()
        self._files = files
        self._cap_text = cap_text

    def render_GET(self, request: Request) -> Any:
        return run_async(request, lambda: self._get(request))

    def render_HEAD(self, request: Request) -> Any:
        return run_async(request, lambda: self._get(request, head=True))

    async def _get(self, request: Request, head: bool = False) -> bytes | None:
        cap = parse_cap(self._cap_text)
        if not isinstance(cap, CHKCap | LiteralCap):
            raise WebError(f"{type(cap).__name__} is not an immutable file cap (directories and mutable files come later)")
        t = arg(request, "t")
        if t == "uri":
            return cap.to_string().encode("ascii")
        if t not in (None, ""):
            raise WebError(f"unsupported t={t} for a file")
        size = len(cap.data) if isinstance(cap, LiteralCap) else cap.size
        filename = arg(request, "filename") or ""
        ctype = mimetypes.guess_type(filename)[0] if filename else None
        request.setHeader(b"content-type", (ctype or "application/octet-stream").encode("ascii"))
        request.setHeader(b"accept-ranges", b"bytes")
        request.setHeader(b"etag", b'"%s"' % cap.to_string().encode("ascii"))
        if arg(request, "save", "false") == "true":
            request.setHeader(b"content-disposition", f"attachment; filename*=utf-8''{quote(filename)}".encode())
        first, last = 0, size - 1
        rng = request.getHeader(b"range")
        if rng and size > 0:
            span = parse_range(rng.decode("latin-1"), size)
            if span is not None:
                first, last = span
                request.setResponseCode(http.PARTIAL_CONTENT)
                request.setHeader(b"content-range", b"bytes %d-%d/%d" % (first, last, size))
        length = last - first + 1 if size else 0
        request.setHeader(b"content-length", b"%d" % length)
        if head or length == 0:
            return b""
        if isinstance(cap, LiteralCap):
            return cap.data[first : last + 1]
        await self._files.download(cap, request.write, offset=first, length=length)
        return None


class URIRoot(resource.Resource):
    def __init__(self, files: FileService) -> None:
        super().__init__()
        self._files = files

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            return self
        try:
            text = path.decode("ascii")
        except UnicodeDecodeError:
            return resource.ErrorPage(http.BAD_REQUEST, "Invalid capability", "not ASCII")
        return FileNode(self._files, text)

    def render_GET(self, request: Request) -> Any:
        uri = arg(request, "uri")
        if not uri:
            request.setResponseCode(http.BAD_REQUEST)
            return b"GET /uri needs ?uri=CAP\n"
        request.redirect(b"/uri/" + quote(uri, safe=":").encode("ascii"))
        return b""

    def render_PUT(self, request: Request) -> Any:
        return run_async(request, lambda: self._put(request))

    async def _put(self, request: Request) -> bytes:
        t = arg(request, "t")
        if t not in (None, "", "upload"):
            raise WebError(f"unsupported t={t} for PUT /uri")
        fmt = (arg(request, "format") or "CHK").upper()
        if fmt != "CHK" or arg(request, "mutable", "false") == "true":
            raise WebError("only immutable (CHK) uploads are supported so far")
        body = request.content
        if body is None:
            raise WebError("PUT /uri needs a body")
        body.seek(0, 2)
        size = body.tell()
        body.seek(0)
        result = await self._files.upload(body, size)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return result.cap.encode("ascii") if isinstance(result.cap, str) else result.cap.to_string().encode()
