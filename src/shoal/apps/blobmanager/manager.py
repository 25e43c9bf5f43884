"""BlobManager: a Soledad-style blob client with a local cache and sync (app-apis.md 1.5).

Facts followed: the method set (put/get/delete/set_flags/get_flags/count/
remote_list/local_list/local_list_status/send_missing/fetch_missing/sync/
sync_progress/refresh_sync_status_from_server), the sync states and
priorities (cache.py), ``concurrent_transfers_limit = 3``,
``max_decrypt_retries = 3``, retries with growing pauses (retry.py), the sync
algorithm (list remote, diff with local, mark pending uploads and downloads,
apply remote deletions, then transfer under the concurrency limit, highest
priority first), client-side encryption (crypto.py) and the ``/stream`` path
for many small blobs (framing.py).

shoal's choices: the cache keeps the encrypted bytes, so nothing on disk or on
the server is plaintext; ``sync`` also turns FAILED_UPLOAD/FAILED_DOWNLOAD back
into pending work so a sync after an outage converges; a 409 on upload of a
blob this client holds counts as synced (blobs are immutable); with
``upload_on_put=False`` a put only queues the blob (PENDING_UPLOAD), so many
small puts leave together through ``/stream`` at the next sync.
"""

import functools
import io
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import IO, Any, TypeVar

from twisted.internet import defer

from shoal.apps.blobmanager.cache import LocalCache, Priority, SyncStatus, parse_priority
from shoal.apps.blobmanager.crypto import decrypt_blob, encrypt_blob, tag_of
from shoal.apps.blobmanager.errors import (
    BlobAlreadyExistsError,
    BlobManagerError,
    BlobNotFoundError,
    FramingError,
    InvalidBlobError,
    QuotaExceededError,
    RetriableTransferError,
)
from shoal.apps.blobmanager.remote import BlobsRemote
from shoal.apps.blobmanager.retry import RetryPolicy, with_retry

log = logging.getLogger(__name__)

UPLOAD_QUEUE = (SyncStatus.PENDING_UPLOAD,)
DOWNLOAD_QUEUE = (SyncStatus.PENDING_DOWNLOAD,)
T = TypeVar("T")


class BlobDoc:
    """Soledad's BlobDoc: a blob's content (a file object) and id, as `put` takes it."""

    def __init__(self, content: IO[bytes], blob_id: str | None = None) -> None:
        self.blob_fd = content
        self.blob_id = blob_id if blob_id is not None else uuid.uuid4().hex
        self.is_blob = True


class BlobManager:
    """Soledad's ``BlobManager(local_path, remote, key, secret, user, token=None, cert_file=None,
    remote_stream=None)``, with shoal's extras as keyword-only arguments.

    `local_path` is the directory of the cache file ``{user}_blobs.db``. `key` is
    Soledad's SQLCipher key; shoal's cache is plain SQLite whose payloads are
    already the encrypted stored bytes, so the key is accepted and not used
    (blob ids, namespaces and sync states are in clear in the cache). `cert_file`
    is a PEM CA certificate that HTTPS servers must chain to (else the system
    roots)."""

    concurrent_transfers_limit = 3
    concurrent_writes_limit = 100
    max_decrypt_retries = 3

    def __init__(self, local_path: str, remote: str, key: bytes | str | None, secret: bytes, user: str,
                 token: str | None = None, cert_file: str | None = None, remote_stream: str | None = None, *,
                 reactor: Any = None, concurrent_transfers_limit: int | None = None,
                 retry: RetryPolicy | None = None, use_stream: bool = True, stream_threshold: int = 64 * 1024,
                 stream_batch: int = 200, upload_on_put: bool = True) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor
            reactor = global_reactor
        if not isinstance(secret, bytes):
            raise TypeError(f"the storage secret must be bytes, not {type(secret).__name__}")
        self.reactor = reactor
        self.key = key
        self.secret = secret
        self.user = user
        if concurrent_transfers_limit is not None:
            self.concurrent_transfers_limit = concurrent_transfers_limit
        self.retry = retry or RetryPolicy()
        self.use_stream = use_stream
        self.stream_threshold = stream_threshold
        self.stream_batch = stream_batch
        self.upload_on_put = upload_on_put  # False: put only queues; send_missing/sync upload (in /stream batches)
        self.semaphore = defer.DeferredSemaphore(self.concurrent_writes_limit)
        self.local = LocalCache(os.path.join(local_path, f"{user}_blobs.db"))
        self.remote = BlobsRemote(reactor, remote, user, token, remote_stream,
                                  connections=self.concurrent_transfers_limit, cert_file=cert_file)
        self.transfers: list[tuple[str, str]] = []  # ("upload" | "download", blob_id), in completion order
        self.retries = 0

    async def close(self) -> None:
        await self.remote.close()
        self.local.close()

    # -- helpers ------------------------------------------------------------

    def _count_retry(self, failures: int, error: Exception) -> None:
        self.retries += 1

    async def _retrying(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        return await with_retry(self.reactor, self.retry, fn, self._count_retry)

    def _decrypt(self, blob_id: str, stored: bytes) -> bytes:
        return decrypt_blob(self.secret, blob_id, stored)

    # -- single blobs ---------------------------------------------------------

    async def _limited(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one local operation under concurrent_writes_limit (Soledad's semaphore)."""
        await self.semaphore.acquire()
        try:
            return await fn()
        finally:
            self.semaphore.release()

    async def put(self, doc: Any, size: Any = None, namespace: str = "", local_only: bool = False,
                  priority: int | str = Priority.DEFAULT) -> None:
        """Encrypt and keep locally, then try one upload (a transient failure leaves it pending).

        Soledad's form ``put(doc, size, ...)`` takes a BlobDoc (``blob_id``, ``blob_fd``)
        and its size; shoal's form ``put(blob_id, data, ...)`` takes the id and bytes or
        a file."""
        prio = parse_priority(priority)
        if isinstance(doc, str):
            blob_id, data = doc, size
        else:
            blob_id, data = doc.blob_id, doc.blob_fd
        if not isinstance(blob_id, str):
            raise TypeError(f"a blob id is text, not {type(blob_id).__name__}")
        if data is None:
            raise TypeError(f"put of blob {blob_id}: no data")
        await self._limited(lambda: self._put(blob_id, data, namespace, local_only, prio))

    async def _put(self, blob_id: str, data: bytes | IO[bytes], namespace: str, local_only: bool,
                   priority: Priority) -> None:
        if self.local.status(namespace, blob_id) is not None:
            raise BlobAlreadyExistsError(f"blob {blob_id} (namespace {namespace!r}) is already in the local cache")
        plaintext = data if isinstance(data, bytes) else data.read()
        if not isinstance(plaintext, bytes):
            raise TypeError(f"blob {blob_id}: content must be bytes, not {type(plaintext).__name__}")
        stored = encrypt_blob(self.secret, blob_id, plaintext)
        status = SyncStatus.LOCAL_ONLY if local_only else SyncStatus.PENDING_UPLOAD
        self.local.put(namespace, blob_id, stored, status, priority)
        if not local_only and self.upload_on_put:
            try:
                await self._upload(namespace, blob_id)
            except RetriableTransferError:
                pass  # stays PENDING_UPLOAD; send_missing/sync retries it

    async def _upload(self, namespace: str, blob_id: str) -> None:
        stored = self.local.get(namespace, blob_id)
        if stored is None:
            raise BlobNotFoundError(f"blob {blob_id}: pending upload but no bytes in the local cache")
        try:
            await self.remote.put(blob_id, stored, namespace)
        except BlobAlreadyExistsError:
            pass  # immutable: the server already holds it
        except QuotaExceededError:
            self.local.set_status(namespace, blob_id, SyncStatus.FAILED_UPLOAD)
            raise
        self.local.set_status(namespace, blob_id, SyncStatus.SYNCED)
        self.transfers.append(("upload", blob_id))

    async def get(self, blob_id: str, namespace: str = "",
                  priority: int | str = Priority.DEFAULT) -> io.BytesIO | None:
        """A file object of the plaintext (as Soledad's), from the cache or else downloaded
        (with retries); None if nobody has it."""
        plaintext = await self.get_bytes(blob_id, namespace, priority)
        return None if plaintext is None else io.BytesIO(plaintext)

    async def get_bytes(self, blob_id: str, namespace: str = "",
                        priority: int | str = Priority.DEFAULT) -> bytes | None:
        """The plaintext as bytes (shoal's extra); None if nobody has it."""
        priority = parse_priority(priority)
        stored = self.local.get(namespace, blob_id)
        if stored is not None:
            return self._decrypt(blob_id, stored)
        state = self.local.status(namespace, blob_id)
        if state is not None and state[0] == SyncStatus.PENDING_DELETE:
            return None
        if state is None:
            self.local.set_status(namespace, blob_id, SyncStatus.PENDING_DOWNLOAD, priority)
        else:
            self.local.set_priority(namespace, blob_id, priority)
        try:
            return await self._retrying(lambda: self._download(namespace, blob_id))  # type: ignore[no-any-return]
        except BlobNotFoundError:
            self.local.delete(namespace, blob_id)
            return None

    async def _download(self, namespace: str, blob_id: str) -> bytes:
        last: InvalidBlobError | None = None
        for _ in range(self.max_decrypt_retries):
            stored, tag = await self.remote.get(blob_id, namespace)
            try:
                return self._store_downloaded(namespace, blob_id, stored, tag)
            except InvalidBlobError as e:
                last = e
        self.local.set_status(namespace, blob_id, SyncStatus.FAILED_DOWNLOAD)
        assert last is not None
        raise last

    def _store_downloaded(self, namespace: str, blob_id: str, stored: bytes, tag: str | None) -> bytes:
        if tag is not None and tag != tag_of(stored):
            raise InvalidBlobError(f"blob {blob_id}: Tag header {tag!r} does not match the bytes' tag")
        plaintext = self._decrypt(blob_id, stored)
        self.local.put(namespace, blob_id, stored, SyncStatus.SYNCED, None)
        self.transfers.append(("download", blob_id))
        return plaintext

    async def delete(self, blob_id: str, namespace: str = "") -> None:
        """Delete here and on the server; BlobNotFoundError if the server has no such blob
        (as Soledad's). A transient failure leaves it PENDING_DELETE for sync."""
        await self._limited(lambda: self._delete(blob_id, namespace))

    async def _delete(self, blob_id: str, namespace: str) -> None:
        self.local.set_status(namespace, blob_id, SyncStatus.PENDING_DELETE)
        self.local.drop_payload(namespace, blob_id)
        try:
            await self._delete_remote(namespace, blob_id, missing_ok=False)
        except RetriableTransferError:
            pass

    async def _delete_remote(self, namespace: str, blob_id: str, missing_ok: bool = True) -> None:
        try:
            await self.remote.delete(blob_id, namespace)
        except BlobNotFoundError:
            self.local.delete(namespace, blob_id)
            if not missing_ok:
                raise
            return
        self.local.delete(namespace, blob_id)

    async def set_flags(self, blob_id: str, flags: list[str], namespace: str = "") -> None:
        await self._limited(lambda: self._retrying(lambda: self.remote.set_flags(blob_id, flags, namespace)))

    async def get_flags(self, blob_id: str, namespace: str = "") -> list[str]:
        return await self._retrying(lambda: self.remote.get_flags(blob_id, namespace))  # type: ignore[no-any-return]

    async def count(self, namespace: str = "") -> dict[str, int]:
        """``{"count": N}``, the server's answer, as Soledad's client returns it."""
        answer = await self._retrying(lambda: self.remote.listing(namespace, only_count=True))
        return {"count": int(answer["count"])}

    async def remote_list(self, namespace: str = "", order_by: str | None = None, deleted: bool = False,
                          filter_flag: str | None = None, only_count: bool = False) -> Any:
        return await self._retrying(lambda: self.remote.listing(namespace, order_by, deleted, filter_flag, only_count))

    def local_list(self, namespace: str = "", sync_status: SyncStatus | None = None) -> list[str]:
        return self.local.list_ids(namespace, sync_status)

    def local_list_status(self, status: SyncStatus, namespace: str = "") -> list[str]:
        return self.local.list_ids(namespace, status)

    def set_priority(self, blob_id: str, priority: int | str, namespace: str = "") -> None:
        self.local.set_priority(namespace, blob_id, parse_priority(priority))

    _set_priority = set_priority  # Soledad's (private) name

    def get_priority(self, blob_id: str, namespace: str = "") -> int | None:
        st = self.local.status(namespace, blob_id)
        return None if st is None else st[1]

    _get_priority = get_priority

    def sync_progress(self, namespace: str = "") -> dict[str, int]:
        return self.local.progress(namespace)

    # -- sync -----------------------------------------------------------------

    async def refresh_sync_status_from_server(self, namespace: str = "") -> None:
        """Diff the server's live and deleted lists with the cache and mark the work to do."""
        remote_ids = set(await self.remote_list(namespace))
        deleted = set(await self.remote_list(namespace, deleted=True)) - remote_ids
        local = {blob_id: self.local.status(namespace, blob_id) for blob_id in self.local.list_ids(namespace)}
        with self.local.db:
            self.local.db.execute("BEGIN")
            for blob_id, state in local.items():
                if state is None:
                    continue
                status = state[0]
                if status == SyncStatus.PENDING_DELETE or status == SyncStatus.LOCAL_ONLY:
                    continue
                if blob_id in deleted:
                    self.local.db.execute("DELETE FROM blobs WHERE namespace=? AND blob_id=?", (namespace, blob_id))
                    self.local.db.execute("DELETE FROM sync_state WHERE namespace=? AND blob_id=?",
                                          (namespace, blob_id))
                elif blob_id in remote_ids:
                    if status in (SyncStatus.PENDING_UPLOAD, SyncStatus.FAILED_UPLOAD):
                        self.local.set_status(namespace, blob_id, SyncStatus.SYNCED)
                    elif status == SyncStatus.FAILED_DOWNLOAD or (
                            status == SyncStatus.SYNCED and not self.local.has_payload(namespace, blob_id)):
                        self.local.set_status(namespace, blob_id, SyncStatus.PENDING_DOWNLOAD)
                elif self.local.has_payload(namespace, blob_id):
                    if status != SyncStatus.PENDING_UPLOAD:
                        self.local.set_status(namespace, blob_id, SyncStatus.PENDING_UPLOAD)
                else:  # neither here nor there
                    self.local.db.execute("DELETE FROM sync_state WHERE namespace=? AND blob_id=?",
                                          (namespace, blob_id))
            for blob_id in sorted(remote_ids - set(local)):
                self.local.set_status(namespace, blob_id, SyncStatus.PENDING_DOWNLOAD, Priority.DEFAULT)

    async def _drain(self, namespace: str, queue: Iterable[SyncStatus],
                     transfer: Callable[[str], Awaitable[None]], failed: SyncStatus) -> None:
        """Run `transfer` over the queue, highest priority first, at most the limit at once."""
        statuses = tuple(queue)
        in_flight: set[str] = set()

        async def worker() -> None:
            while True:
                blob_id = self.local.next_in_queue(namespace, statuses, in_flight)
                if blob_id is None:
                    return
                in_flight.add(blob_id)
                try:
                    await self._retrying(functools.partial(transfer, blob_id))
                except Exception as e:  # noqa: BLE001 - one blob's failure must not stop the others
                    log.warning("blob %s (namespace %r): %s failed: %s", blob_id, namespace, failed.name, e)
                    st = self.local.status(namespace, blob_id)
                    if st is not None and st[0] in statuses:
                        self.local.set_status(namespace, blob_id, failed)
                finally:
                    in_flight.discard(blob_id)

        workers = [defer.ensureDeferred(worker()) for _ in range(max(1, self.concurrent_transfers_limit))]
        await defer.gatherResults(workers, consumeErrors=True)

    async def send_missing(self, namespace: str = "") -> None:
        """Upload every PENDING_UPLOAD blob (small ones through /stream in batches)."""
        if self.use_stream:
            await self._stream_batches(namespace, upload=True)
        await self._drain(namespace, UPLOAD_QUEUE, lambda b: self._upload(namespace, b),
                          SyncStatus.FAILED_UPLOAD)

    async def fetch_missing(self, namespace: str = "") -> None:
        """Download every PENDING_DOWNLOAD blob (through /stream in batches when enabled)."""
        if self.use_stream:
            await self._stream_batches(namespace, upload=False)
        await self._drain(namespace, DOWNLOAD_QUEUE, lambda b: self._download_or_drop(namespace, b),
                          SyncStatus.FAILED_DOWNLOAD)

    async def _download_or_drop(self, namespace: str, blob_id: str) -> None:
        try:
            await self._download(namespace, blob_id)
        except BlobNotFoundError:
            self.local.delete(namespace, blob_id)  # deleted on the server meanwhile

    async def _stream_batches(self, namespace: str, upload: bool) -> None:
        """Move small pending blobs through /stream, batch by batch, in priority order.
        Any non-transient error stops the stream path; the per-blob path then handles the rest."""
        status = SyncStatus.PENDING_UPLOAD if upload else SyncStatus.PENDING_DOWNLOAD
        tried: set[str] = set()
        while True:
            batch: list[str] = []
            for blob_id in self.local.list_ids(namespace, status):
                if blob_id in tried:
                    continue
                if upload:
                    stored = self.local.get(namespace, blob_id)
                    if stored is None or len(stored) > self.stream_threshold:
                        continue
                batch.append(blob_id)
                if len(batch) >= self.stream_batch:
                    break
            if not batch:
                return
            tried.update(batch)
            try:
                step = self._stream_up if upload else self._stream_down
                await self._retrying(functools.partial(step, namespace, batch))
            except (BlobManagerError, ValueError):
                return

    async def _stream_up(self, namespace: str, batch: list[str]) -> None:
        blobs = [(b, self.local.get(namespace, b) or b"") for b in batch]
        await self.remote.stream_upload(blobs, namespace)
        self.local.set_statuses(namespace, batch, SyncStatus.SYNCED)
        self.transfers.extend(("upload", b) for b in batch)

    async def _stream_down(self, namespace: str, batch: list[str]) -> None:
        ids = iter(batch)

        def each(tag: str, stored: bytes) -> None:
            blob_id = next(ids, None)
            if blob_id is None:
                raise FramingError(f"stream download of {len(batch)} blobs returned more")
            try:
                self._store_downloaded(namespace, blob_id, stored, tag)
            except InvalidBlobError:
                pass  # left PENDING_DOWNLOAD: the per-blob path retries and counts decrypt failures

        count = await self.remote.stream_download(batch, each, namespace)
        if count != len(batch):
            raise FramingError(f"stream download of {len(batch)} blobs returned {count}")

    async def _send_deletes(self, namespace: str) -> None:
        await self._drain(namespace, (SyncStatus.PENDING_DELETE,), lambda b: self._delete_remote(namespace, b),
                          SyncStatus.PENDING_DELETE)

    async def sync(self, namespace: str = "") -> dict[str, int]:
        """Refresh from the server, then deletes, downloads and uploads; returns sync_progress."""
        for status, pending in ((SyncStatus.FAILED_UPLOAD, SyncStatus.PENDING_UPLOAD),
                                (SyncStatus.FAILED_DOWNLOAD, SyncStatus.PENDING_DOWNLOAD)):
            self.local.set_statuses(namespace, self.local.list_ids(namespace, status), pending)
        await self._send_deletes(namespace)
        await self.refresh_sync_status_from_server(namespace)
        await self.fetch_missing(namespace)
        await self.send_missing(namespace)
        return self.sync_progress(namespace)
