"""The ``[sftpd]`` service of a client node (Tahoe-LAFS 1.20's keys: enabled, port,
host_pubkey_file, host_privkey_file, accounts.file; relative paths are under the
node's directory).

The server (shoal.sftp.server, twisted.conch) listens on the node's reactor. ``port``
is a Twisted-style endpoint string of the ``tcp`` kind (``tcp:8022:interface=127.0.0.1``);
at most shoal.sftp.server.MAX_CONNECTIONS connections at once.
"""

import os
from collections.abc import Mapping
from typing import Any

from twisted.application import service
from twisted.conch.ssh import keys
from twisted.logger import Logger

from shoal.dirnode import NodeMaker
from shoal.errors import CallerError
from shoal.sftp.accounts import Account, AccountsError, load_accounts
from shoal.sftp.filesystem import AccountFS
from shoal.sftp.server import OpenFiles, SFTPUser, make_factory

_log = Logger()
MAX_KEY_FILE = 64 * 1024


class SFTPConfigError(CallerError):
    """A bad [sftpd] setting (the message names the key, never a secret)."""


def _split_endpoint(text: str) -> list[str]:
    """Split at ``:``, a backslash escaping the next character (Twisted's rule)."""
    parts, current, escaped = [], [], False
    for c in text:
        if escaped:
            current.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def parse_port(text: str) -> tuple[str, int]:
    """(interface, port) of a ``tcp:PORT[:interface=ADDR]`` endpoint string (an IPv6
    address escapes its colons: ``interface=\\:\\:1``)."""
    parts = _split_endpoint(text.strip())
    if len(parts) < 2 or parts[0] != "tcp":
        raise SFTPConfigError("[sftpd]port: a tcp endpoint, like tcp:8022:interface=127.0.0.1")
    port_text, interface = parts[1], "0.0.0.0"
    for extra in parts[2:]:
        key, sep, value = extra.partition("=")
        if sep and key == "interface" and value:
            interface = value
        elif sep and key == "port":
            port_text = value
        elif sep and key == "backlog":
            continue
        else:
            raise SFTPConfigError(f"[sftpd]port: unknown tcp option {extra[:40]!r}")
    if port_text.startswith("port="):
        port_text = port_text[5:]
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SFTPConfigError("[sftpd]port: the port is a number from 0 to 65535")
    return interface, int(port_text)


def load_host_key(privkey_path: str, pubkey_path: str | None) -> tuple[keys.Key, keys.Key]:
    """The host's private key and its public half (from host_pubkey_file when given,
    which must match; as Tahoe 1.20's host_privkey_file and host_pubkey_file)."""
    try:
        with open(privkey_path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise SFTPConfigError(f"[sftpd]host_privkey_file: {privkey_path}: no such file") from None
    except OSError as e:
        raise SFTPConfigError(f"[sftpd]host_privkey_file: {privkey_path}: cannot read it ({e.strerror})") from None
    try:
        if len(data) > MAX_KEY_FILE:
            raise ValueError("too large")
        key = keys.Key.fromString(data)
        if not key.isPublic():
            public = key.public()
        else:
            raise ValueError("a public key")
    except Exception as e:
        raise SFTPConfigError(f"[sftpd]host_privkey_file: {privkey_path}: not a usable "
                              f"unencrypted SSH private key ({type(e).__name__})") from None
    if pubkey_path is not None:
        try:
            with open(pubkey_path, "rb") as f:
                given = keys.Key.fromString(f.read(MAX_KEY_FILE))
        except OSError:
            raise SFTPConfigError(f"[sftpd]host_pubkey_file: {pubkey_path}: cannot read it") from None
        except Exception:
            raise SFTPConfigError(f"[sftpd]host_pubkey_file: {pubkey_path}: not an SSH public key") from None
        if given.blob() != public.blob():
            raise SFTPConfigError(f"[sftpd]host_pubkey_file: {pubkey_path}: not the public half of host_privkey_file")
        public = given
    return key, public


class SFTPService(service.Service):
    def __init__(self, *, interface: str, port: int, host_key: tuple[keys.Key, keys.Key],
                 accounts: Mapping[str, Account], nodemaker: NodeMaker, files: Any, spool_dir: str,
                 reactor: Any) -> None:
        self._interface, self._port = interface, port
        self._accounts = dict(accounts)
        self._nodemaker = nodemaker
        self._files = files
        self._spool_dir = spool_dir
        self._reactor = reactor
        self._open_files = OpenFiles()
        self._factory = make_factory(host_key[0], host_key[1], self._accounts, self._make_user)
        self._listening: Any = None
        self.port: int | None = None

    def startService(self) -> None:
        super().startService()
        self._clean_spool()
        self._listening = self._reactor.listenTCP(self._port, self._factory, backlog=16, interface=self._interface)
        self.port = self._listening.getHost().port
        _log.info("SFTP server listening on {host}:{port}", host=self._interface, port=self.port)

    def _clean_spool(self) -> None:
        """Files left by writes that a stopped node never uploaded."""
        try:
            names = os.listdir(self._spool_dir)
        except OSError:
            return
        for name in names:
            if name.startswith("sftp-"):
                try:
                    os.unlink(os.path.join(self._spool_dir, name))
                except OSError:
                    pass

    def stopService(self) -> Any:
        super().stopService()
        listening, self._listening = self._listening, None
        self._factory.drop_all()
        if listening is not None:
            return listening.stopListening()
        return None

    def _make_user(self, user: str) -> SFTPUser:
        account = self._accounts[user]
        return SFTPUser(account.user, AccountFS(self._nodemaker, self._files, account.rootcap),
                        self._spool_dir, self._open_files)


def make_sftp_service(section: Mapping[str, str], basedir: str, nodemaker: NodeMaker, files: Any,
                      reactor: Any) -> SFTPService:
    """The service for an enabled [sftpd] section; SFTPConfigError naming the key."""

    def path(key: str, required: bool = True) -> str | None:
        value = (section.get(key) or "").strip()
        if not value:
            if required:
                raise SFTPConfigError(f"[sftpd]{key}: required when [sftpd]enabled")
            return None
        return os.path.join(basedir, os.path.expanduser(value))

    if section.get("accounts.url"):
        raise SFTPConfigError("[sftpd]accounts.url: an account server is not supported; use accounts.file")
    interface, port = parse_port(section.get("port") or "")
    privkey = path("host_privkey_file")
    assert privkey is not None
    host_key = load_host_key(privkey, path("host_pubkey_file", required=False))
    accounts_path = path("accounts.file")
    assert accounts_path is not None
    try:
        accounts = load_accounts(accounts_path)
    except AccountsError as e:
        raise SFTPConfigError(f"[sftpd]accounts.file: {e}") from None
    return SFTPService(interface=interface, port=port, host_key=host_key, accounts=accounts,
                       nodemaker=nodemaker, files=files, spool_dir=os.path.join(basedir, "private", "sftp-spool"),
                       reactor=reactor)
