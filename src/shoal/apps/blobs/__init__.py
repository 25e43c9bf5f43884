"""A Soledad-compatible blob service on the grid (LEAP Soledad's blobs server API).

``resource`` serves Soledad's HTTP routes, ``backend`` is its IBlobsBackend
over immutable files and per-user directories (``store``) with a SQLite
cache (``index``); ``rules``, ``ranges`` and ``framing`` are the pure facts
of the protocol, ``auth`` its Token header, ``service`` the node's wiring.
"""

from shoal.apps.blobs.auth import TokenFile, token_header
from shoal.apps.blobs.backend import GridBlobsBackend
from shoal.apps.blobs.errors import (
    BadRequest,
    BlobError,
    BlobExists,
    BlobNotFound,
    BlobStoreError,
    InvalidFlag,
    InvalidRequest,
    QuotaExceeded,
    RangeNotSatisfiable,
    Unauthorized,
)
from shoal.apps.blobs.framing import (
    DownloadStreamParser,
    Frame,
    frame_header,
    parse_download_stream,
    upload_body,
)
from shoal.apps.blobs.rules import ACCEPTED_FLAGS, DEFAULT_NAMESPACE, tag_of
from shoal.apps.blobs.service import BlobService, BlobSettings, make_blob_service

__all__ = [
    "ACCEPTED_FLAGS",
    "DEFAULT_NAMESPACE",
    "BadRequest",
    "BlobError",
    "BlobExists",
    "BlobNotFound",
    "BlobService",
    "BlobSettings",
    "BlobStoreError",
    "DownloadStreamParser",
    "Frame",
    "GridBlobsBackend",
    "InvalidFlag",
    "InvalidRequest",
    "QuotaExceeded",
    "RangeNotSatisfiable",
    "TokenFile",
    "Unauthorized",
    "frame_header",
    "make_blob_service",
    "parse_download_stream",
    "tag_of",
    "token_header",
    "upload_body",
]
