"""The client's file service: immutable upload and download with the node's
encoding parameters and secrets, over its storage broker (used by the web API)."""

from collections.abc import Callable
from typing import Any

from shoal.caps import CHKCap, LiteralCap
from shoal.crypto.hashes import convergence_hasher
from shoal.grid.storage_broker import StorageBroker
from shoal.grid.storage_client import Deadlines
from shoal.immutable.download import download
from shoal.immutable.params import (
    DEFAULT_MAX_SEGMENT_SIZE,
    LIT_THRESHOLD,
    EncodingParams,
    ParameterError,
)
from shoal.immutable.upload import InFlightUploads, UploadResult, upload, uploads_in_flight
from shoal.node.config import ConfigError, NodeConfig
from shoal.node.identity import NodeIdentity


def encoding_params(config: NodeConfig) -> EncodingParams:
    try:
        return EncodingParams(
            k=config.get_int("client", "shares.needed", 3),
            happy=config.get_int("client", "shares.happy", 7),
            n=config.get_int("client", "shares.total", 10),
            max_segment_size=config.get_int(
                "client", "shares._max_immutable_segment_size_for_testing", DEFAULT_MAX_SEGMENT_SIZE
            ),
        )
    except ParameterError as e:
        raise ConfigError(f"{config.path}: [client]shares.*: {e}") from None


MAX_STORAGE_TIMEOUT = 3600
MAX_KEY_POOL = 1024
DEFAULT_KEY_POOL = 2


def key_pool_size(config: NodeConfig) -> int:
    """[client] mutable.key_pool: how many RSA keys the node keeps made ahead (0..1024)."""
    size = config.get_int("client", "mutable.key_pool", DEFAULT_KEY_POOL)
    if not 0 <= size <= MAX_KEY_POOL:
        raise ConfigError(f"{config.path}: [client]mutable.key_pool: {size} is not 0..{MAX_KEY_POOL} keys")
    return size


def storage_deadlines(config: NodeConfig) -> Deadlines:
    """[client] storage.timeout: seconds a query or a read of one storage server may take
    before the client gives up on that server (default 30; a write or close gets twice as
    long). Lower it on grids where a silent server should be dropped sooner."""
    default = Deadlines()
    if not (config.get("client", "storage.timeout") or "").strip():
        return default
    seconds = config.get_int("client", "storage.timeout", 0)
    if not 1 <= seconds <= MAX_STORAGE_TIMEOUT:
        raise ConfigError(f"{config.path}: [client]storage.timeout: {seconds} is not 1..{MAX_STORAGE_TIMEOUT} seconds")
    return Deadlines(query=seconds, read=seconds, write=2 * seconds, advise=min(default.advise, seconds))


class ClientFiles:
    def __init__(self, broker: StorageBroker, params: EncodingParams, identity: NodeIdentity) -> None:
        self.broker = broker
        self.params = params
        self._convergence = identity.convergence_secret
        self._lease_secret = identity.lease_secret
        self.in_flight: InFlightUploads[UploadResult] = uploads_in_flight()  # same file at once: one upload

    def key_hasher(self, size: int) -> Any:
        """A fresh hasher whose digest is the convergent key of a file of `size` bytes
        (None for literal files), so the web API can hash a body while it arrives."""
        if size <= LIT_THRESHOLD:
            return None
        p = self.params
        return convergence_hasher(p.k, p.n, p.segment_size_for(size), self._convergence)

    async def upload(self, source: Any, size: int, key: bytes | None = None, convergent: bool = True) -> Any:
        return await upload(
            self.broker, source, size, params=self.params,
            convergence_secret=self._convergence if convergent else None,
            lease_secret=self._lease_secret, key=key, in_flight=self.in_flight,
        )

    async def download(
        self, cap: CHKCap | LiteralCap, write: Callable[[bytes], Any], offset: int = 0, length: int | None = None
    ) -> Any:
        return await download(self.broker, cap, write, offset=offset, length=length)
