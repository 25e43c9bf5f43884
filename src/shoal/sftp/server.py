"""The SFTP server on twisted.conch, on the node's reactor (as Tahoe-LAFS 1.20's
allmydata/frontends/sftpd.py): an SSHFactory whose portal checks public keys
against the accounts file, one avatar per login that is conch's ISFTPServer over
the account's tree (shoal.sftp.filesystem's coroutines, awaited directly).

Nothing here does unbounded work on the reactor: a read asks the grid for one
aligned block of at most BLOCK bytes (a few kept per open file, a few fetched at
once), a file being written is written to a private spool file one packet at a
time and uploaded from it when its handle is closed. Errors answer SFTP status
codes with messages that name paths, never caps; logs name the user and the kind
of error.
"""

import functools
import os
import stat as stat_mod
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, BinaryIO, TypeVar

from twisted.conch import error as conch_error
from twisted.conch.avatar import ConchUser
from twisted.conch.interfaces import IConchUser, ISFTPFile, ISFTPServer
from twisted.conch.ssh import connection, factory, keys, session, transport, userauth
from twisted.conch.ssh.common import getNS
from twisted.conch.ssh.filetransfer import (
    FX_BAD_MESSAGE,
    FX_FAILURE,
    FX_NO_SUCH_FILE,
    FX_OP_UNSUPPORTED,
    FX_PERMISSION_DENIED,
    FXF_APPEND,
    FXF_CREAT,
    FXF_EXCL,
    FXF_TRUNC,
    FXF_WRITE,
    FileTransferServer,
    SFTPError,
)
from twisted.cred import portal
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ISSHPrivateKey
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure as TwistedFailure
from zope.interface import implementer

from shoal.dirnode import DirnodeError
from shoal.errors import ShoalError
from shoal.sftp.accounts import Account
from shoal.sftp.filesystem import (
    AccountFS,
    Attrs,
    Failure,
    NoSuchFile,
    PermissionDenied,
    SFTPFSError,
)
from shoal.sftp.paths import BadPathError, join_path, split_path

_log = Logger()
T = TypeVar("T")

MAX_READ = 256 * 1024  # bytes answered to one read request
BLOCK = 1024 * 1024  # bytes fetched from the grid per miss (aligned blocks)
MAX_BLOCKS = 4  # blocks kept per open file
MAX_FETCHES = 4  # grid fetches at once per open file
MAX_FILE_SIZE = 1 << 40  # a write past this offset is refused
MAX_WRITE = 1 << 20  # bytes in one write request
MAX_LIST = 100_000
COMMIT_WAIT = 600.0  # seconds a reader waits for another session's upload to land
MAX_OPEN_WRITES = 64  # files open for writing at once in one session
MAX_CONNECTIONS = 32
AUTH_TIMEOUT = 30.0  # seconds from connecting to a successful login
WRITE_FLAGS = FXF_WRITE | FXF_CREAT | FXF_TRUNC | FXF_APPEND
# the user key signatures accepted (shoal.sftp.accounts.KEY_TYPES, RSA signed with SHA-2 or SHA-1)
USER_SIG_ALGS = (b"ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
                 b"rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-dss")


def _ascii(text: str) -> str:
    """conch sends status messages as ASCII: other characters escaped."""
    return text.encode("ascii", "backslashreplace").decode("ascii")[:400]


def to_sftp_error(e: BaseException, user: str, what: str) -> BaseException:
    """The SFTPError a client sees for `e` (messages from our own errors only: they
    hold names, never caps; anything else is logged by kind and answered generically)."""
    if isinstance(e, (SFTPError, EOFError)):
        return e
    if isinstance(e, NoSuchFile):
        return SFTPError(FX_NO_SUCH_FILE, _ascii(str(e)))
    if isinstance(e, FileNotFoundError):
        return SFTPError(FX_NO_SUCH_FILE, "no such file")
    if isinstance(e, (PermissionDenied, BadPathError)):
        return SFTPError(FX_PERMISSION_DENIED, _ascii(str(e)))
    if isinstance(e, SFTPFSError):
        _log.info("sftp {user}: {what} failed: {kind}", user=user, what=what, kind=type(e).__name__)
        return SFTPError(FX_FAILURE, _ascii(str(e)))
    if isinstance(e, (ShoalError, DirnodeError)):
        _log.info("sftp {user}: {what} failed: {kind}", user=user, what=what, kind=type(e).__name__)
        return SFTPError(FX_FAILURE, f"{what} failed")
    # no traceback or message: either could hold a cap
    _log.error("sftp {user}: {what}: unexpected {kind}", user=user, what=what, kind=type(e).__name__)
    return SFTPError(FX_FAILURE, f"{what} failed")


def _operation(what: str) -> Callable[[Callable[..., Coroutine[Any, Any, T]]], Callable[..., "defer.Deferred[T]"]]:
    """Run a coroutine method as a Deferred whose failures are SFTP errors."""

    def decorate(fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., "defer.Deferred[T]"]:
        @functools.wraps(fn)
        def run(self: Any, *args: Any, **kwargs: Any) -> "defer.Deferred[T]":
            def translate(f: TwistedFailure) -> TwistedFailure:
                assert f.value is not None
                return TwistedFailure(to_sftp_error(f.value, self.user, what))

            d = defer.ensureDeferred(fn(self, *args, **kwargs))
            d.addErrback(translate)
            return d

        return run

    return decorate


def _names(path: bytes) -> tuple[str, ...]:
    return split_path(path)


def attributes(a: Attrs) -> dict[str, int]:
    """conch's attribute dict. Tahoe 1.20's modes (sshfs as a non-root user needs
    them world-writable): 0777 directories, 0666 files, the w bits cleared for a
    read-only link."""
    perms = 0o555 if a.is_dir else 0o444
    if not a.readonly:
        perms |= 0o222
    return {"size": a.size, "uid": 0, "gid": 0,
            "permissions": (stat_mod.S_IFDIR if a.is_dir else stat_mod.S_IFREG) | perms,
            "atime": a.mtime, "mtime": a.mtime}


def long_name(name: str, a: Attrs, now: float | None = None) -> bytes:
    """The ``ls -l`` line SFTP v3 clients show (OpenSSH's sftp prints it as is)."""
    mode = stat_mod.filemode(attributes(a)["permissions"])
    now = time.time() if now is None else now
    when = time.gmtime(a.mtime)
    if abs(now - a.mtime) < 180 * 24 * 3600:
        date = time.strftime("%b %d %H:%M", when)
    else:
        date = time.strftime("%b %d  %Y", when)
    return f"{mode} 1 0 0 {a.size:>12} {date} {name}".encode()


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


async def _value(result: Any) -> Any:
    if isinstance(result, defer.Deferred) or hasattr(result, "__await__"):
        return await result
    return result


class _Block:
    """One aligned block of a file being read, shared by the reads that need it."""

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.failed = False
        self._waiters: list[defer.Deferred[bytes]] = []

    def wait(self) -> "defer.Deferred[bytes]":
        if self.data is not None:
            return defer.succeed(self.data)
        d: defer.Deferred[bytes] = defer.Deferred()
        self._waiters.append(d)
        return d

    def done(self, result: bytes | TwistedFailure) -> None:
        if isinstance(result, bytes):
            self.data = result
        else:
            self.failed = True
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if isinstance(result, bytes):
                d.callback(result)
            else:
                d.errback(result)


@implementer(ISFTPFile)
class ReadFile:
    """An open file read from the grid in aligned blocks of BLOCK bytes."""

    def __init__(self, session: "SFTPUser", node: Any) -> None:
        self.user = session.user
        self._fs = session.fs
        self._node = node
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self._fetches = defer.DeferredSemaphore(MAX_FETCHES)

    def _block(self, index: int) -> "defer.Deferred[bytes]":
        block = self._blocks.get(index)
        if block is not None and not block.failed:
            self._blocks.move_to_end(index)
            return block.wait()
        block = _Block()
        self._blocks[index] = block
        while len(self._blocks) > MAX_BLOCKS:
            self._blocks.popitem(last=False)  # a fetch under way still answers its waiters
        d = self._fetches.run(lambda: defer.ensureDeferred(self._fs.read(self._node, index * BLOCK, BLOCK)))
        waiting = block.wait()
        d.addBoth(block.done)
        return waiting

    @_operation("read")
    async def readChunk(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset > MAX_FILE_SIZE:
            raise SFTPError(FX_BAD_MESSAGE, "bad offset or length")
        length = min(length, MAX_READ)
        parts: list[bytes] = []
        position, end = offset, offset + length
        while position < end:
            index = position // BLOCK
            data = await self._block(index)
            piece = data[position - index * BLOCK:end - index * BLOCK]
            if not piece:
                break
            parts.append(piece)
            position += len(piece)
            if len(data) < BLOCK:
                break  # the file's last block
        if not parts:
            raise EOFError()
        return b"".join(parts)

    def writeChunk(self, offset: int, data: bytes) -> None:
        raise SFTPError(FX_PERMISSION_DENIED, "the file was opened for reading")

    @_operation("fstat")
    async def getAttrs(self) -> dict[str, int]:
        size = await _value(self._node.get_current_size())
        return attributes(Attrs(False, int(size), 0, True))

    def setAttrs(self, attrs: Mapping[str, Any]) -> None:
        return None  # as Tahoe: permissions and times are not kept

    def close(self) -> None:
        self._blocks.clear()


@implementer(ISFTPFile)
class WriteFile:
    """A file being written: spooled to a private temporary file, uploaded on close."""

    def __init__(self, session: "SFTPUser", names: tuple[str, ...], spool: BinaryIO, spool_path: str,
                 append: bool) -> None:
        self.user = session.user
        self._session = session
        self._spool_path = spool_path
        self._names = names
        self._spool = spool
        self._append = append
        self._closed = False
        self._abandoned = False
        self.key: str | None = None
        self.uploading = False
        self._committed: list[defer.Deferred[None]] = []
        self._done = False

    def written_size(self) -> int:
        if self._closed:
            return -1
        return self._size()

    def _size(self) -> int:
        return os.fstat(self._spool.fileno()).st_size

    def readChunk(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise SFTPError(FX_BAD_MESSAGE, "bad offset or length")
        if self._closed:
            raise EOFError()
        data = os.pread(self._spool.fileno(), min(length, MAX_READ), offset)
        if not data:
            raise EOFError()
        return data

    def writeChunk(self, offset: int, data: bytes) -> None:
        if self._abandoned:
            return None  # removed by another session: dropped, as Tahoe
        if self._closed:
            raise SFTPError(FX_FAILURE, "the file is closed")
        if len(data) > MAX_WRITE:
            raise SFTPError(FX_FAILURE, "a write is too large")
        if self._append:
            offset = self._size()
        if offset < 0 or offset + len(data) > MAX_FILE_SIZE:
            raise SFTPError(FX_FAILURE, "the file would be too large")
        view = memoryview(data)
        while view:
            written = os.pwrite(self._spool.fileno(), view, offset)
            view, offset = view[written:], offset + written
        return None

    def getAttrs(self) -> dict[str, int]:
        return attributes(Attrs(False, max(0, self.written_size()), 0, False))

    def setAttrs(self, attrs: Mapping[str, Any]) -> None:
        size = attrs.get("size")
        if size is not None:
            if not 0 <= size <= MAX_FILE_SIZE:
                raise SFTPError(FX_FAILURE, "bad size")
            if not self._closed:
                self._spool.truncate(size)
        return None

    @_operation("upload")
    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.uploading = True
        try:
            await self._session.fs.upload(self._names, self._spool, self._size())
        finally:
            self._discard()

    def abandon(self) -> None:
        if self._closed:
            return
        self._closed = self._abandoned = True
        self._discard()

    def wait_committed(self) -> "defer.Deferred[None]":
        if self._done:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._committed.append(d)
        return d

    def _discard(self) -> None:
        self._done = True
        if self.key is not None:
            self._session.open_files.remove(self.key, self)
        self._session.writing.discard(self)
        self._spool.close()
        try:
            os.unlink(self._spool_path)
        except OSError:
            pass
        waiters, self._committed = self._committed, []
        for d in waiters:
            d.callback(None)


class OpenFiles:
    """Files open for writing in every session, by direntry (shared by all sessions).

    As Tahoe's heisenfiles: a stat of a link being written answers the written size
    so far, and a read or stat of a link whose upload is under way waits for it, so
    what one session closed another reads; a reader opening it before that reads
    the last version linked (or finds no file)."""

    def __init__(self) -> None:
        self._files: dict[str, list[WriteFile]] = {}

    def __bool__(self) -> bool:
        return bool(self._files)

    def add(self, key: str, handle: WriteFile) -> None:
        self._files.setdefault(key, []).append(handle)

    def remove(self, key: str, handle: WriteFile) -> None:
        handles = [h for h in self._files.get(key, []) if h is not handle]
        if handles:
            self._files[key] = handles
        else:
            self._files.pop(key, None)

    def get(self, key: str) -> list[WriteFile]:
        return list(self._files.get(key, []))


class Directory:
    """An open directory listing: (name, long name, attributes) for each entry."""

    def __init__(self, listing: list[tuple[str, Attrs]]) -> None:
        self._listing = iter(listing[:MAX_LIST])
        self._now = time.time()

    def __iter__(self) -> Iterator[tuple[bytes, bytes, dict[str, int]]]:
        return self

    def __next__(self) -> tuple[bytes, bytes, dict[str, int]]:
        name, a = next(self._listing)
        return name.encode("utf-8"), long_name(name, a, self._now), attributes(a)

    def close(self) -> None:
        self._listing = iter(())


@implementer(ISFTPServer)
class SFTPUser(ConchUser):
    """One login: the account's tree as conch's ISFTPServer."""

    def __init__(self, user: str, fs: AccountFS, spool_dir: str, open_files: OpenFiles) -> None:
        super().__init__()
        self.channelLookup[b"session"] = session.SSHSession
        self.subsystemLookup[b"sftp"] = SFTPFileTransfer
        self.user = user
        self.fs = fs
        self.spool_dir = spool_dir
        self.open_files = open_files
        self.writing: set[WriteFile] = set()

    def logout(self) -> None:
        # as Tahoe: files still open for writing when the login ends are abandoned
        for handle in list(self.writing):
            handle.abandon()

    def gotVersion(self, otherVersion: int, extData: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
        return {b"posix-rename@openssh.com": b"1"}

    def realPath(self, path: bytes) -> bytes:
        try:
            return join_path(_names(path)).encode("utf-8")
        except BadPathError:
            return b"/"

    async def _others(self, names: tuple[str, ...]) -> list[WriteFile]:
        """Files open for writing at `names` (any session), after waiting for any
        upload of one under way (bounded by COMMIT_WAIT)."""
        if not names or not self.open_files:
            return []
        try:
            key = await self.fs.direntry(names)
        except (SFTPFSError, ShoalError, DirnodeError):
            return []
        for h in self.open_files.get(key):
            if h.uploading:
                try:
                    await h.wait_committed().addTimeout(COMMIT_WAIT, _reactor())
                except defer.TimeoutError:
                    pass
        return [h for h in self.open_files.get(key) if not h.uploading]

    @_operation("stat")
    async def getAttrs(self, path: bytes, followLinks: bool) -> dict[str, int]:
        names = _names(path)
        for h in await self._others(names):
            size = h.written_size()
            if size >= 0:
                return attributes(Attrs(False, size, 0, False))
        return attributes(await self.fs.stat(names))

    def setAttrs(self, path: bytes, attrs: Mapping[str, Any]) -> None:
        return None  # as Tahoe: permissions and times are not kept

    @_operation("list")
    async def openDirectory(self, path: bytes) -> Directory:
        return Directory(await self.fs.listdir(_names(path)))

    @_operation("open")
    async def openFile(self, filename: bytes, flags: int, attrs: Mapping[str, Any]) -> ReadFile | WriteFile:
        names = _names(filename)
        if not flags & WRITE_FLAGS:  # write flags, as Tahoe (create or truncate alone count)
            await self._others(names)  # a read after another session's close sees what it wrote
            return ReadFile(self, await self.fs.file_node(names))
        return await self._open_write(names, flags)

    async def _open_write(self, names: tuple[str, ...], flags: int) -> WriteFile:
        if not names:
            raise Failure("/: is a directory")
        parent = await self.fs.directory(names[:-1])
        if parent.is_readonly() or not parent.is_mutable():
            raise PermissionDenied(f"{join_path(names[:-1])}: read-only directory")
        existing = await self._existing(names)
        if existing is not None and flags & FXF_EXCL:
            raise Failure(f"{join_path(names)}: exists")
        if existing is None and not flags & FXF_CREAT:
            raise NoSuchFile(f"{join_path(names)}: no such file")
        if len(self.writing) >= MAX_OPEN_WRITES:
            raise Failure(f"at most {MAX_OPEN_WRITES} files open for writing at once")
        try:
            os.makedirs(self.spool_dir, mode=0o700, exist_ok=True)
            fd, spool_path = tempfile.mkstemp(prefix="sftp-", dir=self.spool_dir)
        except OSError:
            raise Failure("cannot make a spool file") from None
        spool = os.fdopen(fd, "w+b", buffering=0)  # unbuffered: fstat is the size written
        handle = WriteFile(self, names, spool, spool_path, append=bool(flags & FXF_APPEND))
        self.writing.add(handle)
        try:
            if existing is not None and not flags & FXF_TRUNC:
                await self._copy_into(existing, spool)
            handle.key = await self.fs.direntry(names)
        except BaseException:
            handle.abandon()
            raise
        self.open_files.add(handle.key, handle)
        return handle

    async def _existing(self, names: tuple[str, ...]) -> Any:
        try:
            a = await self.fs.stat(names)
        except NoSuchFile:
            return None
        if a.is_dir:
            raise Failure(f"{join_path(names)}: is a directory")
        if a.readonly:
            raise PermissionDenied(f"{join_path(names)}: a no-write link")
        return await self.fs.file_node(names)

    async def _copy_into(self, node: Any, spool: BinaryIO) -> None:
        offset = 0
        while True:
            chunk = await self.fs.read(node, offset, BLOCK)
            if not chunk:
                return
            os.pwrite(spool.fileno(), chunk, offset)
            offset += len(chunk)
            if offset > MAX_FILE_SIZE:
                raise Failure("file too large")

    @_operation("remove")
    async def removeFile(self, filename: bytes) -> None:
        # as Tahoe: removing a file open for writing (any session) abandons it, so it
        # is not linked later; removing only such a file (not yet linked) succeeds
        names = _names(filename)
        writing = await self._others(names)
        for h in writing:
            h.abandon()
        try:
            await self.fs.remove(names)
        except NoSuchFile:
            if not writing:
                raise

    @_operation("rmdir")
    async def removeDirectory(self, path: bytes) -> None:
        await self.fs.rmdir(_names(path))

    @_operation("mkdir")
    async def makeDirectory(self, path: bytes, attrs: Mapping[str, Any]) -> None:
        await self.fs.mkdir(_names(path))

    @_operation("rename")
    async def renameFile(self, oldpath: bytes, newpath: bytes, overwrite: bool = False) -> None:
        await self.fs.rename(_names(oldpath), _names(newpath), overwrite=overwrite)

    def readLink(self, path: bytes) -> None:
        raise SFTPError(FX_OP_UNSUPPORTED, "symbolic links are not supported")

    def makeLink(self, linkPath: bytes, targetPath: bytes) -> None:
        raise SFTPError(FX_OP_UNSUPPORTED, "symbolic links are not supported")

    def extendedRequest(self, extName: bytes, extData: bytes) -> None:
        raise SFTPError(FX_OP_UNSUPPORTED, "unsupported extension")


class SFTPFileTransfer(FileTransferServer):
    """conch's SFTP subsystem, with two changes: a file still open for writing when
    the session ends is abandoned, not uploaded (conch closes every handle left
    open), and posix-rename@openssh.com answers a status (OpenSSH's client expects
    one; conch would send an extended reply)."""

    def connectionLost(self, reason: TwistedFailure = connectionDone) -> None:
        for handle in list(self.openFiles.values()):
            if isinstance(handle, WriteFile):
                handle.abandon()
        self.openFiles = {}
        super().connectionLost(reason)

    def packet_EXTENDED(self, data: bytes) -> None:
        request_id, rest = data[:4], data[4:]
        try:
            name, ext = getNS(rest)
        except Exception:
            self._sendStatus(request_id, FX_BAD_MESSAGE, b"bad extended request")
            return
        if name != b"posix-rename@openssh.com":
            super().packet_EXTENDED(data)
            return
        try:
            old, ext = getNS(ext)
            new, ext = getNS(ext)
            if ext:
                raise ValueError("trailing bytes")
        except Exception:
            self._sendStatus(request_id, FX_BAD_MESSAGE, b"could not parse posix-rename@openssh.com request")
            return
        user: Any = self.client
        d = user.renameFile(old, new, overwrite=True)
        d.addCallback(self._cbStatus, request_id, b"rename succeeded")
        d.addErrback(self._ebStatus, request_id, b"rename failed")


@implementer(ICredentialsChecker)
class AccountsChecker:
    """Public-key logins against the accounts file (no passwords, as Tahoe 1.20)."""

    credentialInterfaces = (ISSHPrivateKey,)

    def __init__(self, accounts: Mapping[str, Account]) -> None:
        self._accounts = accounts

    def requestAvatarId(self, credentials: Any) -> "defer.Deferred[str]":
        try:
            user = credentials.username.decode("utf-8")
        except UnicodeDecodeError:
            return defer.fail(UnauthorizedLogin())
        account = self._accounts.get(user)
        if account is None or credentials.blob != account.key_blob:
            return defer.fail(UnauthorizedLogin())
        if credentials.signature is None:
            return defer.fail(conch_error.ValidPublicKey())  # the client may sign with it
        try:
            ok = keys.Key.fromString(credentials.blob).verify(credentials.signature, credentials.sigData)
        except Exception:
            ok = False
        if not ok:
            return defer.fail(UnauthorizedLogin())
        return defer.succeed(user)


@implementer(portal.IRealm)
class Realm:
    def __init__(self, make_user: Callable[[str], SFTPUser]) -> None:
        self._make_user = make_user

    def requestAvatar(self, avatarId: str, mind: Any, *interfaces: Any) -> tuple[Any, SFTPUser, Callable[[], None]]:
        if IConchUser not in interfaces:
            raise NotImplementedError("only SSH logins")
        user = self._make_user(avatarId)
        return IConchUser, user, user.logout


class UserAuth(userauth.SSHUserAuthServer):
    loginTimeout = int(AUTH_TIMEOUT)
    attemptsBeforeDisconnect = 10

    def tryAuth(self, kind: bytes, user: bytes, data: bytes) -> Any:
        if kind == b"password":
            _log.info("sftp: password login refused for {user}", user=user[:64].decode("utf-8", "replace"))
        return super().tryAuth(kind, user, data)


class ServerTransport(transport.SSHServerTransport):
    """A connection: dropped when no login succeeded within AUTH_TIMEOUT."""

    factory: "SSHFactory"

    def connectionMade(self) -> None:
        super().connectionMade()
        self._auth_timer = _reactor().callLater(AUTH_TIMEOUT, self._auth_timeout)

    def sendExtInfo(self, extensions: list[tuple[bytes, bytes]]) -> None:
        # conch advertises its host key algorithms as server-sig-algs (RFC 8308); a
        # client picks how to sign with its user key from this list (paramiko gives up
        # on an RSA key that the list leaves out), so it names the user key kinds
        super().sendExtInfo([(k, USER_SIG_ALGS if k == b"server-sig-algs" else v) for k, v in extensions])

    def _auth_timeout(self) -> None:
        if not isinstance(self.service, connection.SSHConnection):
            _log.info("sftp: no login within {t:.0f}s: connection dropped", t=AUTH_TIMEOUT)
            tcp: Any = self.transport
            tcp.loseConnection()

    def connectionLost(self, reason: TwistedFailure | None = None) -> None:
        if self._auth_timer.active():
            self._auth_timer.cancel()
        self.factory.dropped(self)
        super().connectionLost(reason)


class SSHFactory(factory.SSHFactory):
    """At most MAX_CONNECTIONS connections at once; more are closed at once."""

    protocol = ServerTransport
    services = {b"ssh-userauth": UserAuth, b"ssh-connection": connection.SSHConnection}

    def __init__(self, host_key: keys.Key, public_key: keys.Key, cred_portal: portal.Portal,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.privateKeys = {host_key.sshType(): host_key}
        self.publicKeys = {public_key.sshType(): public_key}
        self.portal = cred_portal
        self._max = max_connections
        self.live: set[Any] = set()

    def getPrimes(self) -> Any:
        try:  # as Tahoe: when present, enables diffie-hellman-group-exchange
            from twisted.conch.openssh_compat import primes

            return primes.parseModuliFile("/etc/ssh/moduli")
        except (OSError, ValueError):
            return None

    def buildProtocol(self, addr: Any) -> Any:
        if len(self.live) >= self._max:
            _log.info("sftp: {n} connections open: one refused", n=len(self.live))
            return None
        p = super().buildProtocol(addr)
        self.live.add(p)
        return p

    def dropped(self, p: Any) -> None:
        self.live.discard(p)

    def drop_all(self) -> None:
        for p in list(self.live):
            tcp: Any = p.transport
            if tcp is not None:
                tcp.loseConnection()


def make_factory(host_key: keys.Key, public_key: keys.Key, accounts: Mapping[str, Account],
                 make_user: Callable[[str], SFTPUser]) -> SSHFactory:
    realm: Any = Realm(make_user)
    checker: Any = AccountsChecker(accounts)
    p = portal.Portal(realm)
    p.registerChecker(checker)
    return SSHFactory(host_key, public_key, p)

