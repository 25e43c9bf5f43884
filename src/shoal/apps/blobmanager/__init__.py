"""A Soledad-style BlobManager client for shoal's blob service (app-apis.md 1.5-1.6):
local SQLite cache, sync states and priorities, retries, client-side AES-256-GCM,
and the /stream path. Talks HTTP only."""

from shoal.apps.blobmanager.cache import LocalCache, Priority, SyncStatus, parse_priority
from shoal.apps.blobmanager.crypto import decrypt_blob, encrypt_blob, tag_of
from shoal.apps.blobmanager.errors import (
    BlobAlreadyExistsError,
    BlobManagerError,
    BlobNotFoundError,
    InvalidBlobError,
    InvalidFlagsError,
    MaximumRetriesError,
    QuotaExceededError,
    RetriableTransferError,
)
from shoal.apps.blobmanager.manager import BlobDoc, BlobManager
from shoal.apps.blobmanager.retry import RetryPolicy

__all__ = [
    "BlobManager", "BlobDoc", "LocalCache", "Priority", "SyncStatus", "RetryPolicy", "parse_priority",
    "encrypt_blob", "decrypt_blob", "tag_of",
    "BlobManagerError", "BlobAlreadyExistsError", "BlobNotFoundError", "InvalidBlobError",
    "InvalidFlagsError", "MaximumRetriesError", "QuotaExceededError", "RetriableTransferError",
]
