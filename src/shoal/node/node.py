"""The composition root: builds a node's services from its config and wires them.

A node is a Foolscap Tub (certificate in private/node.pem, so the tub id
persists) plus, when [storage] enabled, a StorageServer exposed through the
Foolscap adapter with its FURL in private/storage.furl and, on the same port
unless [storage]force_foolscap, through the HTTP adapter over TLS (its NURLs
announced beside the FURL), and the periodic housekeeping (idle bucket
writers, the lease crawler, the scrubber: storage.housekeeping).
"""

import base64
import os
from typing import TYPE_CHECKING, Any

import attrs
from foolscap.api import Tub
from twisted.application import service
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import serverFromString
from twisted.python import log

from shoal import __version__
from shoal.checker import FileChecker
from shoal.checker.job import CheckerConfigError, CheckerJob, CheckerSettings
from shoal.dirnode import NodeMaker
from shoal.encoding.base32 import a2b
from shoal.errors import ShoalError
from shoal.grid.helper_foolscap import FoolscapHelper, HelperConnection
from shoal.grid.storage_broker import StorageBroker, storage_connector
from shoal.immutable.helper import Helper
from shoal.introducer.client import IntroducerClient
from shoal.introducer.files import (
    FileSequencer,
    cache_filename,
    load_introducers_yaml,
    load_servers_yaml,
)
from shoal.mutable import MutableClient
from shoal.mutable.keypool import KeyPool
from shoal.node import helped_files
from shoal.node.config import ConfigError, NodeConfig, body_rate, parse_size
from shoal.node.files import ClientFiles, encoding_params, key_pool_size, storage_deadlines
from shoal.node.identity import (
    NodeIdentity,
    load_identity,
    permutation_seed,
    write_atomically,
    write_node_id_files,
)
from shoal.protocol.announcement import storage_announcement
from shoal.protocol.body_rate import DEFAULT_WINDOW
from shoal.protocol.nurl import nurls_for_location, spki_hash
from shoal.storage.expiration import ExpirationPolicy
from shoal.storage.foolscap_adapter import FoolscapStorageServer
from shoal.storage.housekeeping import Housekeeping
from shoal.storage.http_listener import HttpsBesideFoolscap
from shoal.storage.http_server import HttpStorageServer
from shoal.storage.server import StorageServer
from shoal.web.root import Root
from shoal.web.services import WebServices
from shoal.web.spool import ShoalSite, http_channel
from shoal.web.statistics import NodeStats
from shoal.web.storagepage import StorageSource
from shoal.web.welcome import WelcomeSource

if TYPE_CHECKING:  # the blob service and SFTP are imported only by a node that runs them (memory)
    from shoal.apps.blobs import BlobService

HOUSEKEEPING_INTERVAL = 1.0  # seconds between crawler slices
CRAWLER_SLICE = 0.1  # seconds of work per slice (keeps the reactor responsive)
CHECKER_SETTLE = 5.0  # seconds without a new server connecting before the checker job starts


def _sleep(seconds: float) -> "defer.Deferred[None]":
    return task.deferLater(reactor, seconds, lambda: None)


def resolve_root(config: NodeConfig, root: str) -> str:
    """A [checker]roots item: a cap, or `alias:` naming a line of private/aliases."""
    if root.startswith("URI:"):
        return root
    name = root[:-1] if root.endswith(":") else root
    try:
        with open(config.private_path("aliases"), "rb") as f:
            lines = f.read().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for line in lines:
        alias, sep, cap = line.partition(":")
        if sep and alias.strip() == name and cap.strip():
            return cap.strip()
    raise ConfigError(f"{config.path}: [checker]roots: {root!r} is neither a cap nor an alias in private/aliases")


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


def write_node_url(config: NodeConfig, port: Any) -> str:
    """The URL of a listening web port, written to NODEDIR/node.url as Tahoe does; returned."""
    host = port.getHost()
    address = "127.0.0.1" if host.host in ("0.0.0.0", "::") else host.host
    url = f"http://{address}:{host.port}/"
    write_atomically(config.node_path("node.url"), (url + "\n").encode("ascii"), 0o644)
    return url


def introducer_furls(config: NodeConfig) -> dict[str, str]:
    """petname -> FURL from private/introducers.yaml, plus the deprecated [client]introducer.furl."""
    path = config.private_path("introducers.yaml")
    furls: dict[str, str] = {}
    if os.path.exists(path):
        try:
            furls.update(load_introducers_yaml(path))
        except ShoalError as e:
            raise ConfigError(str(e)) from None
    legacy = (config.get("client", "introducer.furl") or "").strip()
    if legacy and legacy not in furls.values():
        if "default" in furls:
            raise ConfigError(f"{config.path}: [client]introducer.furl conflicts with 'default' in {path}")
        furls["default"] = legacy
    return furls


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
    return config.get_endpoints("node", "tub.port"), config.tub_location()


def _make_tub(config: NodeConfig, https: HttpsBesideFoolscap | None = None) -> Any:
    """The node's Tub; with ``https``, its listeners also take HTTPS connections (Tahoe 1.20's same-port switch)."""
    cert = config.private_path("node.pem")
    ports, location = _tub_port_and_location(config)
    old_umask = os.umask(0o077)  # Foolscap writes a new key with the umask's mode
    try:
        tub = Tub(certFile=cert)
    except OSError as e:
        raise ConfigError(f"{cert}: cannot read the Tub's certificate and key: {e.strerror}") from None
    except Exception as e:  # OpenSSL's errors: not a PEM certificate and key
        raise ConfigError(
            f"{cert}: not a PEM certificate and private key ({type(e).__name__}); "
            "restore it from a backup (a new one gives the node a new identity)"
        ) from None
    finally:
        os.umask(old_umask)
    os.chmod(cert, 0o600)  # the Tub's private key (one written by an older shoal, too)
    tub.setOption("logLocalFailures", True)
    tub.setOption("logRemoteFailures", True)
    tub.setOption("expose-remote-exception-types", False)
    for port in ports:
        if https is None:
            tub.listenOn(port)
        else:
            https.listen_on(tub, port)
    if location is not None:
        tub.setLocation(location)
    return tub


def api_auth_token(config: NodeConfig) -> bytes:
    """private/api_auth_token (guards the web API's /private/), created if missing as Tahoe does."""
    path = config.private_path("api_auth_token")
    if not os.path.exists(path):
        write_atomically(path, base64.urlsafe_b64encode(os.urandom(32)) + b"\n", 0o600)
    with open(path, "rb") as f:
        token = f.read().strip()
    if not token:
        raise ConfigError(f"{path} is empty: delete it and the node makes a new token")
    return token


class Node(service.MultiService):
    """A client node, with a storage server when [storage]enabled (the default)."""

    def __init__(self, config: NodeConfig) -> None:
        super().__init__()
        self.config = config
        self.identity: NodeIdentity = load_identity(config)
        self.nickname = config.get("node", "nickname", "") or ""
        # HTTPS beside Foolscap on the Tub's port unless [storage]force_foolscap (Tahoe 1.20)
        self._https: HttpsBesideFoolscap | None = None
        if config.get_bool("storage", "enabled", True) and not config.get_bool("storage", "force_foolscap", False):
            self._https = HttpsBesideFoolscap()
        self.tub = _make_tub(config, self._https)
        self.tub.setServiceParent(self)
        self.tubid_b32: str = self.tub.getTubID()
        self.nodeid: bytes = a2b(self.tubid_b32)
        write_node_id_files(config, self.tubid_b32)
        self.storage: StorageServer | None = None
        self.storage_furl: str | None = None
        self.storage_nurls: list[str] | None = None
        self.http_storage: HttpStorageServer | None = None
        if config.get_bool("storage", "enabled", True):
            self._init_storage()
        self._init_grid()
        self._init_helper()
        self._init_client()
        self._init_blobs()
        self._init_sftp()
        self.web_url: str | None = None
        self._init_web()

    def _init_grid(self) -> None:
        """Introducer clients (publishing our storage service), static servers, the broker."""
        cfg = self.config
        introducers = introducer_furls(cfg)
        sequencer = FileSequencer(cfg.node_path("announcement-seqnum"))
        # HTTPS to servers announcing NURLs, as Tahoe 1.20 does unless [client]force_foolscap
        self.broker = StorageBroker(
            storage_connector(self.tub, force_foolscap=cfg.get_bool("client", "force_foolscap", False)),
            deadlines=storage_deadlines(cfg),
        )
        self.introducer_clients: list[IntroducerClient] = []
        for petname, furl in sorted(introducers.items()):
            ic = IntroducerClient(
                self.tub, furl, nickname=self.nickname, sequencer=sequencer,
                cache_path=cfg.private_path(cache_filename(petname)),
                my_version=f"shoal/{__version__}",
            )
            if self.storage_furl is not None:
                ic.publish(
                    "storage",
                    storage_announcement(self.storage_furl, self.permutation_seed.decode("ascii"),
                                         self.storage_nurls),
                    self.identity.signing_key,
                )
            self.broker.use_introducer(ic)
            ic.setServiceParent(self)
            self.introducer_clients.append(ic)
        servers_yaml = cfg.private_path("servers.yaml")
        if os.path.exists(servers_yaml):
            try:
                self.broker.set_static_servers(load_servers_yaml(servers_yaml))
            except ShoalError as e:
                raise ConfigError(str(e)) from None
        self.broker.setServiceParent(self)

    def _init_helper(self) -> None:
        """[helper]enabled: the upload helper (its FURL in private/helper.furl, 0600);
        [client]helper.furl: uploads go through that helper while it is connected."""
        cfg = self.config
        self.helper: Helper | None = None
        self.helper_furl: str | None = None
        if cfg.get_bool("helper", "enabled", False):
            if not cfg.get("node", "tub.location") or cfg.get("node", "tub.location") == "disabled":
                raise ConfigError(f"{cfg.path}: [helper]enabled = true needs [node]tub.port and tub.location")
            self.helper = Helper(cfg.node_path("helper"), self.broker, self.identity.lease_secret)
            furl_file = cfg.private_path("helper.furl")
            old_umask = os.umask(0o077)
            try:
                self.helper_furl = self.tub.registerReference(FoolscapHelper(self.helper), furlFile=furl_file)
            finally:
                os.umask(old_umask)
            os.chmod(furl_file, 0o600)
        self.helper_connection: HelperConnection | None = None
        furl = (cfg.get("client", "helper.furl") or "").strip()
        if furl and furl != "None":
            if not furl.startswith("pb://"):
                raise ConfigError(f"{cfg.path}: [client]helper.furl is not a pb:// FURL")
            self.helper_connection = HelperConnection(self.tub, furl)
            self.helper_connection.setServiceParent(self)

    def _helper_status(self) -> dict[str, Any]:
        """The welcome page's helper facts (Tahoe's: the censored FURL, connected or not)."""
        status: dict[str, Any] = {"furl": None, "connected": "not-configured"}
        if self.helper_connection is not None:
            status.update(self.helper_connection.status())
        status["active_uploads"] = len(self.helper.active) if self.helper is not None else None
        return status

    def _init_client(self) -> None:
        """The client side over the broker: files, mutable files, directories, the checker
        and, when [checker]enabled, the checker job."""
        params = encoding_params(self.config)
        connection = self.helper_connection
        self.files = (ClientFiles(self.broker, params, self.identity) if connection is None
                      else helped_files.HelpedFiles(self.broker, params, self.identity, connection.helper))
        self.key_pool = KeyPool(key_pool_size(self.config))  # RSA keys made ahead ([client]mutable.key_pool)
        self.mutable = MutableClient(
            self.broker, lease_secret=self.identity.lease_secret, k=params.k, n=params.n, key_pool=self.key_pool
        )
        self.nodemaker = NodeMaker(self.files, self.mutable)
        self.checker = FileChecker(self.broker, lease_secret=self.identity.lease_secret, happy=params.happy,
                                   mutable=self.mutable)
        try:
            settings = CheckerSettings.parse(self.config.section("checker"))
        except CheckerConfigError as e:
            raise ConfigError(f"{self.config.path}: {e}") from None
        self.checker_job: CheckerJob | None = None
        if settings.enabled:
            roots = tuple(resolve_root(self.config, root) for root in settings.roots)
            self.checker_job = CheckerJob(
                self.nodemaker, self.checker, attrs.evolve(settings, roots=roots),
                self.config.private_path("checker.state.json"),
            )
        self._checker_run: defer.Deferred[None] | None = None

    def _init_blobs(self) -> None:
        """The Soledad-compatible blob service on its own port, when [blobs]enabled."""
        self.blobs: BlobService | None = None
        if not self.config.get_bool("blobs", "enabled", False):
            return
        from shoal.apps.blobs import BlobError, make_blob_service
        self.config.get_endpoints("blobs", "port")  # a bad one is an error naming the key
        try:
            self.blobs = make_blob_service(self.config.section("blobs"), self.config.basedir, self.files,
                                           self.nodemaker, parse_size=parse_size, version=f"shoal/{__version__}",
                                           channel=http_channel)  # 414 for a too-long URL, as the web port
        except BlobError as e:
            raise ConfigError(f"{self.config.path}: {e}") from None
        self.blobs.site.body_rate = body_rate(  # type: ignore[attr-defined]  # read by ShoalChannel
            self.config, self.config.get_size("blobs", "min_body_rate"),
            self.config.get_int("blobs", "body_rate_window", DEFAULT_WINDOW))
        self.blobs.setServiceParent(self)

    def _init_sftp(self) -> None:
        """The SFTP frontend, when [sftpd]enabled (Tahoe 1.20's keys)."""
        if not self.config.get_bool("sftpd", "enabled", False):
            return
        from shoal.sftp.service import SFTPConfigError, make_sftp_service

        try:
            read = {
                "port": self.config.get("sftpd", "port"),
                "host_privkey_file": self.config.get("sftpd", "host_privkey_file"),
                "host_pubkey_file": self.config.get("sftpd", "host_pubkey_file"),
                "accounts.file": self.config.get("sftpd", "accounts.file"),
                "accounts.url": self.config.get("sftpd", "accounts.url"),
            }
            settings = {key: value for key, value in read.items() if value is not None}
            sftp = make_sftp_service(settings, self.config.basedir, self.nodemaker, self.files, reactor)
        except SFTPConfigError as e:
            raise ConfigError(f"{self.config.path}: {e}") from None
        sftp.setServiceParent(self)

    def _client_stats(self) -> dict[str, int | float | None]:
        stats: dict[str, int | float | None] = {"mutable.keys_ready": self.key_pool.ready()}
        if self.checker_job is not None:
            st = self.checker_job.status()
            stats["checker.round"] = st["round"]
            for name, value in (st.get("last-report") or {}).items():
                if name not in ("round", "started", "finished"):
                    stats["checker.last_round." + name.replace("-", "_")] = value
        return stats

    def _init_web(self) -> None:
        webports = self.config.get_endpoints("node", "web.port")
        if not webports:
            return
        if len(webports) > 1:
            raise ConfigError(f"{self.config.path}: [node]web.port: one endpoint only, not {len(webports)}")
        (webport,) = webports
        storage_stats = self.storage.stats if self.storage is not None else None
        source = WelcomeSource(
            nodeid=self.identity.signing_key.verifying_key().server_id().decode("ascii"),
            nickname=self.nickname,
            introducer_statuses=lambda: [ic.status() for ic in self.introducer_clients],
            server_statuses=lambda: [s.status() for s in self.broker.get_all_servers()],
            version=f"shoal/{__version__}",
            storage_stats=storage_stats,
            helper_status=self._helper_status,
        )
        self.web_services = WebServices(
            files=self.files,
            helper_stats=self.helper.stats if self.helper is not None else None,
            helper_uploads=self.helper.status if self.helper is not None else None,
            mutable=self.mutable,
            nodemaker=self.nodemaker,
            checker=self.checker,
            stats=NodeStats([
                *([storage_stats] if storage_stats is not None else []),
                *([self._adapter.stats] if storage_stats is not None else []),
                *([self._http_stats] if self.http_storage is not None else []),
                self._client_stats,
            ]),
            checker_status=self.checker_job.status if self.checker_job is not None else None,
            auth_token=api_auth_token(self.config),
            storage=self._storage_source(source.nodeid),
        )
        self._web_endpoint = serverFromString(reactor, webport)
        self._web_site = ShoalSite(Root(source, self.web_services), key_hasher=self.files.key_hasher)
        self._web_site.body_rate = body_rate(self.config, self.config.get_size("node", "web.min_body_rate"),
                                             self.config.get_int("node", "web.body_rate_window", DEFAULT_WINDOW))

    def _storage_source(self, nodeid: str) -> StorageSource | None:
        """What /storage shows of this node's storage server (None: it runs none)."""
        server = self.storage
        if server is None:
            return None
        policy = server.crawler.policy
        return StorageSource(
            nickname=self.nickname, nodeid=nodeid, stats=server.stats, bucket_counter=server.bucket_counts,
            lease_checker=server.crawler.status,
            policy={"enabled": policy.enabled, "mode": policy.mode, "cutoff_date": policy.cutoff_date,
                    "override_lease_duration": policy.override_lease_duration,
                    "sharetypes": sorted(policy.sharetypes)},
        )

    def _web_listening(self, port: Any) -> None:
        self._web_port = port
        self.web_url = write_node_url(self.config, port)

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
        scrub_interval = cfg.get_duration("storage", "scrub.interval")  # shoal's own key
        if scrub_interval is not None:
            self.storage.scrubber.set_minimum_cycle_time(float(scrub_interval))
        self.permutation_seed = permutation_seed(cfg, self.identity, self.tubid_b32, self.storage.have_shares())
        self._adapter = FoolscapStorageServer(self.storage)
        furl_file = cfg.private_path("storage.furl")
        self.storage_furl = self.tub.registerReference(self._adapter, furlFile=furl_file)
        if self._https is not None:
            self._init_http_storage(self._https, self.storage, self.storage_furl)
        self._housekeeping = Housekeeping(
            self.storage, interval=HOUSEKEEPING_INTERVAL, slice_seconds=CRAWLER_SLICE
        )

    def _init_http_storage(self, https: HttpsBesideFoolscap, storage: StorageServer, furl: str) -> None:
        """The HTTP storage protocol on the Tub's port; its NURLs use the FURL's swissnum and the Tub's key."""
        swissnum = furl.rsplit("/", 1)[1]
        self.http_storage = HttpStorageServer(storage, swissnum.encode("ascii"))
        site = self.http_storage.site()
        site.body_rate = body_rate(self.config, self.config.get_size("storage", "min_body_rate"),
                                   self.config.get_int("storage", "body_rate_window", DEFAULT_WINDOW))
        https.serve(site, self.tub.myCertificate,
                    scratch=os.path.dirname(self.config.private_path("node.pem")))
        pin = spki_hash(self.tub.myCertificate.original.to_cryptography())
        self.storage_nurls = [nurl.to_text() for nurl in nurls_for_location(self.tub.locationHints, pin, swissnum)]

    def _http_stats(self) -> dict[str, int]:
        assert self.http_storage is not None and self._https is not None
        stats = self.http_storage.stats()
        for kind, count in self._https.connections.items():
            stats[f"storage_server.http.connections_{kind}"] = count
        return stats

    def startService(self) -> None:
        super().startService()
        if self.storage is not None:
            self._housekeeping.start()
        self.key_pool.fill()
        if self.checker_job is not None:
            self._checker_run = defer.ensureDeferred(self._run_checker_job(self.checker_job))
            self._checker_run.addErrback(log.err, "checker job stopped")

    async def start_web(self) -> None:
        """Listen on web.port (if any); node.url is written once listening."""
        if getattr(self, "_web_endpoint", None) is not None:
            self._web_listening(await self._web_endpoint.listen(self._web_site))

    async def _run_checker_job(self, job: CheckerJob) -> None:
        # a round run before the grid is known would find every file unrecoverable
        await self.broker.when_connected_enough(self.files.params.happy)
        # and give the rest of the grid a moment: a server not yet connected would look
        # like lost shares and make the job repair healthy files
        seen, quiet = -1, 0.0
        while quiet < CHECKER_SETTLE:
            now = len(self.broker.get_connected_servers())
            quiet = quiet + 1.0 if now == seen else 0.0
            seen = now
            await _sleep(1.0)
        await job.run_forever(_sleep)

    def stopService(self) -> Any:
        if self._checker_run is not None:
            self._checker_run.cancel()
            self._checker_run = None
        if self.checker_job is not None:
            self.checker_job.save()
        stopped: list[Any] = []
        storage = self.storage
        if storage is not None:
            # a slice still in the CPU pool finishes and saves its state before the server shuts down
            stopped.append(self._housekeeping.stop().addCallback(lambda _: storage.shutdown()))
        web_port = getattr(self, "_web_port", None)
        if web_port is not None:
            web_port.stopListening()
        if getattr(self, "web_services", None) is not None:
            self.web_services.operations.stop()
        return defer.gatherResults([defer.maybeDeferred(super().stopService), *stopped])

