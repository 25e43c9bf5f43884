"""The Foolscap upload-helper protocol of Tahoe-LAFS 1.20: remote names, methods, constraints.

A client holding the helper's FURL calls ``upload_chk(storage_index)`` on an
RIHelper ("RIHelper.tahoe.allmydata.com"). The answer is a pair: upload
results when the file is already healthy in the grid (and None), or None and
an RICHKUploadHelper ("RIUploadHelper.tahoe.allmydata.com") whose
``upload(reader)`` the client calls with its RIEncryptedUploadable
("RIEncryptedUploadable.tahoe.allmydata.com"). The helper pulls ciphertext
from the reader with ``read_encrypted(offset, length)`` (a list of strings),
encodes and places the shares, and ``upload`` answers with upload results.

Upload results travel as a Foolscap Copyable whose type name is Tahoe's
"allmydata.upload.UploadResults.tahoe.allmydata.com"; its state is a dict of
attributes (sharemap {shnum: set(server id)}, servermap {server id:
set(shnum)}, uri_extension_hash, uri_extension_data (the unpacked UEB, str
keys), preexisting_shares, pushed_shares, file_size, ciphertext_fetched,
timings, verifycapstr, uri). ``HelperResults`` is the same as a frozen value;
the Copyable converts at the wire.
"""

# Foolscap reads these method signatures as schemas: no self, constraints as
# default values.
# mypy: disable-error-code="misc"
# ruff: noqa: B008, N805

from typing import Any as AnyType

import attrs
from foolscap.api import Any, ChoiceOf, Copyable, DictOf, ListOf, RemoteCopy, RemoteInterface

from shoal.protocol.storage import Offset, ReadSize, StorageIndex

HELPER_V1 = b"http://allmydata.org/tahoe/protocols/helper/v1"
CHK_UPLOAD_V1 = b"http://allmydata.org/tahoe/protocols/helper/chk-upload/v1"
RESULTS_TYPE = "allmydata.upload.UploadResults.tahoe.allmydata.com"

UploadResults = Any()  # as Tahoe declares it


class RIEncryptedUploadable(RemoteInterface):
    __remote_name__ = "RIEncryptedUploadable.tahoe.allmydata.com"

    def get_size():
        return Offset

    def get_all_encoding_parameters():
        return (int, int, int, int)  # k, happy, n, segment size

    def read_encrypted(offset=Offset, length=ReadSize):
        return ListOf(bytes)

    def close():
        return None


class RICHKUploadHelper(RemoteInterface):
    __remote_name__ = "RIUploadHelper.tahoe.allmydata.com"

    def get_version():
        return DictOf(bytes, Any())

    def upload(reader=RIEncryptedUploadable):
        return UploadResults


class RIHelper(RemoteInterface):
    __remote_name__ = "RIHelper.tahoe.allmydata.com"

    def get_version():
        return DictOf(bytes, Any())

    def upload_chk(si=StorageIndex):
        return (UploadResults, ChoiceOf(RICHKUploadHelper, None))


@attrs.frozen
class HelperResults:
    """What a helper answers about one file (Tahoe's HelperUploadResults as a value)."""

    uri_extension_hash: bytes
    uri_extension_data: dict[str, AnyType]
    sharemap: dict[int, frozenset[bytes]]  # shnum -> server ids holding it
    servermap: dict[bytes, frozenset[int]] = attrs.field(factory=dict)
    preexisting_shares: int = 0
    pushed_shares: int = 0
    file_size: int | None = None
    ciphertext_fetched: int | None = None
    timings: dict[str, float] = attrs.field(factory=dict)
    verifycapstr: bytes | None = None


class UploadResultsCopy(Copyable, RemoteCopy):  # type: ignore[misc]
    """Tahoe's HelperUploadResults on the wire, both ways."""

    typeToCopy = RESULTS_TYPE
    copytype = RESULTS_TYPE

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.sharemap: dict[int, set[bytes]] = {}
        self.servermap: dict[bytes, set[int]] = {}
        self.file_size: int | None = None
        self.ciphertext_fetched: int | None = None
        self.uri: bytes | None = None
        self.preexisting_shares: int | None = None
        self.pushed_shares: int | None = None

    def getStateToCopy(self) -> dict[str, AnyType]:  # noqa: N802  (Foolscap's name)
        return dict(self.__dict__)

    def setCopyableState(self, state: dict[str, AnyType]) -> None:  # noqa: N802
        if not isinstance(state, dict):
            raise ValueError("upload results are not a dict")
        self.__init__()  # type: ignore[misc]
        for key, value in state.items():
            if isinstance(key, str):
                setattr(self, key, value)

    @classmethod
    def from_results(cls, r: HelperResults) -> "UploadResultsCopy":
        c = cls()
        c.timings = dict(r.timings)
        c.sharemap = {sh: set(ids) for sh, ids in r.sharemap.items()}
        c.servermap = {sid: set(shs) for sid, shs in r.servermap.items()}
        c.file_size = r.file_size
        c.ciphertext_fetched = r.ciphertext_fetched
        c.preexisting_shares = r.preexisting_shares
        c.pushed_shares = r.pushed_shares
        c.uri_extension_hash = r.uri_extension_hash  # type: ignore[attr-defined]
        c.uri_extension_data = dict(r.uri_extension_data)  # type: ignore[attr-defined]
        if r.verifycapstr is not None:
            c.verifycapstr = r.verifycapstr  # type: ignore[attr-defined]
        return c

    def to_results(self) -> HelperResults:
        """The received state, checked: ValueError names what is wrong."""
        ueb_hash = getattr(self, "uri_extension_hash", None)
        if not isinstance(ueb_hash, bytes) or len(ueb_hash) != 32:
            raise ValueError("upload results have no 32-byte uri_extension_hash")
        data = getattr(self, "uri_extension_data", None)
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise ValueError("upload results have no uri_extension_data dict")
        sharemap: dict[int, frozenset[bytes]] = {}
        raw = self.sharemap if isinstance(self.sharemap, dict) else {}
        for sh, ids in raw.items():
            if isinstance(sh, int) and isinstance(ids, set | frozenset | list | tuple):
                sharemap[sh] = frozenset(i for i in ids if isinstance(i, bytes))
        timings = self.timings if isinstance(self.timings, dict) else {}
        return HelperResults(
            uri_extension_hash=ueb_hash,
            uri_extension_data=data,
            sharemap=sharemap,
            preexisting_shares=_count(self.preexisting_shares),
            pushed_shares=_count(self.pushed_shares),
            file_size=self.file_size if isinstance(self.file_size, int) else None,
            ciphertext_fetched=self.ciphertext_fetched if isinstance(self.ciphertext_fetched, int) else None,
            timings={str(k): float(v) for k, v in timings.items()
                     if isinstance(v, float) or (isinstance(v, int) and abs(v) < 2**53)},
        )


def _count(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
