"""The client node's web root: `/` (welcome), `/uri` and `/cap` (files and
directories), `/named/`, `/file/`, `/operations/`, `/status/`, `/storage`, `/statistics`,
`/private/`, `/static/`. Anything else is 404."""

from twisted.web import resource
from twisted.web.server import Request

from shoal.web.common import WebError
from shoal.web.helper_status import HelperStatusPage
from shoal.web.private import PrivateRoot
from shoal.web.services import WebServices
from shoal.web.staticfiles import StaticFiles
from shoal.web.statistics import StatisticsPage
from shoal.web.status import StatusPage
from shoal.web.storagepage import StoragePage
from shoal.web.uri import ErrorResource, NamedRoot, URIRoot
from shoal.web.welcome import WelcomePage, WelcomeSource


class Root(resource.Resource):
    def __init__(self, welcome: WelcomeSource, services: WebServices) -> None:
        super().__init__()
        self.services = services
        self._welcome = WelcomePage(welcome, services.history, tools=services.nodemaker is not None)
        children: dict[bytes, resource.Resource] = {
            b"status": StatusPage(services.history, services.checker_status),
            b"statistics": StatisticsPage(services.stats),
            b"operations": services.operations,
            b"static": StaticFiles(),
            b"storage": StoragePage(services.storage),
        }
        if services.auth_token is not None:
            children[b"private"] = PrivateRoot(services.auth_token)
        if services.files is not None:
            uri = URIRoot(services)
            children[b"uri"] = uri
            children[b"cap"] = uri
            children[b"named"] = NamedRoot(services)
            children[b"file"] = NamedRoot(services, get_only=True)
        for name, child in children.items():
            self.putChild(name, child)  # type: ignore[arg-type]  # zope interface typing
        # Tahoe's /helper_status: the upload helper's counters ({} without one)
        self.putChild(b"helper_status", HelperStatusPage(services.helper_stats, services.helper_uploads))  # type: ignore[arg-type]

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        if path == b"":
            return self._welcome
        return ErrorResource(WebError("no such page", 404))

    def render_GET(self, request: Request) -> bytes:
        return self._welcome.render_GET(request)
