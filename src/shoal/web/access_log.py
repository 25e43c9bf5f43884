"""The access log line of the web port, with every cap censored.

Tahoe-LAFS 1.20 (webish._logFormatter) logs ``web: CLIENT METHOD URI CODE
LENGTH`` with the path after ``/uri/``, ``/file/`` and ``/named/`` replaced by
``[CENSORED]`` and the values of the ``uri`` and ``private-key`` query
arguments too. shoal does the same and goes further, since any argument may
carry a cap (``to_dir=`` of a relink, for one): a value holding ``URI:``
(any case, percent-encoded or not) is censored as well. No referrer or user
agent is logged (a browser's referrer is the page's URL, cap included).
"""

from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode

CENSORED = b"[CENSORED]"
_CAP_PATHS = (b"/uri/", b"/file/", b"/named/")
_SECRET_ARGS = {"uri", "private-key"}


def _holds_cap(value: bytes) -> bool:
    return b"uri:" in unquote_to_bytes(value).lower()


def censor_query(query: bytes) -> bytes:
    """The query string with every value that may be a cap or a key replaced."""
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, encoding="utf-8")
    except (UnicodeDecodeError, ValueError):
        return CENSORED
    out = [
        (k, "[CENSORED]" if k in _SECRET_ARGS or _holds_cap(v.encode("utf-8", "surrogateescape")) else v)
        for k, v in pairs
    ]
    return urlencode(out, safe="[]").encode("ascii")


def censor_uri(uri: bytes) -> bytes:
    """A request URI fit for a log: no cap in its path or its arguments."""
    path, sep, query = uri.partition(b"?")
    for prefix in _CAP_PATHS:
        if path.lower().startswith(prefix):
            path = prefix + CENSORED
            break
    else:
        if _holds_cap(path):
            path = CENSORED
    return path + (b"?" + censor_query(query) if sep else b"")


def log_formatter(timestamp: str, request: Any) -> str:
    """twisted.web's access-log hook (HTTPFactory logFormatter): Tahoe's line."""
    address = request.getClientAddress()
    host = getattr(address, "host", "-")
    uri = censor_uri(request.uri or b"").decode("ascii", "replace")
    method = (request.method or b"-").decode("ascii", "replace")
    return f"web: {host} {method} {uri} {request.code} {request.sentLength or '-'}"
