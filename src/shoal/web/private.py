"""`/private/`: the part of the web API that needs the node's API token.

As in Tahoe-LAFS 1.20, the token is the text of private/api_auth_token in
the node directory (created by the node when missing) and a request proves
it knows it with the header `Authorization: tahoe-lafs <token>`. Without it
the answer is 401; a wrong token is 403. Compared in constant time.

Under /private/ shoal serves `api_auth_token` checks only: GET /private/
answers "ok" when the token is right (Tahoe's Eliot log WebSocket
/private/logs/v1 is not implemented: 501).
"""

import hmac

from twisted.web import http, resource
from twisted.web.server import Request

from shoal.web.common import NotAvailable, WebError, render_sync

SCHEME = b"tahoe-lafs"


def check_token(request: Request, token: bytes) -> None:
    header = request.getHeader(b"authorization")
    if not header:
        request.setHeader(b"www-authenticate", SCHEME)
        raise WebError("this page needs 'Authorization: tahoe-lafs <api_auth_token>'", http.UNAUTHORIZED)
    scheme, _, given = header.strip().partition(b" ")
    if scheme.lower() != SCHEME or not hmac.compare_digest(given.strip(), token):
        raise WebError("wrong API token", http.FORBIDDEN)


class PrivateRoot(resource.Resource):
    def __init__(self, token: bytes) -> None:
        super().__init__()
        self._token = token

    def getChild(self, path: bytes, request: Request) -> resource.Resource:
        return _Guarded(self._token, path)

    def render(self, request: Request) -> bytes:
        return _Guarded(self._token, b"").render(request)


class _Guarded(resource.Resource):
    isLeaf = True

    def __init__(self, token: bytes, name: bytes) -> None:
        super().__init__()
        self._token = token
        self._name = name

    def render(self, request: Request) -> bytes:
        def answer() -> str:
            check_token(request, self._token)
            if self._name == b"" and request.method in (b"GET", b"HEAD"):
                return "ok: this request carried the right API token\n"
            if self._name == b"logs":
                raise NotAvailable("the Eliot log stream is not implemented by shoal")
            raise WebError("no such private resource", http.NOT_FOUND)

        return render_sync(request, answer)
