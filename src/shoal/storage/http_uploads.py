"""Immutable uploads in progress over HTTP: which bucket writer and upload secret each share has.

Tahoe-LAFS 1.20 (storage/http_server.py UploadsInProgress): an allocation
records, per (storage index, share number), the writer and the upload secret
presented with it. A later chunk or abort must present the same secret
(401 otherwise) and finds nothing (404) once the writer is closed, aborted
(by the client or the server's 30-minute idle rule) or was never made.
Another client may allocate other shares of the same storage index with
its own secret. An allocation repeated with the same secret and size gets
the shares still in progress back as allocated (the protocol's "same call,
same answer"), so a client that restarts resumes its partial shares: its
first chunk's answer says which ranges the server still requires. Writers
that finished are forgotten lazily.
"""

import hmac

import attrs

from shoal.protocol.http_errors import NOT_FOUND, UNAUTHORIZED, HttpRequestError
from shoal.storage.buckets import BucketWriter


@attrs.frozen
class _Upload:
    writer: BucketWriter
    secret: bytes = attrs.field(repr=False)


class UploadsInProgress:
    """The HTTP adapter's table of open bucket writers."""

    def __init__(self) -> None:
        self._uploads: dict[tuple[bytes, int], _Upload] = {}

    def __len__(self) -> int:
        self._forget_closed()
        return len(self._uploads)

    def add(self, writer: BucketWriter, upload_secret: bytes) -> None:
        self._forget_closed()
        self._uploads[(writer.storage_index, writer.shnum)] = _Upload(writer, upload_secret)

    def get(self, storage_index: bytes, shnum: int, upload_secret: bytes) -> BucketWriter:
        """The open writer of this share; 401 if it was allocated with another secret, 404 if none."""
        key = (storage_index, shnum)
        upload = self._uploads.get(key)
        if upload is not None and upload.writer.closed:
            del self._uploads[key]
            upload = None
        if upload is None:
            raise HttpRequestError(NOT_FOUND, f"share {shnum} has no upload in progress")
        if not hmac.compare_digest(upload.secret, upload_secret):
            raise HttpRequestError(UNAUTHORIZED, f"wrong upload secret for share {shnum}")
        return upload.writer

    def resumable(self, storage_index: bytes, shnum: int, upload_secret: bytes, allocated_size: int
                  ) -> BucketWriter | None:
        """The open writer of this share if it was allocated with this secret and size: an
        allocation repeated by the same client (after a restart) gets it back, as the protocol
        says a repeated call with the same upload secret must answer the same."""
        upload = self._uploads.get((storage_index, shnum))
        if upload is None or upload.writer.closed or upload.writer.allocated_size != allocated_size:
            return None
        return upload.writer if hmac.compare_digest(upload.secret, upload_secret) else None

    def forget(self, writer: BucketWriter) -> None:
        key = (writer.storage_index, writer.shnum)
        upload = self._uploads.get(key)
        if upload is not None and upload.writer is writer:
            del self._uploads[key]

    def _forget_closed(self) -> None:
        for key in [key for key, upload in self._uploads.items() if upload.writer.closed]:
            del self._uploads[key]
