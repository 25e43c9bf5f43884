"""`/static/NAME`: the few files the pages load (their style sheet and the
directory page's upload script), from shoal/web/static/ in the package. Only
the names in FILES are served; anything else is 404, so no path reaches the
disk beyond this list."""

from importlib import resources

from twisted.web import http, resource
from twisted.web.server import Request

from shoal.web.common import WebError, render_sync

FILES = {
    "shoal.css": b"text/css; charset=utf-8",
    "upload.js": b"text/javascript; charset=utf-8",
}


def static_bytes(name: str) -> bytes:
    """The contents of an allowlisted static file (KeyError for any other name)."""
    if name not in FILES:
        raise KeyError(name)
    return resources.files("shoal.web").joinpath("static", name).read_bytes()


class StaticFiles(resource.Resource):
    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[str, bytes] = {}

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        return _StaticFile(self._cache, path.decode("ascii", "replace"))

    def render_GET(self, request: Request) -> bytes:
        return _StaticFile(self._cache, "").render_GET(request)


class _StaticFile(resource.Resource):
    isLeaf = True

    def __init__(self, cache: dict[str, bytes], name: str) -> None:
        super().__init__()
        self._cache = cache
        self._name = name

    def render_GET(self, request: Request) -> bytes:
        return render_sync(request, lambda: self._body(request))

    render_HEAD = render_GET

    def _body(self, request: Request) -> bytes:
        name = self._name
        if name not in FILES or request.postpath:
            raise WebError("no such static file", http.NOT_FOUND)
        if name not in self._cache:
            self._cache[name] = static_bytes(name)
        request.setHeader(b"content-type", FILES[name])
        request.setHeader(b"cache-control", b"max-age=3600")
        return self._cache[name]
