"""The storage server: shares on disk, leases and space, with no transport.

``StorageServer`` mirrors Tahoe-LAFS 1.20's RIStorageServer method for
method, over a storage directory laid out exactly as Tahoe lays it out, so
either program serves the other's shares. Adapters (Foolscap, later HTTP)
sit on top and only translate calls. What shoal does better than Tahoe
(atomic share writes, a max_space cap, read-only that means it) is described
in docs/storage.md.

Modules: ``server`` (the methods), ``buckets`` (immutable upload and read),
``slots`` (mutable test-and-set), ``shares`` (parsed share files and their
leases), ``space`` (reserved_space and max_space), ``layout`` (paths and
durable file changes), ``crawler`` and ``expiration`` (lease expiry),
``advisories`` (corruption reports), ``validate`` (argument checks),
``errors``.
"""

from shoal.storage.buckets import BucketReader, BucketWriter
from shoal.storage.crawler import LeaseCrawler
from shoal.storage.errors import (
    BadRequestError,
    BadWriteEnablerError,
    BucketClosedError,
    ConflictingWriteError,
    CorruptShareError,
    DataTooLargeError,
    NoSpaceError,
    NoSuchLeaseError,
    ReadOnlyError,
    ShareNotFoundError,
    StorageError,
    UnsupportedTestOperatorError,
)
from shoal.storage.expiration import LEASE_DURATION, ExpirationPolicy
from shoal.storage.server import StorageServer

__all__ = [
    "LEASE_DURATION",
    "BadRequestError",
    "BadWriteEnablerError",
    "BucketClosedError",
    "BucketReader",
    "BucketWriter",
    "ConflictingWriteError",
    "CorruptShareError",
    "DataTooLargeError",
    "ExpirationPolicy",
    "LeaseCrawler",
    "NoSpaceError",
    "NoSuchLeaseError",
    "ReadOnlyError",
    "ShareNotFoundError",
    "StorageError",
    "StorageServer",
    "UnsupportedTestOperatorError",
]
