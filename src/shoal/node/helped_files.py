"""The client's file service with an upload helper ([client]helper.furl), as Tahoe 1.20's Uploader.

Immutable files above the LIT size go through the helper while it is connected
(shoal.immutable.assisted_upload); when it is not connected, or its connection
is gone before the upload began, the file goes directly to the storage servers
and one log line says so. A connection lost during the upload fails it (the
helper keeps what it fetched: uploading again resumes).
"""

from collections.abc import Callable
from typing import Any

from twisted.python import log

from shoal.grid.helper_foolscap import HelperUnreachable
from shoal.grid.storage_broker import StorageBroker
from shoal.immutable.assisted_upload import HelperRef, assisted_upload
from shoal.immutable.params import LIT_THRESHOLD, EncodingParams
from shoal.node.files import ClientFiles
from shoal.node.identity import NodeIdentity


class HelpedFiles(ClientFiles):
    """ClientFiles whose immutable uploads go through `helper()` (the helper while connected, else None)."""

    def __init__(
        self, broker: StorageBroker, params: EncodingParams, identity: NodeIdentity,
        helper: Callable[[], HelperRef | None],
    ) -> None:
        super().__init__(broker, params, identity)
        self.helper = helper

    async def upload(self, source: Any, size: int, key: bytes | None = None, convergent: bool = True) -> Any:
        if size > LIT_THRESHOLD:
            helper = self.helper()
            if helper is None:
                log.msg("upload helper not connected; uploading directly to the storage servers")
            else:
                position = source.tell()
                try:
                    return await assisted_upload(
                        helper, source, size, params=self.params,
                        convergence_secret=self._convergence if convergent else None, key=key,
                    )
                except HelperUnreachable as e:
                    log.msg(f"upload helper unreachable ({e}); uploading directly to the storage servers")
                    source.seek(position)
        return await super().upload(source, size, key=key, convergent=convergent)
