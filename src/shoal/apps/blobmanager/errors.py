"""The BlobManager's errors (names follow Soledad's client errors, app-apis.md 1.5)."""

from shoal.errors import CallerError, ConflictError, Fault, NotFoundError, ShoalError


class BlobManagerError(ShoalError):
    """Base of every BlobManager error."""


class BlobAlreadyExistsError(BlobManagerError, ConflictError):
    """The blob id is already in the local cache or on the server (blobs are immutable)."""


class BlobNotFoundError(BlobManagerError, NotFoundError):
    """Neither the local cache nor the server has this blob id."""


class InvalidFlagsError(BlobManagerError, CallerError):
    """The server refused a flag (406): only PENDING, PROCESSING, PROCESSED, FAILED exist."""


class QuotaExceededError(BlobManagerError, CallerError):
    """The server refused an upload because the user's quota is full (507)."""


class RetriableTransferError(BlobManagerError):
    """A transfer failed in a way worth retrying (connection lost, server 5xx)."""

    fault = Fault.SERVER


class MaximumRetriesError(BlobManagerError):
    """A transfer kept failing until its retry budget ran out (the server's, or the network's)."""

    fault = Fault.SERVER


class InvalidBlobError(BlobManagerError):
    """Stored bytes that do not decrypt: wrong secret, wrong blob id, or tampering (the MAC check);
    counted as the server's, which handed back bytes that do not authenticate."""

    fault = Fault.SERVER


class FramingError(BlobManagerError):
    """A /stream body that does not follow the size+tag+space+bytes framing (the server's fault)."""

    fault = Fault.SERVER
