"""The ``[sftpd]`` service of a client node (Tahoe-LAFS 1.20's keys: enabled, port,
host_pubkey_file, host_privkey_file, accounts.file; relative paths are under the
node's directory).

The listening socket and each connection run in their own threads; shoal.sftp.server
calls into the reactor for grid work. ``port`` is a Twisted-style endpoint string of
the ``tcp`` kind (``tcp:8022:interface=127.0.0.1``); at most MAX_CONNECTIONS at once.
"""

import os
import socket
import threading
from collections.abc import Mapping
from typing import Any

import paramiko
from twisted.application import service
from twisted.logger import Logger

from shoal.dirnode import NodeMaker
from shoal.errors import CallerError
from shoal.sftp.accounts import Account, AccountsError, load_accounts
from shoal.sftp.filesystem import AccountFS
from shoal.sftp.server import Bridge, OpenFiles, Session, SFTPInterface, SFTPSubsystem, SSHServer

_log = Logger()
MAX_CONNECTIONS = 32
AUTH_TIMEOUT = 30.0


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


def load_host_key(privkey_path: str, pubkey_path: str | None) -> paramiko.PKey:
    try:
        key = paramiko.PKey.from_path(privkey_path)
    except FileNotFoundError:
        raise SFTPConfigError(f"[sftpd]host_privkey_file: {privkey_path}: no such file") from None
    except (paramiko.SSHException, ValueError, OSError) as e:
        raise SFTPConfigError(f"[sftpd]host_privkey_file: {privkey_path}: not a usable "
                              f"unencrypted SSH private key ({type(e).__name__})") from None
    if pubkey_path is not None:
        try:
            with open(pubkey_path, encoding="ascii") as f:
                fields = f.read(64 * 1024).split()
        except (OSError, UnicodeDecodeError):
            raise SFTPConfigError(f"[sftpd]host_pubkey_file: {pubkey_path}: cannot read it") from None
        if len(fields) < 2 or fields[1] != key.get_base64():
            raise SFTPConfigError(f"[sftpd]host_pubkey_file: {pubkey_path}: not the public half of host_privkey_file")
    return key


class SFTPService(service.Service):
    def __init__(self, *, interface: str, port: int, host_key: paramiko.PKey, accounts: Mapping[str, Account],
                 nodemaker: NodeMaker, files: Any, spool_dir: str, reactor: Any) -> None:
        self._address = (interface, port)
        self._host_key = host_key
        self._accounts = dict(accounts)
        self._nodemaker = nodemaker
        self._files = files
        self._spool_dir = spool_dir
        self._bridge = Bridge(reactor)
        self._open_files = OpenFiles()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._transports: set[paramiko.Transport] = set()
        self._lock = threading.Lock()
        self.port: int | None = None

    def startService(self) -> None:
        super().startService()
        self._clean_spool()
        family = socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self._address)
        sock.listen(16)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="sftp-accept", daemon=True)
        self._thread.start()
        _log.info("SFTP server listening on {host}:{port}", host=self._address[0], port=self.port)

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
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        with self._lock:
            transports = list(self._transports)
        for t in transports:
            t.close()
        return super().stopService()

    def _accept_loop(self) -> None:
        while True:
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except OSError:
                if self._sock is None:
                    return
                continue
            if not self._slots.acquire(blocking=False):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="sftp-conn", daemon=True).start()

    def _make_session(self, account: Account) -> Session:
        return Session(account.user, AccountFS(self._nodemaker, self._files, account.rootcap),
                       self._bridge, self._spool_dir, self._open_files)

    def _serve(self, conn: socket.socket) -> None:
        transport: paramiko.Transport | None = None
        try:
            transport = paramiko.Transport(conn)
            transport.auth_timeout = AUTH_TIMEOUT
            transport.banner_timeout = AUTH_TIMEOUT
            transport.add_server_key(self._host_key)
            transport.set_subsystem_handler("sftp", SFTPSubsystem, SFTPInterface)
            with self._lock:
                self._transports.add(transport)
            transport.start_server(server=SSHServer(self._accounts, self._make_session))
            while transport.is_active():
                transport.join(1.0)
        except (paramiko.SSHException, OSError, EOFError) as e:
            _log.info("sftp connection ended: {kind}", kind=type(e).__name__)
        finally:
            if transport is not None:
                transport.close()
                with self._lock:
                    self._transports.discard(transport)
            conn.close()
            self._slots.release()


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
