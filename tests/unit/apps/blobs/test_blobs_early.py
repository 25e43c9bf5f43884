"""The blob port answers 401 and 413 from the headers, before any body byte is
read (issue #15: a 125 MB unauthenticated body was spooled to disk first)."""

import socket

import pytest
from twisted.web import resource

from shoal.apps.blobs.auth import TokenFile, token_header
from shoal.apps.blobs.early import MAX_SMALL_BODY, BlobSite
from shoal.testing import reactor_thread
from shoal.testing.reactor_thread import reactor

QUOTA = 10_000


class Echo(resource.Resource):
    """Answers with the size of the body it was given (so it ran after the body)."""

    isLeaf = True
    rendered = 0

    def render(self, request):
        Echo.rendered += 1
        return b"got %d" % len(request.content.read())


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    tokens = tmp_path_factory.mktemp("blobs") / "tokens"
    tokens.write_text("alice:secret\n")
    site = BlobSite(Echo(), TokenFile(str(tokens)), QUOTA)
    listening = reactor_thread.call(lambda: reactor.listenTCP(0, site, interface="127.0.0.1"))
    yield listening.getHost().port
    reactor_thread.call(listening.stopListening)


def exchange(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send the request head (and `body`), then read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def head(method: str, path: str, length: int | None, auth: str | None = None, chunked: bool = False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: x", "Connection: close"]
    if auth:
        lines.append(f"Authorization: {auth}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def answer_without_sending_the_body(port: int, request_head: bytes) -> bytes:
    """The answer to a head that promises a body never sent: only an early answer comes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request_head)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def test_no_token_is_401_before_the_body(port):
    before = Echo.rendered
    answer = answer_without_sending_the_body(port, head("PUT", "/blobs/alice/x", 125_000_000))
    assert answer.startswith(b"HTTP/1.1 401 ") and b"\r\nwww-authenticate: Token realm=" in answer
    wrong = answer_without_sending_the_body(port, head("POST", "/stream/alice?direction=upload", 10**9,
                                                       token_header("alice", "nope")))
    assert wrong.startswith(b"HTTP/1.1 401 ")
    other = answer_without_sending_the_body(port, head("PUT", "/blobs/bob/x", 10**6, token_header("alice", "secret")))
    assert other.startswith(b"HTTP/1.1 401 ")
    assert Echo.rendered == before


def test_a_body_over_the_route_limit_is_413_before_the_body(port):
    auth = token_header("alice", "secret")
    answer = answer_without_sending_the_body(port, head("PUT", "/blobs/alice/x", QUOTA + 1, auth))
    assert answer.startswith(b"HTTP/1.1 413 ")
    answer = answer_without_sending_the_body(port, head("POST", "/blobs/alice/x", MAX_SMALL_BODY + 1, auth))
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_chunked_body_is_cut_at_the_limit(port):
    auth = token_header("alice", "secret")
    chunk = b"%x\r\n%s\r\n" % (4000, b"x" * 4000)
    answer = exchange(port, head("PUT", "/blobs/alice/x", None, auth, chunked=True), chunk * 3 + b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_good_requests_pass(port):
    auth = token_header("alice", "secret")
    answer = exchange(port, head("PUT", "/blobs/alice/x", QUOTA, auth), b"y" * QUOTA)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"got %d" % QUOTA)
    answer = exchange(port, head("GET", "/", None))  # unguarded routes need no token
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_small_unauthenticated_body_is_read_and_answered_by_the_resource(port):
    before = Echo.rendered
    answer = exchange(port, head("PUT", "/blobs/alice/x", 4, None), b"data")
    assert answer.startswith(b"HTTP/1.1 200 ") and Echo.rendered == before + 1  # Echo has no auth of its own


class FailingBackend:
    """A backend whose listing fails with a message naming the gateway's cap."""

    cap = "URI:DIR2:ovjlmqyxiqamcaaoqq4iagvysi:pgx3ovnp5nyxjzr7ii3xbvsspxjb3ucihlm4uszbdmu5o4lvuawa"

    async def listing(self, *args, **kwargs):
        from shoal.apps.blobs.errors import BlobStoreError

        raise BlobStoreError(f"cannot update blob directory {self.cap[:40]}...: boom")


def test_error_answers_never_show_the_gateways_caps(tmp_path):
    """The root and users' directory caps are the gateway's: a blob user never sees one."""
    from shoal.apps.blobs.resource import BlobsResource

    tokens = tmp_path / "tokens"
    tokens.write_text("alice:secret\n")
    root = resource.Resource()
    root.putChild(b"blobs", BlobsResource(FailingBackend(), TokenFile(str(tokens))))
    site = BlobSite(root, TokenFile(str(tokens)), QUOTA)
    listening = reactor_thread.call(lambda: reactor.listenTCP(0, site, interface="127.0.0.1"))
    try:
        answer = exchange(listening.getHost().port,
                          head("GET", "/blobs/alice/", None, token_header("alice", "secret")))
    finally:
        reactor_thread.call(listening.stopListening)
    assert answer.startswith(b"HTTP/1.1 500 ") and b"boom" in answer
    assert b"ovjlmqyx" not in answer and b"URI:[CENSORED]" in answer
