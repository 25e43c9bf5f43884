"""`/uri` (alias `/cap`), `/named/` and `/file/`: caps as URLs (webapi.rst, Tahoe-LAFS 1.20).

GET  /uri?uri=$CAP        302 to /uri/$CAP (other query arguments kept); 400 without uri=
PUT  /uri                 body -> immutable file (format=CHK, default) or a mutable file
                          (format=SDMF|MDMF, or mutable=true); 200 with the cap
PUT  /uri?t=mkdir         a new empty directory; its cap
POST /uri?t=upload        multipart form, field "file"; format= as for PUT; when_done=URL
                          redirects there ("%(uri)s" replaced by the cap),
                          redirect_to_result=true answers 303 to /uri/$CAP, else an HTML
                          page with the cap
POST /uri?t=mkdir, t=mkdir-with-children, t=mkdir-immutable   new directories
/uri/$CAP[/PATH]          the file or directory (shoal.web.files, shoal.web.directories)
/named/$CAP/NAME          the file, NAME only naming it (Content-Type from NAME)
/file/$CAP/NAME           the same, deprecated, GET and HEAD only
"""

import io
from typing import Any
from urllib.parse import quote, urlencode

from twisted.web import http, resource
from twisted.web.server import Request

from shoal.caps import UnknownCap, parse_cap
from shoal.dirnode import DirectoryNode, ImmutableFileNode, Node, UnknownNode, VerifierNode
from shoal.mutable.filenode import MutableFileNode
from shoal.web.common import (
    WalkError,
    WebError,
    arg,
    bool_arg,
    cap_answer,
    format_arg,
    private_key_arg,
    render_sync,
    run_async,
    t_arg,
)
from shoal.web.directories import DirectoryResource, mkdir_unlinked, nodemaker
from shoal.web.files import FileResource, file_resource
from shoal.web.services import WebServices
from shoal.web.templating import render
from shoal.web.upload import create_mutable, read_body, upload_body, upload_file

ONLY = "/uri accepts only PUT, PUT?t=mkdir, POST?t=upload, and POST?t=mkdir"


class ErrorResource(resource.Resource):
    """Answers every method with one error (for failures found while routing)."""

    isLeaf = True

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self._error = error

    def render(self, request: Request) -> bytes:
        def fail() -> bytes:
            raise self._error

        body = render_sync(request, fail)
        return b"" if request.method == b"HEAD" else body


def _segments(request: Request) -> list[str]:
    """The rest of the path (already split and %-decoded by twisted) as text."""
    rest = list(request.postpath or [])
    try:
        return [s.decode("utf-8") for s in rest]
    except UnicodeDecodeError:
        raise WebError("the path is not UTF-8") from None


def resource_for_cap(services: WebServices, name: bytes, request: Request) -> resource.Resource:
    """The resource for /uri/NAME[/rest...] (consumes the rest of the path)."""
    try:
        text = name.decode("utf-8")
        rest = _segments(request)
        request.postpath = []
        if any(s == "" for s in rest[:-1]):  # Tahoe: in getChild, an ErrorPage
            raise WalkError(WebError("The webapi does not allow empty pathname components, i.e. a double slash"))
        if not text.strip():
            raise WebError("empty cap")
        return node_resource(services, nodemaker(services).node_for(parse_cap(text)), text, rest)
    except UnicodeDecodeError:
        return ErrorResource(WebError("Invalid capability: not UTF-8"))
    except Exception as e:  # BadCapError and its kin: answered as Tahoe's
        return ErrorResource(e)


def node_resource(services: WebServices, node: Node, text: str, rest: list[str]) -> resource.Resource:
    """The resource of the node of a cap in a URL (its text `text`)."""
    match node:
        case DirectoryNode():
            return DirectoryResource(services, node, rest)
        case VerifierNode() if node.is_directory:
            return DirectoryResource(services, node, rest)
        case UnknownNode():
            raise WebError(f"'{text[:200]}' is not a valid file- or directory- cap")
    return file_resource(services, node, rest=rest)


class URIRoot(resource.Resource):
    def __init__(self, services: WebServices) -> None:
        super().__init__()
        self.services = services

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            if request.postpath:
                return ErrorResource(WalkError(WebError(
                    "The webapi does not allow empty pathname components, i.e. a double slash")))
            return self
        return resource_for_cap(self.services, path, request)

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._redirect(request))

    def _redirect(self, request: Request) -> bytes:
        uri = arg(request, "uri")
        if uri is None:
            raise WebError("GET /uri requires uri=")
        cap = parse_cap(uri)
        if isinstance(cap, UnknownCap):
            raise WebError("Invalid capability")
        others = [(k.decode("utf-8", "replace"), v.decode("utf-8", "replace"))
                  for k, vs in (request.args or {}).items() if k != b"uri" for v in vs]
        target = "/uri/" + quote(uri, safe="")
        if others:
            target += "?" + urlencode(others)
        request.redirect(target.encode("ascii"))
        return b""

    def render_PUT(self, request: Request) -> Any:
        return run_async(request, lambda: self._put(request))

    async def _put(self, request: Request) -> str:
        t = t_arg(request)
        if t == "":
            fmt = format_arg(request, "CHK")
            if fmt == "CHK":
                return cap_answer(request, await upload_body(self.services, request))
            key = await private_key_arg(request)
            node = await create_mutable(self.services, await read_body(request), fmt or "SDMF", key)
            return cap_answer(request, str(node.cap.to_string()))
        if t == "mkdir":  # Tahoe takes no private-key= here
            return cap_answer(request, await mkdir_unlinked(self.services, request, "mkdir"))
        raise WebError(ONLY)

    def render_POST(self, request: Request) -> Any:
        return run_async(request, lambda: self._post(request))

    async def _post(self, request: Request) -> bytes | str:
        t = t_arg(request)
        if t in ("", "upload"):
            return await self._post_upload(request)
        if t in ("mkdir", "mkdir-with-children", "mkdir-immutable"):
            key = await private_key_arg(request) if t != "mkdir-immutable" else None
            cap = await mkdir_unlinked(self.services, request, t, key)
            if bool_arg(request, "redirect_to_result"):
                request.setResponseCode(http.SEE_OTHER)
                request.setHeader(b"location", ("/uri/" + quote(cap, safe="")).encode("ascii"))
                return b""
            return cap_answer(request, cap)
        raise WebError(ONLY)

    async def _post_upload(self, request: Request) -> bytes | str:
        fields = request.args or {}
        values = fields.get(b"file")
        if not values:
            raise WebError("POST /uri?t=upload needs a form field named 'file'")
        data = values[0]
        fmt = format_arg(request, "CHK")
        if fmt == "CHK":
            result = await upload_file(self.services, io.BytesIO(data), len(data))
            cap = str(result.cap)
        else:
            node = await create_mutable(self.services, data, fmt or "SDMF")  # Tahoe takes no private-key= here
            cap = str(node.cap.to_string())
        when_done = arg(request, "when_done")
        if when_done:
            request.redirect(when_done.replace("%(uri)s", quote(cap, safe="")).encode("utf-8"))
            return b""
        if bool_arg(request, "redirect_to_result"):
            request.setResponseCode(http.SEE_OTHER)
            request.setHeader(b"location", ("/uri/" + quote(cap, safe="")).encode("ascii"))
            return b""
        if fmt != "CHK":
            return cap_answer(request, cap)  # Tahoe 1.20 (web/unlinked.py): a mutable upload answers its cap
        return upload_results_page(request, cap, len(data))


def upload_results_page(request: Request, cap: str, size: int) -> str:
    """The page Tahoe 1.20 answers an immutable POST /uri?t=upload with (upload-results.xhtml):
    title "File Uploaded", "Uploading File... done!", the cap in ``URI: <tt><span>``, a
    download link and the size, so a script scraping Tahoe's page finds the cap the same way."""
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    return render("upload_results.html", title="File Uploaded", cap=cap, link="/uri/" + quote(cap, safe=""),
                  size=size)


class NamedRoot(resource.Resource):
    """/named/$CAP/NAME and (get_only) the deprecated /file/$CAP/NAME."""

    def __init__(self, services: WebServices, get_only: bool = False) -> None:
        super().__init__()
        self.services = services
        self.get_only = get_only

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        try:
            if self.get_only and request.method not in (b"GET", b"HEAD"):
                raise WebError("/file can only be used with GET or HEAD")
            if path == b"":
                raise WebError("/file must be followed by a file-cap and a name", http.NOT_FOUND)
            rest = _segments(request)
            request.postpath = []
            node = nodemaker(self.services).node_for(parse_cap(path.decode("utf-8")))
            if not isinstance(node, ImmutableFileNode | MutableFileNode):
                raise WebError(f"{path.decode('utf-8')[:200]!r} is not a file-cap")
            name = rest[-1] if rest and rest[-1] else None
            return FileResource(self.services, node, name=name)
        except Exception as e:
            return ErrorResource(e)

    def render_GET(self, request: Request) -> bytes:
        return ErrorResource(WebError("/file must be followed by a file-cap and a name", http.NOT_FOUND)).render(
            request
        )
