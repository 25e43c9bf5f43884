"""What can go wrong in the blob service, each with the HTTP status Soledad's
server answers for it (shoal.apps.blobs.resource maps them)."""

from shoal.errors import CallerError, ConflictError, Fault, NotFoundError, ShoalError


class BlobError(ShoalError):
    """Base of the blob service's errors; `status` is the HTTP answer."""

    status = 500


class BlobNotFound(BlobError, NotFoundError):
    """The client asked for a blob id the user does not have (or has deleted)."""

    status = 404

    def __init__(self, user: str, blob_id: str, namespace: str) -> None:
        super().__init__(f"Blob doesn't exist: {blob_id} (user {user}, namespace {namespace})")
        self.blob_id = blob_id


class BlobExists(BlobError, ConflictError):
    """A create-only PUT (or stream upload) named an id that is already stored."""

    status = 409

    def __init__(self, user: str, blob_id: str, namespace: str) -> None:
        super().__init__(f"Blob already exists: {blob_id} (user {user}, namespace {namespace})")
        self.blob_id = blob_id


class QuotaExceeded(BlobError, CallerError):
    """The user's stored bytes plus this upload would pass the quota."""

    status = 507

    def __init__(self, user: str, used: int, wanted: int, quota: int) -> None:
        super().__init__(f"Quota Exceeded! user {user} uses {used} of {quota} bytes and asked for {wanted} more")


class ObjectQuotaExceeded(QuotaExceeded):
    """The user's live blobs plus this upload's would pass the per-user object
    limit (a quota in objects, beside the one in bytes): 507 as Soledad's quota."""

    def __init__(self, user: str, used: int, wanted: int, limit: int) -> None:
        BlobError.__init__(
            self, f"Quota Exceeded! user {user} has {used} of {limit} blobs and asked for {wanted} more"
        )


class NamespaceFull(QuotaExceeded):
    """A namespace's directory would pass its entry limit (live blobs and
    tombstones: every edit rewrites that directory): 507."""

    def __init__(self, user: str, namespace: str, entries: int, wanted: int, limit: int) -> None:
        BlobError.__init__(
            self, f"Quota Exceeded! namespace {namespace} of user {user} holds {entries} of {limit} "
            f"entries (blobs and tombstones) and {wanted} more were asked"
        )


class TooManyNamespaces(QuotaExceeded):
    """A new namespace past the per-user limit (each is a directory linked
    from the user's, which every new namespace rewrites): 507."""

    def __init__(self, user: str, namespaces: int, limit: int) -> None:
        BlobError.__init__(self, f"Quota Exceeded! user {user} has {namespaces} of {limit} namespaces")


class InvalidFlag(BlobError, CallerError):
    """The client sent a flag outside Soledad's accepted set (or not a JSON list of them)."""

    status = 406

    def __init__(self, flag: object) -> None:
        super().__init__(f"Invalid flag: {flag!r}")
        self.flag = flag


class InvalidRequest(BlobError, CallerError):
    """A malformed request Soledad's server failed with a 500 (an invalid user,
    blob id or namespace, a flags body that is not JSON, an unknown stream
    direction): shoal keeps the status, with a message saying what was wrong."""

    status = 500


class BadRequest(BlobError, CallerError):
    """A malformed request Soledad never answered cleanly (an unknown order_by,
    a stream upload whose manifest and body disagree): 400."""

    status = 400


class RangeNotSatisfiable(BlobError, CallerError):
    """A Range header shoal cannot serve for a blob of `size` bytes."""

    status = 416

    def __init__(self, header: str, size: int) -> None:
        super().__init__(f"cannot serve Range {header!r} of a {size}-byte blob")
        self.size = size


class Unauthorized(BlobError, CallerError):
    """No credentials, an unknown user or token, or a URL naming another user."""

    status = 401


class BlobStoreError(BlobError):
    """The grid failed under a request (not enough servers, a corrupt directory):
    the server's side, not the client's; retrying later may work."""

    fault = Fault.GRID

    status = 500
