"""The SFTP accounts file, in Tahoe-LAFS 1.20's format (allmydata/frontends/auth.py).

One account a line: ``USER KEYTYPE BASE64KEY [COMMENT...] ROOTCAP``; blank lines and
lines starting with ``#`` are skipped. As Tahoe 1.20, a password line
(``USER PASSWORD ROOTCAP``, the second field not starting with ``ssh-``) is refused
with a clear error: password logins are not supported. Errors name the file and the
line number, never the root cap or the key.
"""

import base64
import binascii
import struct

import attrs

from shoal.errors import CallerError

MAX_ACCOUNTS_BYTES = 1 << 20
MAX_USER_LENGTH = 64
MAX_CAP_LENGTH = 2048
MAX_KEY_BYTES = 16 * 1024
KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ssh-dss",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
})
PASSWORD_REFUSED = "Password-based authentication is not supported; configure key-based authentication instead."


class AccountsError(CallerError):
    """The accounts file is malformed (the message names the file and line)."""


@attrs.frozen
class Account:
    user: str
    key_type: str
    key_blob: bytes = attrs.field(repr=False)  # the SSH wire encoding of the public key
    rootcap: str = attrs.field(repr=False)

    def key_matches(self, key_type: str, key_blob: bytes) -> bool:
        return key_type == self.key_type and key_blob == self.key_blob


def valid_user(user: str) -> bool:
    return 0 < len(user) <= MAX_USER_LENGTH and user.isprintable() and not any(c.isspace() for c in user)


def _blob_type(blob: bytes) -> str | None:
    """The key type named inside an SSH public key blob (its first string)."""
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    if length > 64 or len(blob) < 4 + length:
        return None
    try:
        return blob[4:4 + length].decode("ascii")
    except UnicodeDecodeError:
        return None


def parse_line(line: str, where: str) -> Account:
    fields = line.split()
    if len(fields) < 3:
        raise AccountsError(f"{where}: expected USER KEYTYPE KEY ROOTCAP")
    user, kind = fields[0], fields[1]
    if not kind.startswith("ssh-") and not kind.startswith("ecdsa-"):
        raise AccountsError(f"{where}: {PASSWORD_REFUSED}")
    if len(fields) < 4:
        raise AccountsError(f"{where}: expected USER KEYTYPE KEY ROOTCAP")
    if not valid_user(user):
        raise AccountsError(f"{where}: the user name must be 1 to {MAX_USER_LENGTH} printable characters")
    if kind not in KEY_TYPES:
        raise AccountsError(f"{where}: unsupported key type {kind[:40]!r}")
    encoded, rootcap = fields[2], fields[-1]
    if len(encoded) > MAX_KEY_BYTES * 4 // 3 + 4:
        raise AccountsError(f"{where}: the key is too long")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise AccountsError(f"{where}: the key is not base64") from None
    if _blob_type(blob) != kind:
        raise AccountsError(f"{where}: the key is not a {kind} key")
    if not rootcap.startswith("URI:") or len(rootcap) > MAX_CAP_LENGTH:
        raise AccountsError(f"{where}: the last field must be a root directory cap (URI:...)")
    return Account(user, kind, blob, rootcap)


def parse_accounts(text: str, path: str = "accounts file") -> dict[str, Account]:
    """Every account by user name; AccountsError for a bad line or a user listed twice."""
    if len(text) > MAX_ACCOUNTS_BYTES:
        raise AccountsError(f"{path}: larger than {MAX_ACCOUNTS_BYTES} bytes")
    accounts: dict[str, Account] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path} line {number}"
        account = parse_line(line, where)
        if account.user in accounts:
            raise AccountsError(f"{where}: user {account.user!r} is listed twice")
        accounts[account.user] = account
    return accounts


def load_accounts(path: str) -> dict[str, Account]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ACCOUNTS_BYTES + 1)
    except OSError as e:
        raise AccountsError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AccountsError(f"{path}: not UTF-8") from None
    return parse_accounts(text, path)
