"""Foolscap adapters of the upload helper (shoal.protocol.helper), both sides.

Helper side: ``FoolscapHelper`` (RIHelper) and ``FoolscapUploadHelper``
(RICHKUploadHelper) decode, call one method of the transport-free helper
core (shoal.immutable.helper) and encode; the client's RIEncryptedUploadable
reaches the core as a ``RemoteReader`` whose failures are plain exceptions.

Client side: ``HelperConnection`` keeps a Foolscap connection to
[client]helper.furl (reconnecting), checks the helper speaks
".../protocols/helper/v1", and gives a ``RemoteHelper`` while connected; a
lost connection before the upload began is ``HelperUnreachable`` (the
uploader then falls back to a direct upload); one during the upload is
``HelperFailed`` (the upload fails: the helper keeps what it fetched, so an
upload of the same file again sends only the rest). The FURL's swissnum never appears in status
or errors.
"""

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from foolscap.api import DeadReferenceError, Referenceable, RemoteException
from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python import log
from twisted.python.failure import Failure
from zope.interface import implementer

from shoal import __version__
from shoal.errors import Fault, ShoalError
from shoal.introducer.client import censor_furl
from shoal.protocol.helper import (
    CHK_UPLOAD_V1,
    HELPER_V1,
    HelperResults,
    RICHKUploadHelper,
    RIEncryptedUploadable,
    RIHelper,
    UploadResultsCopy,
)

_LOST = (DeadReferenceError, ConnectionLost, ConnectionDone)


class HelperUnreachable(ShoalError):
    """The helper's connection is gone (or was never made)."""

    fault = Fault.GRID


class HelperFailed(ShoalError):
    """The helper answered with an error (its first line is kept)."""

    fault = Fault.GRID


def _version(name: bytes) -> dict[bytes, Any]:
    return {name: {}, b"application-version": f"shoal/{__version__}".encode()}


def _translate(f: Failure, what: str) -> Failure:
    if f.check(*_LOST):
        if what == "upload_chk":  # nothing was sent yet: the caller may upload directly
            return Failure(HelperUnreachable(f"the upload helper's connection was lost during {what}"))
        return Failure(HelperFailed(
            f"the upload helper's connection was lost during {what}; uploading the file again "
            "resumes where it stopped"))
    if f.check(HelperUnreachable, HelperFailed, defer.CancelledError):
        return f
    value = f.value
    inner = value.args[0] if isinstance(value, RemoteException) and value.args else f
    text = inner.getErrorMessage() if isinstance(inner, Failure) else str(value)
    line = (text or "remote error").splitlines()[0]
    return Failure(HelperFailed(f"the upload helper failed {what}: {line}"))


# --- helper side ---------------------------------------------------------------------


class HelperCore(Protocol):
    active: dict[bytes, Any]  # storage index -> running upload

    def upload_chk(self, storage_index: bytes) -> Awaitable[tuple[HelperResults | None, Any]]: ...


class RemoteReader:
    """The client's RIEncryptedUploadable, called by the helper core."""

    def __init__(self, rref: Any) -> None:
        self._rref = rref

    def get_size(self) -> "defer.Deferred[Any]":
        return self._rref.callRemote("get_size")

    def get_all_encoding_parameters(self) -> "defer.Deferred[Any]":
        return self._rref.callRemote("get_all_encoding_parameters")

    def read_encrypted(self, offset: int, length: int) -> "defer.Deferred[Any]":
        return self._rref.callRemote("read_encrypted", offset, length)

    def close(self) -> "defer.Deferred[Any]":
        return self._rref.callRemote("close")


@implementer(RICHKUploadHelper)
class FoolscapUploadHelper(Referenceable):  # type: ignore[misc]
    def __init__(self, core: Any) -> None:
        self._core = core

    def remote_get_version(self) -> dict[bytes, Any]:
        return _version(CHK_UPLOAD_V1)

    def remote_upload(self, reader: Any) -> "defer.Deferred[UploadResultsCopy]":
        d: defer.Deferred[Any] = defer.maybeDeferred(self._core.upload, RemoteReader(reader))
        return d.addCallback(UploadResultsCopy.from_results)


@implementer(RIHelper)
class FoolscapHelper(Referenceable):  # type: ignore[misc]
    """RIHelper over the core; one FoolscapUploadHelper per running upload (the same object
    for a second client of the same storage index)."""

    def __init__(self, core: HelperCore) -> None:
        self._core = core
        self._wrappers: dict[bytes, tuple[Any, FoolscapUploadHelper]] = {}  # by storage index, while active

    def remote_get_version(self) -> dict[bytes, Any]:
        return _version(HELPER_V1)

    def remote_upload_chk(self, si: bytes) -> "defer.Deferred[tuple[Any, Any]]":
        return defer.ensureDeferred(self._upload_chk(si))

    async def _upload_chk(self, si: bytes) -> tuple[Any, Any]:
        results, uploader = await self._core.upload_chk(si)
        for key, (u, _) in list(self._wrappers.items()):
            if self._core.active.get(key) is not u:
                del self._wrappers[key]
        if uploader is None:
            return (UploadResultsCopy.from_results(results) if results is not None else None, None)
        entry = self._wrappers.get(si)
        if entry is None or entry[0] is not uploader:
            entry = (uploader, FoolscapUploadHelper(uploader))
            self._wrappers[si] = entry
        return (None, entry[1])


# --- client side ---------------------------------------------------------------------


@implementer(RIEncryptedUploadable)
class FoolscapEncryptedUploadable(Referenceable):  # type: ignore[misc]
    """Serves the client's EncryptedSource (shoal.immutable.assisted_upload) to the helper."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def remote_get_size(self) -> "defer.Deferred[int]":
        return defer.ensureDeferred(self._source.get_size())

    def remote_get_all_encoding_parameters(self) -> "defer.Deferred[tuple[int, int, int, int]]":
        return defer.ensureDeferred(self._source.get_all_encoding_parameters())

    def remote_read_encrypted(self, offset: int, length: int) -> "defer.Deferred[list[bytes]]":
        return defer.ensureDeferred(self._source.read_encrypted(offset, length))

    def remote_close(self) -> "defer.Deferred[None]":
        return defer.ensureDeferred(self._source.close())


def _results(answer: Any, what: str) -> HelperResults:
    if not isinstance(answer, UploadResultsCopy):
        raise HelperFailed(f"the upload helper answered {what} with {type(answer).__name__}, not upload results")
    try:
        return answer.to_results()
    except ValueError as e:
        raise HelperFailed(f"the upload helper's results for {what}: {e}") from None


class RemoteUploadHelper:
    def __init__(self, rref: Any) -> None:
        self._rref = rref

    async def upload(self, reader: Any) -> HelperResults:
        d = self._rref.callRemote("upload", FoolscapEncryptedUploadable(reader))
        answer = await d.addErrback(_translate, "upload")
        return _results(answer, "upload")


class RemoteHelper:
    """RIHelper as shoal.immutable.assisted_upload calls it."""

    def __init__(self, rref: Any) -> None:
        self._rref = rref

    async def upload_chk(self, storage_index: bytes) -> tuple[HelperResults | None, RemoteUploadHelper | None]:
        try:
            d = self._rref.callRemote("upload_chk", storage_index)
        except _LOST:
            raise HelperUnreachable("the upload helper is not connected") from None
        answer = await d.addErrback(_translate, "upload_chk")
        if not isinstance(answer, tuple | list) or len(answer) != 2:
            raise HelperFailed("the upload helper answered upload_chk with something other than a pair")
        results, uploader = answer
        if uploader is not None:
            return None, RemoteUploadHelper(uploader)
        return _results(results, "upload_chk"), None


class HelperConnection(service.Service):
    """The client's link to [client]helper.furl (Tahoe's Uploader helper connection)."""

    def __init__(self, tub: Any, furl: str) -> None:
        self._tub = tub
        self.furl = furl
        self._rref: Any = None
        self._reconnector: Any = None
        self.on_change: Callable[[], None] | None = None

    def startService(self) -> None:
        super().startService()
        self._reconnector = self._tub.connectTo(self.furl, self._connected)

    def stopService(self) -> Any:
        if self._reconnector is not None:
            self._reconnector.stopConnecting()
        return super().stopService()

    def _connected(self, rref: Any) -> None:
        d = rref.callRemote("get_version")

        def got(version: Any) -> None:
            if not isinstance(version, dict) or HELPER_V1 not in version:
                log.msg(f"upload helper {censor_furl(self.furl)} does not speak helper/v1; not using it")
                return
            self._rref = rref
            rref.notifyOnDisconnect(self._lost, rref)

        d.addCallbacks(got, lambda f: log.msg(f"upload helper get_version failed: {f.getErrorMessage()}"))

    def _lost(self, rref: Any) -> None:
        if rref is self._rref:
            self._rref = None

    def helper(self) -> RemoteHelper | None:
        """The helper while connected."""
        return RemoteHelper(self._rref) if self._rref is not None else None

    def status(self) -> dict[str, Any]:
        """Tahoe's welcome-page facts: the censored FURL and "yes"/"no"."""
        return {"furl": censor_furl(self.furl), "connected": "yes" if self._rref is not None else "no"}
