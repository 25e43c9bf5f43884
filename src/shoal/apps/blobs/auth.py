"""``Authorization: Token base64(user:token)`` (Soledad's ``auth.py`` and its
client's ``_http.py``), checked against a tokens file.

The file holds one ``user:token`` per line (blank lines and ``#`` comments
ignored), as Soledad's services tokens file; it is re-read when its
modification time or size changes, so an operator can add users to a
running gateway. Tokens are compared in constant time. A request without
the header, with a malformed one, an unknown user, a wrong token, or a URL
naming another user than the one authenticated is Unauthorized (401).
"""

import base64
import binascii
import hmac
import os

from shoal.apps.blobs.errors import Unauthorized
from shoal.apps.blobs.rules import VALID_NAME


class TokenFileError(Unauthorized):
    """The tokens file is unreadable or malformed (the operator's fault)."""

    status = 500


def parse_tokens(text: str, path: str = "tokens file") -> dict[str, str]:
    tokens: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, token = line.partition(":")
        user, token = user.strip(), token.strip()
        if not sep or not VALID_NAME.fullmatch(user) or not token:
            raise TokenFileError(f"{path}:{lineno}: want 'user:token' with a user matching {VALID_NAME.pattern}")
        tokens[user] = token
    return tokens


def credentials(header: str | None) -> tuple[str, str]:
    """(user, token) from an Authorization header value."""
    if not header:
        raise Unauthorized("no Authorization header: send 'Token base64(user:token)'")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "token" or not encoded.strip():
        raise Unauthorized(f"Authorization scheme must be Token, not {scheme!r}")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("Authorization Token is not base64 of 'user:token'") from None
    user, sep, token = decoded.partition(":")
    if not sep:
        raise Unauthorized("Authorization Token is not base64 of 'user:token'")
    return user, token


def token_header(user: str, token: str) -> str:
    """The Authorization header value a client sends (for clients and tests)."""
    return "Token " + base64.b64encode(f"{user}:{token}".encode()).decode("ascii")


class TokenFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._tokens: dict[str, str] = {}

    def tokens(self) -> dict[str, str]:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise TokenFileError(f"cannot read the blob service's tokens file {self.path}: {e.strerror}") from None
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._stamp:
            with open(self.path, encoding="utf-8") as f:
                self._tokens = parse_tokens(f.read(), self.path)
            self._stamp = stamp
        return self._tokens

    def authenticate(self, header: str | None, url_user: str) -> str:
        """The user a request acts as; Unauthorized unless its token is right
        for `url_user`."""
        user, token = credentials(header)
        known = self.tokens().get(user)
        if known is None or not hmac.compare_digest(known.encode(), token.encode()):
            raise Unauthorized(f"unknown user or wrong token for {user!r}")
        if user != url_user:
            raise Unauthorized(f"authenticated as {user!r}, which may not use /{url_user}")
        return user
