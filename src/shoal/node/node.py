"""The composition root: builds a node's services from its config and wires them.

A node is a Foolscap Tub (certificate in private/node.pem, so the tub id
persists) plus, when [storage] enabled, a StorageServer exposed through the
Foolscap adapter with its FURL in private/storage.furl, and the periodic
housekeeping (idle bucket writers, the lease crawler).
"""

import os
from typing import Any

from foolscap.api import Tub
from twisted.application import service
from twisted.internet import task
from twisted.python import log

from shoal.encoding.base32 import a2b
from shoal.node.config import ConfigError, NodeConfig
from shoal.node.identity import NodeIdentity, load_identity, permutation_seed, write_node_id_files
from shoal.storage.expiration import ExpirationPolicy
from shoal.storage.foolscap_adapter import FoolscapStorageServer
from shoal.storage.server import StorageServer

HOUSEKEEPING_INTERVAL = 1.0  # seconds between crawler slices
CRAWLER_SLICE = 0.1  # seconds of work per slice (keeps the reactor responsive)


def expiration_policy(config: NodeConfig) -> ExpirationPolicy:
    enabled = config.get_bool("storage", "expire.enabled", False)
    mode = config.get("storage", "expire.mode", "age") or "age"
    if mode not in ("age", "cutoff-date"):
        raise ConfigError(f"{config.path}: [storage]expire.mode must be 'age' or 'cutoff-date', not {mode!r}")
    cutoff = config.get_date("storage", "expire.cutoff_date")
    if enabled and mode == "cutoff-date" and cutoff is None:
        raise ConfigError(f"{config.path}: [storage]expire.cutoff_date is required with expire.mode = cutoff-date")
    sharetypes: list[str] = []
    if config.get_bool("storage", "expire.immutable", True):
        sharetypes.append("immutable")
    if config.get_bool("storage", "expire.mutable", True):
        sharetypes.append("mutable")
    return ExpirationPolicy(
        enabled=enabled,
        mode=mode,
        override_lease_duration=config.get_duration("storage", "expire.override_lease_duration"),
        cutoff_date=cutoff,
        sharetypes=frozenset(sharetypes),  # type: ignore[arg-type]  # attrs converter typing
    )


def _tub_port_and_location(config: NodeConfig) -> tuple[list[str], str | None]:
    port = (config.get("node", "tub.port") or "").strip()
    location = (config.get("node", "tub.location") or "").strip()
    if port == "disabled" or location == "disabled":
        if not (port == "disabled" and location == "disabled"):
            raise ConfigError(f"{config.path}: [node]tub.port and tub.location must both be 'disabled'")
        return [], None
    if not port:
        raise ConfigError(f"{config.path}: [node]tub.port is missing (or 'disabled')")
    if not location:
        raise ConfigError(f"{config.path}: [node]tub.location is missing (or 'disabled')")
    return [p for p in port.split(",") if p], location


class Node(service.MultiService):
    def __init__(self, config: NodeConfig) -> None:
        super().__init__()
        self.config = config
        self.identity: NodeIdentity = load_identity(config)
        self.tub = Tub(certFile=config.private_path("node.pem"))
        self.tub.setOption("logLocalFailures", True)
        self.tub.setOption("logRemoteFailures", True)
        self.tub.setOption("expose-remote-exception-types", False)
        ports, location = _tub_port_and_location(config)
        for port in ports:
            self.tub.listenOn(port)
        if location is not None:
            self.tub.setLocation(location)
        self.tub.setServiceParent(self)
        self.tubid_b32: str = self.tub.getTubID()
        self.nodeid: bytes = a2b(self.tubid_b32)
        write_node_id_files(config, self.tubid_b32)
        self.storage: StorageServer | None = None
        self.storage_furl: str | None = None
        if config.get_bool("storage", "enabled", True):
            self._init_storage()

    def _init_storage(self) -> None:
        cfg = self.config
        storage_dir = cfg.get("storage", "storage_dir") or "storage"
        storage_dir = os.path.join(cfg.basedir, os.path.expanduser(storage_dir))
        settings = dict(
            reserved_space=cfg.get_size("storage", "reserved_space") or 0,
            max_space=cfg.get_size("storage", "max_space"),
            readonly=cfg.get_bool("storage", "readonly", False),
            expiration=expiration_policy(cfg),
        )
        if not cfg.get("node", "tub.location") or cfg.get("node", "tub.location") == "disabled":
            raise ConfigError(f"{cfg.path}: [node]tub.port and tub.location are needed for [storage]enabled = true")
        self.storage = StorageServer(storage_dir, self.nodeid, **settings)  # type: ignore[arg-type]
        self.permutation_seed = permutation_seed(cfg, self.identity, self.tubid_b32, self.storage.have_shares())
        self._adapter = FoolscapStorageServer(self.storage)
        furl_file = cfg.private_path("storage.furl")
        self.storage_furl = self.tub.registerReference(self._adapter, furlFile=furl_file)
        self._housekeeping = task.LoopingCall(self._tick)

    def startService(self) -> None:
        super().startService()
        if self.storage is not None:
            self._housekeeping.start(HOUSEKEEPING_INTERVAL, now=False)

    def stopService(self) -> Any:
        if self.storage is not None:
            if self._housekeeping.running:
                self._housekeeping.stop()
            self.storage.shutdown()
        return super().stopService()

    def _tick(self) -> None:
        assert self.storage is not None
        try:
            self.storage.abort_idle_writers()
            self.storage.crawler.run_slice(CRAWLER_SLICE)
        except Exception:
            log.err(None, "storage housekeeping failed")
