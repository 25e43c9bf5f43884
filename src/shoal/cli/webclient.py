"""A blocking, streaming HTTP client for a client node's web API (Tahoe-LAFS
1.20 docs/frontends/webapi.rst): the only way the CLI talks to a node.

Bodies go out in chunks (a file with its Content-Length, or chunked
transfer-encoding when the length is unknown) and responses are read in
chunks, so memory stays bounded whatever the file size. Every answer outside
2xx becomes a WebAPIError holding the server's own text on one line; every
connection failure becomes NodeUnreachable. Requests carry
``Authorization: tahoe-lafs <api_auth_token>`` when the token is known (the
node's /private/ area needs it; other pages ignore it).
"""

from __future__ import annotations

import html.parser
import http.client
import json
import os
import re
import socket
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from shoal.cli.errors import CLIError, UsageError

CHUNK = 1024 * 1024
MAX_ERROR_TEXT = 64 * 1024
USER_AGENT = "shoal-cli"

Progress = Callable[[int], None]


MAX_LINE = 16 * 1024 * 1024  # one line of a streamed answer (a deep-check result)


class WebAPIError(CLIError):
    """The node answered with an error status; `text` is its own explanation."""

    def __init__(self, status: int, reason: str, text: str, method: str, path: str) -> None:
        self.status = status
        self.reason = reason
        self.text = text
        self.method = method
        self.path = path
        super().__init__(f"{status} {reason}: {text}" if text else f"{status} {reason} ({method} {path})")


class NodeUnreachable(CLIError):
    """No connection to the node's web API."""


def one_line(text: str, limit: int = 2000) -> str:
    """Collapse a server's (possibly multi-line) text to one line, capped."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class _ErrorPageText(html.parser.HTMLParser):
    """The title, h1 and p texts of an HTML error page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: dict[str, list[str]] = {"title": [], "h1": [], "p": []}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.parts and not self.parts[tag]:
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.parts[self._in].append(data)

    def text(self, tag: str) -> str:
        return one_line("".join(self.parts[tag]))


def error_text(raw: bytes, content_type: str | None) -> str:
    """The one line a node's error answer says. Text is collapsed to one line; an
    HTML page (Tahoe 1.20's answer to a failure found while walking a path,
    twisted's ErrorPage: <h1>Error</h1><p>TEXT</p>, or <h1>TEXT</h1><p>no details</p>)
    gives its text, not its markup."""
    body = raw.decode("utf-8", errors="replace")
    if (content_type or "").split(";")[0].strip().lower() != "text/html":
        return one_line(body)
    page = _ErrorPageText()
    try:
        page.feed(body)
        page.close()
    except Exception:  # malformed markup: show what text there is
        return one_line(re.sub(r"<[^>]*>", " ", body))
    brief, detail = page.text("h1"), page.text("p")
    if brief and detail:
        if brief == "Error":
            return detail
        return brief if detail == "no details" else f"{brief}: {detail}"
    return brief or detail or page.text("title") or one_line(re.sub(r"<[^>]*>", " ", body))


def quote_path(path: str) -> str:
    """Each segment of a grid path percent-encoded as UTF-8 (slashes kept)."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/"))


def cap_url(cap: str, path: str = "") -> str:
    """The web API path (no leading slash) of `path` under directory or file `cap`."""
    url = "uri/" + urllib.parse.quote(cap, safe="")
    return url + "/" + quote_path(path) if path else url


def file_chunks(f: BinaryIO, progress: Progress | None = None, chunk: int = CHUNK) -> Iterator[bytes]:
    while data := f.read(chunk):
        if progress:
            progress(len(data))
        yield data


class Response:
    """A streaming response: read it in chunks, or whole (small answers only)."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.status = resp.status
        length = resp.getheader("content-length")
        self.length = int(length) if length and length.isdigit() else None

    def header(self, name: str) -> str | None:
        return self._resp.getheader(name)

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        try:
            while data := self._resp.read(size):
                yield data
        finally:
            self.close()

    def save(self, dest: str, progress: Progress | None = None) -> None:
        """Stream the body into `dest` through a temporary file in the same directory,
        renamed into place only once complete (a failed download leaves nothing behind)."""
        fd, tmp = tempfile.mkstemp(prefix=".shoal-", suffix=".part", dir=os.path.dirname(os.path.abspath(dest)))
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in self.chunks():
                    f.write(chunk)
                    if progress:
                        progress(len(chunk))
            os.replace(tmp, dest)
        except BaseException:
            os.unlink(tmp)
            raise

    def lines(self) -> Iterator[bytes]:
        """The body's lines, each read at most MAX_LINE bytes far (CLIError past that)."""
        try:
            while line := self._resp.readline(MAX_LINE + 1):
                if len(line) > MAX_LINE:
                    raise CLIError(f"the node sent a line longer than {MAX_LINE} bytes")
                yield line.rstrip(b"\r\n")
        finally:
            self.close()

    def read(self) -> bytes:
        try:
            return self._resp.read()
        finally:
            self.close()

    def text(self) -> str:
        return self.read().decode("utf-8", errors="replace").strip()

    def json(self) -> Any:
        body = self.read()
        try:
            return json.loads(body)
        except ValueError:
            raise CLIError(f"the node sent something that is not JSON: {one_line(body.decode('utf-8', 'replace'), 200)}") from None

    def close(self) -> None:
        self._resp.close()
        self._conn.close()


class WebClient:
    def __init__(self, node_url: str, token: str | None = None, timeout: float | None = None) -> None:
        parsed = urllib.parse.urlsplit(node_url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(f"the node URL must look like http://HOST:PORT/, not {node_url!r}")
        self.node_url = node_url.strip().rstrip("/") + "/"
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._base = parsed.path.rstrip("/") + "/"
        self._token = token
        self._timeout = timeout

    def url(self, path: str) -> str:
        return self.node_url + path.lstrip("/")

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout, blocksize=CHUNK)

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: bytes | BinaryIO | Iterable[bytes] | None = None,
        length: int | None = None,
        progress: Progress | None = None,
        ok: Iterable[int] = (),
        content_type: str | None = None,
    ) -> Response:
        """Send one request; 2xx (or a status in `ok`) gives a Response, others raise."""
        target = self._base + path.lstrip("/")
        if query:
            target += "?" + urllib.parse.urlencode(query)
        headers = {"User-Agent": USER_AGENT, "Accept": "text/plain, application/json, application/octet-stream"}
        if self._token:
            headers["Authorization"] = f"tahoe-lafs {self._token}"
        if content_type:
            headers["Content-Type"] = content_type
        send: bytes | Iterable[bytes] | None
        if body is None:
            send = None
            if method in ("PUT", "POST"):
                headers["Content-Length"] = "0"
        elif isinstance(body, bytes):
            send = body
            headers["Content-Length"] = str(len(body))
        elif hasattr(body, "read"):
            send = file_chunks(body, progress)  # type: ignore[arg-type]
            if length is not None:
                headers["Content-Length"] = str(length)
        else:
            send = body  # an iterable of chunks
            if length is not None:
                headers["Content-Length"] = str(length)
        conn = self._connect()
        try:
            # an iterable without Content-Length goes out chunked (http.client decides)
            conn.request(method, target, body=send, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise self._unreachable(e) from None
        if 200 <= resp.status < 300 or resp.status in ok:
            return Response(conn, resp)
        try:
            raw = resp.read(MAX_ERROR_TEXT)
        except (OSError, http.client.HTTPException):
            raw = b""
        finally:
            resp.close()
            conn.close()
        raise WebAPIError(resp.status, resp.reason, error_text(raw, resp.getheader("content-type")), method, path)

    def _unreachable(self, e: BaseException) -> NodeUnreachable:
        if isinstance(e, ConnectionRefusedError):
            why = "connection refused (is the node running? `shoal run NODEDIR` starts it)"
        elif isinstance(e, socket.timeout | TimeoutError):
            why = "timed out"
        elif isinstance(e, OSError) and e.strerror:
            why = e.strerror
        else:
            why = str(e) or type(e).__name__
        return NodeUnreachable(f"cannot reach the node at {self.node_url}: {why}")

    # conveniences for small answers
    def get_json(self, path: str, query: dict[str, str] | None = None) -> Any:
        return self.request("GET", path, {"t": "json", **(query or {})}).json()

    def post_text(self, path: str, query: dict[str, str], body: bytes | None = None) -> str:
        return self.request("POST", path, query, body=body).text()

    def describe(self, cap: str, path: str = "") -> tuple[str, dict[str, Any]] | None:
        """(node type, info) of a grid object from its t=json, or None when nothing is there (404)."""
        try:
            kind, info = self.get_json(cap_url(cap, path.rstrip("/")))
        except WebAPIError as e:
            if e.status == 404:
                return None
            raise
        return str(kind), info
