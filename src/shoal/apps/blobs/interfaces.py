"""Soledad's server-side ``IBlobsBackend`` (leap.soledad ``server/interfaces.py``;
app-apis.md 1.4), restated as a zope.interface so code that asserts it
(``verifyObject(IBlobsBackend, backend)``) accepts shoal's grid backend.

Every method returns a Twisted Deferred. Isolation of concurrent calls on one
blob is the backend's job. ``get_total_storage`` answers in units of 1024
bytes (Soledad's filesystem backend reports ``du -s``); shoal rounds up, so any
stored byte counts as a unit.
"""

from zope.interface import Interface


class IBlobsBackend(Interface):
    """A backend that stores users' blobs by (namespace, blob id)."""

    def read_blob(user, blob_id, consumer, namespace="", range=None):  # type: ignore[no-untyped-def]  # noqa: A002, N805
        """Write the blob, or bytes [start, end) of it, to an IConsumer; errback BlobNotFound."""

    def write_blob(user, blob_id, producer, namespace=""):  # type: ignore[no-untyped-def]  # noqa: N805
        """Store what an IProducer produces; errback BlobExists or QuotaExceeded."""

    def delete_blob(user, blob_id, namespace=""):  # type: ignore[no-untyped-def]  # noqa: N805
        """Delete the blob, leaving a tombstone; errback BlobNotFound."""

    def get_blob_size(user, blob_id, namespace=""):  # type: ignore[no-untyped-def]  # noqa: N805
        """The blob's size in bytes; errback BlobNotFound."""

    def count(user, namespace=""):  # type: ignore[no-untyped-def]  # noqa: N805
        """The number of live blobs (tombstones not counted)."""

    def list_blobs(user, namespace="", order_by=None, deleted=False, filter_flag=None):  # type: ignore[no-untyped-def]  # noqa: N805
        """Blob ids, ordered by date ('date', '+date', '-date'), or the tombstoned ones, or those with a flag."""

    def get_total_storage(user):  # type: ignore[no-untyped-def]  # noqa: N805
        """The user's usage over all namespaces, in units of 1024 bytes."""

    def get_tag(user, blob_id, namespace=""):  # type: ignore[no-untyped-def]  # noqa: N805
        """The base64url of the blob's last 16 bytes; errback BlobNotFound."""

    def get_flags(user, blob_id, namespace=""):  # type: ignore[no-untyped-def]  # noqa: N805
        """The blob's list of flags; errback BlobNotFound."""

    def set_flags(user, blob_id, flags, namespace=""):  # type: ignore[no-untyped-def]  # noqa: N805
        """Replace the blob's flags; errback BlobNotFound or InvalidFlag."""
