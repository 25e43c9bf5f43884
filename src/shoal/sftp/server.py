"""The SFTP server: paramiko's SSH transport and SFTP subsystem, one thread per
connection, calling into the reactor (blockingCallFromThread) for every grid step.

Nothing here blocks the reactor: a read asks the grid for one bounded range (with a
read-ahead window), a file being written is spooled to a private temporary file and
uploaded when its handle is closed. Errors answer SFTP status codes; logs name the
user and the kind of error, never a cap.
"""

import os
import tempfile
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, BinaryIO, TypeVar, cast

import paramiko
from paramiko.sftp import (
    CMD_CLOSE,
    SFTP_EOF,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)
from twisted.internet import defer
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger

from shoal.dirnode import DirnodeError
from shoal.errors import ShoalError
from shoal.sftp.accounts import Account
from shoal.sftp.filesystem import AccountFS, Attrs, Failure, NoSuchFile, PermissionDenied
from shoal.sftp.paths import BadPathError, join_path, split_path

_log = Logger()
T = TypeVar("T")

MAX_READ = 256 * 1024  # bytes answered to one read request
READ_AHEAD = 1024 * 1024  # bytes fetched from the grid per miss
MAX_FILE_SIZE = 1 << 40  # a write past this offset is refused
MAX_LIST = 100_000
COMMIT_WAIT = 600.0  # seconds a reader waits for another session's upload to land
MAX_OPEN_WRITES = 64  # files open for writing at once in one session


class Bridge:
    """Runs coroutines on the reactor from a paramiko thread and waits for them."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        def start() -> "defer.Deferred[Any]":
            return defer.ensureDeferred(fn(*args, **kwargs))

        return cast(T, blockingCallFromThread(self._reactor, start))


def _code(e: BaseException, user: str, what: str) -> int:
    if isinstance(e, (NoSuchFile, FileNotFoundError)):
        return SFTP_NO_SUCH_FILE
    if isinstance(e, (PermissionDenied, BadPathError)):
        return SFTP_PERMISSION_DENIED
    if isinstance(e, (Failure, ShoalError, DirnodeError)):
        _log.info("sftp {user}: {what} failed: {kind}", user=user, what=what, kind=type(e).__name__)
        return SFTP_FAILURE
    # no traceback or message: either could hold a cap
    _log.error("sftp {user}: {what}: unexpected {kind}", user=user, what=what, kind=type(e).__name__)
    return SFTP_FAILURE


def _write_all(f: BinaryIO, data: bytes) -> None:
    """Write every byte (an unbuffered file may take fewer at a time)."""
    view = memoryview(data)
    while view:
        written = f.write(view)
        view = view[written if written is not None else len(view):]


def _attributes(name: str, a: Attrs) -> paramiko.SFTPAttributes:
    out = paramiko.SFTPAttributes()
    out.filename = name
    out.st_size = a.size
    out.st_uid = 0
    out.st_gid = 0
    # Tahoe 1.20's modes (sshfs as a non-root user needs them world-writable):
    # 0777 directories, 0666 files, the w bits cleared for a read-only link
    perms = 0o555 if a.is_dir else 0o444
    if not a.readonly:
        perms |= 0o222
    out.st_mode = (0o40000 if a.is_dir else 0o100000) | perms
    out.st_mtime = a.mtime
    out.st_atime = a.mtime
    return out


class SFTPSubsystem(paramiko.SFTPServer):
    """paramiko's SFTP server, except that closing a file answers what the handle's
    close() says: paramiko answers OK whatever it returns, and a file written over
    SFTP is uploaded on close, so an upload that failed must reach the client."""

    def _process(self, t: int, request_number: int, msg: paramiko.Message) -> None:
        if t == CMD_CLOSE:
            position = msg.packet.tell()
            handle = msg.get_binary()
            if handle in self.file_table:
                code = self.file_table.pop(handle).close()
                self._send_status(request_number, code if isinstance(code, int) else SFTP_OK)
                return
            msg.packet.seek(position)
        super()._process(t, request_number, msg)

    def finish_subsystem(self) -> None:
        # as Tahoe: a file still open for writing when its session ends is abandoned,
        # not uploaded (paramiko would close, and so upload, every handle left open)
        for handle in list(self.file_table.values()):
            if isinstance(handle, WriteHandle):
                handle.abandon()
        super().finish_subsystem()


class ReadHandle(paramiko.SFTPHandle):
    """An open file read from the grid in bounded ranges."""

    def __init__(self, session: "Session", node: Any) -> None:
        super().__init__()
        self._session = session
        self._node = node
        self._window_start = 0
        self._window = b""

    def read(self, offset: int, length: int) -> bytes | int:
        if offset < 0 or length < 0:
            return SFTP_FAILURE
        length = min(length, MAX_READ)
        start, window = self._window_start, self._window
        if not (start <= offset and offset + length <= start + len(window)):
            try:
                window = self._session.bridge.call(self._session.fs.read, self._node, offset, max(length, READ_AHEAD))
            except Exception as e:
                return _code(e, self._session.user, "read")
            self._window_start, self._window = start, window = offset, window
        data = window[offset - start:offset - start + length]
        return data if data else SFTP_EOF

    def write(self, offset: int, data: bytes) -> int:
        return SFTP_PERMISSION_DENIED

    def stat(self) -> paramiko.SFTPAttributes | int:
        try:
            size = self._session.bridge.call(self._node.get_current_size)
        except Exception as e:
            return _code(e, self._session.user, "fstat")
        return _attributes("", Attrs(False, int(size), 0, True))

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK


class WriteHandle(paramiko.SFTPHandle):
    """A file being written: spooled to a private temporary file, uploaded on close."""

    def __init__(self, session: "Session", names: tuple[str, ...], spool: BinaryIO, spool_path: str,
                 append: bool) -> None:
        super().__init__()
        self._spool_path = spool_path
        self._session = session
        self._names = names
        self._spool = spool
        self._append = append
        self._lock = threading.Lock()
        self._closed = False
        self.key: str | None = None
        self.uploading = False
        self.committed = threading.Event()

    def written_size(self) -> int:
        with self._lock:
            if self._closed:
                return -1
            return self._size()

    def _size(self) -> int:
        return os.fstat(self._spool.fileno()).st_size

    def read(self, offset: int, length: int) -> bytes | int:
        with self._lock:
            if offset < 0 or length < 0:
                return SFTP_FAILURE
            if self._closed:
                return SFTP_EOF
            self._spool.seek(offset)
            data = self._spool.read(min(length, MAX_READ))
        return data if data else SFTP_EOF

    def write(self, offset: int, data: bytes) -> int:
        with self._lock:
            if self._closed:
                return SFTP_OK  # abandoned (removed by another session): dropped, as Tahoe
            if self._append:
                offset = self._size()
            if offset < 0 or offset + len(data) > MAX_FILE_SIZE:
                return SFTP_FAILURE
            self._spool.seek(offset)
            _write_all(self._spool, data)
        return SFTP_OK

    def stat(self) -> paramiko.SFTPAttributes:
        return _attributes("", Attrs(False, max(0, self.written_size()), 0, False))

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        if attr.st_size is not None:
            with self._lock:
                if not 0 <= attr.st_size <= MAX_FILE_SIZE:
                    return SFTP_FAILURE
                if not self._closed:
                    self._spool.truncate(attr.st_size)
        return SFTP_OK

    def close(self) -> int | None:  # type: ignore[override]
        with self._lock:
            if self._closed:
                return SFTP_OK
            self._closed = True
            self.uploading = True
        try:
            self._spool.flush()
            size = self._size()
            self._session.bridge.call(self._session.fs.upload, self._names, self._spool, size)
        except Exception as e:
            return _code(e, self._session.user, "upload")
        finally:
            self._discard()
        return SFTP_OK

    def abandon(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._discard()  # under the lock: no write is using the spool

    def _discard(self) -> None:
        self.committed.set()
        if self.key is not None:
            self._session.open_files.remove(self.key, self)
        self._session.writers.release()
        self._spool.close()
        try:
            os.unlink(self._spool_path)
        except OSError:
            pass


class OpenFiles:
    """Files open for writing in every session, by direntry (shared by all sessions).

    As Tahoe's heisenfiles: a stat of a link being written answers the written size
    so far, and a read or stat of a link whose upload is under way waits for it, so
    what one session closed another reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, list[WriteHandle]] = {}

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._files)

    def add(self, key: str, handle: "WriteHandle") -> None:
        with self._lock:
            self._files.setdefault(key, []).append(handle)

    def remove(self, key: str, handle: "WriteHandle") -> None:
        with self._lock:
            handles = [h for h in self._files.get(key, []) if h is not handle]
            if handles:
                self._files[key] = handles
            else:
                self._files.pop(key, None)

    def get(self, key: str) -> list["WriteHandle"]:
        with self._lock:
            return list(self._files.get(key, []))


class Session:
    """What one authenticated connection's SFTP subsystem works with."""

    def __init__(self, user: str, fs: AccountFS, bridge: Bridge, spool_dir: str,
                 open_files: OpenFiles | None = None) -> None:
        self.user = user
        self.fs = fs
        self.bridge = bridge
        self.spool_dir = spool_dir
        self.open_files = open_files if open_files is not None else OpenFiles()
        self.writers = threading.BoundedSemaphore(MAX_OPEN_WRITES)


class SSHServer(paramiko.ServerInterface):
    """Public-key logins against the accounts file (no passwords, as Tahoe 1.20)."""

    def __init__(self, accounts: Mapping[str, Account], make_session: Callable[[Account], Session]) -> None:
        self._accounts = accounts
        self._make_session = make_session
        self.session: Session | None = None

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        _log.info("sftp: password login refused for {user}", user=username[:64])
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        account = self._accounts.get(username)
        if account is None or not account.key_matches(key.get_name(), key.asbytes()):
            return paramiko.AUTH_FAILED
        if self.session is None:
            self.session = self._make_session(account)
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class SFTPInterface(paramiko.SFTPServerInterface):
    """The SFTP operations on one account's grid directory tree."""

    def __init__(self, server: SSHServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self._server = server
        self._session: Session | None = None

    def session_started(self) -> None:
        pass

    @property
    def s(self) -> Session:
        if self._session is None:
            self._session = self._server.session
        assert self._session is not None, "no authenticated session"
        return self._session

    def _run(self, what: str, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T | int:
        try:
            return self.s.bridge.call(fn, *args, **kwargs)
        except Exception as e:
            return _code(e, self.s.user, what)

    def canonicalize(self, path: str) -> str:
        try:
            return join_path(split_path(path))
        except BadPathError:
            return "/"

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        try:
            names = split_path(path)
        except BadPathError as e:
            return _code(e, self.s.user, "list")
        listing = self._run("list", self.s.fs.listdir, names)
        if isinstance(listing, int):
            return listing
        return [_attributes(name, a) for name, a in listing[:MAX_LIST]]

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            names = split_path(path)
        except BadPathError as e:
            return _code(e, self.s.user, "stat")
        writing = self._others(names)
        for h in writing:
            size = h.written_size()
            if size >= 0:
                return _attributes(names[-1], Attrs(False, size, 0, False))
        a = self._run("stat", self.s.fs.stat, names)
        if isinstance(a, int):
            return a
        return _attributes(names[-1] if names else "/", a)

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        try:
            names = split_path(path)
        except BadPathError as e:
            return _code(e, self.s.user, "open")
        if not flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):  # write flags, as Tahoe
            self._others(names)  # a read after another session's close sees what it wrote
            node = self._run("open", self.s.fs.file_node, names)
            if isinstance(node, int):
                return node
            handle: paramiko.SFTPHandle = ReadHandle(self.s, node)
        else:
            opened = self._open_write(names, flags)
            if isinstance(opened, int):
                return opened
            handle = opened
        handle.filename = join_path(names)  # type: ignore[attr-defined]
        return handle

    def _open_write(self, names: tuple[str, ...], flags: int) -> WriteHandle | int:
        if not names:
            return SFTP_FAILURE
        session = self.s
        try:
            session.bridge.call(self._check_parent, names)
        except Exception as e:
            return _code(e, session.user, "open")
        existing = self._run("open", self._existing, names)
        if isinstance(existing, int):
            return existing
        if existing is not None and flags & os.O_EXCL:
            return SFTP_FAILURE
        if existing is None and not flags & os.O_CREAT:
            return SFTP_NO_SUCH_FILE
        if not session.writers.acquire(blocking=False):
            return SFTP_FAILURE
        try:
            os.makedirs(session.spool_dir, mode=0o700, exist_ok=True)
            fd, spool_path = tempfile.mkstemp(prefix="sftp-", dir=session.spool_dir)
        except OSError:
            session.writers.release()
            return SFTP_FAILURE
        spool = os.fdopen(fd, "w+b", buffering=0)  # unbuffered: fstat is the size written
        if existing is not None and not flags & os.O_TRUNC:
            try:
                self._copy_into(existing, spool)
            except Exception as e:
                spool.close()
                os.unlink(spool_path)
                session.writers.release()
                return _code(e, session.user, "open")
        handle = WriteHandle(session, names, spool, spool_path, append=bool(flags & os.O_APPEND))
        key = self._run("open", session.fs.direntry, names)
        if isinstance(key, int):
            handle.abandon()
            return key
        handle.key = key
        session.open_files.add(key, handle)
        return handle

    def _others(self, names: tuple[str, ...]) -> list[WriteHandle]:
        """Files open for writing at `names` (any session), after waiting for any
        upload of one under way (bounded by COMMIT_WAIT)."""
        if not names or not self.s.open_files:
            return []
        try:
            key = self.s.bridge.call(self.s.fs.direntry, names)
        except Exception:
            return []
        handles = self.s.open_files.get(key)
        for h in handles:
            if h.uploading:
                h.committed.wait(COMMIT_WAIT)
        return [h for h in self.s.open_files.get(key) if not h.uploading]

    async def _check_parent(self, names: tuple[str, ...]) -> None:
        parent = await self.s.fs.directory(names[:-1])
        if parent.is_readonly() or not parent.is_mutable():
            raise PermissionDenied("read-only directory")

    async def _existing(self, names: tuple[str, ...]) -> Any:
        try:
            a = await self.s.fs.stat(names)
        except NoSuchFile:
            return None
        if a.is_dir:
            raise Failure("is a directory")
        if a.readonly:
            raise PermissionDenied("a no-write link")
        return await self.s.fs.file_node(names)

    def _copy_into(self, node: Any, spool: BinaryIO) -> None:
        offset = 0
        while True:
            chunk = self.s.bridge.call(self.s.fs.read, node, offset, READ_AHEAD)
            if not chunk:
                return
            _write_all(spool, chunk)
            offset += len(chunk)
            if offset > MAX_FILE_SIZE:
                raise Failure("file too large")

    def _names_op(self, what: str, fn: Callable[..., Coroutine[Any, Any, Any]], *paths: str, **kwargs: Any) -> int:
        try:
            names = [split_path(p) for p in paths]
        except BadPathError as e:
            return _code(e, self.s.user, what)
        result = self._run(what, fn, *names, **kwargs)
        return result if isinstance(result, int) else SFTP_OK

    def remove(self, path: str) -> int:
        # as Tahoe: removing a file open for writing (any session) abandons it, so it
        # is not linked later; removing only such a file (not yet linked) succeeds
        try:
            names = split_path(path)
        except BadPathError as e:
            return _code(e, self.s.user, "remove")
        writing = self._others(names)
        for h in writing:
            h.abandon()
        code = self._names_op("remove", self.s.fs.remove, path)
        return SFTP_OK if writing and code == SFTP_NO_SUCH_FILE else code

    def rmdir(self, path: str) -> int:
        return self._names_op("rmdir", self.s.fs.rmdir, path)

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return self._names_op("mkdir", self.s.fs.mkdir, path)

    def rename(self, oldpath: str, newpath: str) -> int:
        return self._names_op("rename", self.s.fs.rename, oldpath, newpath, overwrite=False)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._names_op("rename", self.s.fs.rename, oldpath, newpath, overwrite=True)

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK  # as Tahoe: permissions and times are not kept

    def symlink(self, target_path: str, path: str) -> int:
        return SFTP_OP_UNSUPPORTED

    def readlink(self, path: str) -> str | int:
        return SFTP_OP_UNSUPPORTED
