"""The client node's web root: `/` (welcome), `/uri` and `/cap` (files)."""

from twisted.web import resource
from twisted.web.server import Request

from shoal.web.common import FileService
from shoal.web.files import URIRoot
from shoal.web.welcome import WelcomePage, WelcomeSource


class Root(resource.Resource):
    def __init__(self, welcome: WelcomeSource, files: FileService | None) -> None:
        super().__init__()
        self._welcome = WelcomePage(welcome)
        if files is not None:
            uri = URIRoot(files)
            self.putChild(b"uri", uri)  # type: ignore[arg-type]  # zope interface typing
            self.putChild(b"cap", uri)  # type: ignore[arg-type]

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            return self._welcome
        return resource.NoResource("no such page")

    def render_GET(self, request: Request) -> bytes:
        return self._welcome.render_GET(request)
