"""Run HTTP requests through a real twisted.web Site in memory: no sockets, no TLS, no reactor.

``MemoryHttp(site).request(method, path, headers, body)`` writes the request
bytes into a fresh HTTPChannel over a StringTransport and parses what the
server wrote back. With synchronous thread runners (``run_now``) the whole
request completes inside the call; a response still incomplete afterwards is
an error, so a test never waits on a timer.
"""

from collections.abc import Iterable
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.testing import StringTransport
from twisted.web.server import Site


def run_now(fn: Any, *args: Any, **kwargs: Any) -> "defer.Deferred[Any]":
    """A thread runner for tests: call now, on this thread."""
    return defer.maybeDeferred(fn, *args, **kwargs)


async def no_turn() -> None:
    """A reactor-turn stand-in for tests: carry on immediately."""


@attrs.frozen
class MemoryResponse:
    status: int
    headers: dict[bytes, list[bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


class IncompleteResponse(AssertionError):
    """The server had not finished its answer when the request's bytes were all delivered."""


class MemoryHttp:
    def __init__(self, site: Site) -> None:
        self.site = site

    def request(self, method: bytes, path: bytes, headers: Iterable[tuple[bytes, bytes]] = (),
                body: bytes | None = None, *, raw_body: bytes | None = None) -> MemoryResponse:
        """Send one request; ``raw_body`` is sent as is (with no Content-Length of ours)."""
        lines = [method + b" " + path + b" HTTP/1.1", b"Host: memory"]
        lines += [name + b": " + value for name, value in headers]
        if body is not None:
            lines.append(b"Content-Length: %d" % len(body))
        payload = b"\r\n".join(lines) + b"\r\n\r\n" + (body if body is not None else raw_body or b"")
        transport = StringTransport()
        channel = self.site.buildProtocol(None)
        channel.makeConnection(transport)
        channel.dataReceived(payload)
        response = _parse(transport.value())
        channel.connectionLost(None)
        return response


def _parse(data: bytes) -> MemoryResponse:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise IncompleteResponse(f"no complete response head in {data[:200]!r}")
    status_line, *header_lines = head.split(b"\r\n")
    status = int(status_line.split(b" ")[1])
    headers: dict[bytes, list[bytes]] = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = headers.get(b"content-length")
    if length is None:  # twisted's own refusals (a malformed header) close the connection instead
        return MemoryResponse(status, headers, rest)
    size = int(length[0])
    if len(rest) < size:
        raise IncompleteResponse(f"body has {len(rest)} of {size} bytes")
    return MemoryResponse(status, headers, rest[:size])
