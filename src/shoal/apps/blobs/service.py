"""The blob service as a Twisted service the node starts when tahoe.cfg says
``[blobs] enabled = true``. Keys of ``[blobs]`` (all optional):

``port``        its own listener, a Twisted endpoint (default
                ``tcp:2424:interface=127.0.0.1``; Soledad's public port is 2424)
``tokens_file`` ``user:token`` lines (default ``private/blobs.tokens``; relative
                paths are under the node directory)
``quota``       bytes per user over all namespaces, Tahoe's size syntax
                (default 200MiB, Soledad's default)
``max_objects`` live blobs per user over all namespaces (default 50000); an
                upload past it is 507 as the byte quota. Fixed beside it: at
                most 10,000 entries (blobs and tombstones) per namespace, 100
                namespaces per user, 1,000 blobs per /stream request (400)
``root_cap``    the write cap of the service's root directory on the grid. If
                absent, the cap in ``private/blobs.rootcap`` is used, and on the
                very first start a new root is made (on first use) and recorded
                there. Put that cap here (or keep a copy of the file) to be able
                to rebuild a gateway from an empty disk.
``index``       the SQLite cache (default ``private/blobs/index.sqlite``; it holds
                every cap of the service, so it lives under private/ at mode
                0600. An index at the old default ``blobs/index.sqlite`` is
                moved there on start)

Once listening, the service's URL is written to ``private/blobs.url``. A
missing tokens file is created empty (mode 0600): nobody can log in until
users are added to it, which a running service picks up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from twisted.application import service
from twisted.internet import reactor as _reactor
from twisted.internet.endpoints import serverFromString
from twisted.python import log

from shoal.apps.blobs.auth import TokenFile
from shoal.apps.blobs.backend import DEFAULT_MAX_OBJECTS, GridBlobsBackend
from shoal.apps.blobs.early import BlobSite
from shoal.apps.blobs.errors import BlobError
from shoal.apps.blobs.index import SQLITE_SUFFIXES
from shoal.apps.blobs.resource import blob_site_root
from shoal.apps.blobs.store import RootDirectory, write_private
from shoal.dirnode import ImmutableFiles, NodeMaker
from shoal.errors import Fault

reactor: Any = _reactor

DEFAULT_PORT = "tcp:2424:interface=127.0.0.1"
DEFAULT_QUOTA = 200 * 1024 * 1024
DEFAULT_INDEX = "private/blobs/index.sqlite"
OLD_DEFAULT_INDEX = "blobs/index.sqlite"  # before issue #15: outside private/, mode 0644
KNOWN_KEYS = frozenset({"enabled", "port", "tokens_file", "quota", "max_objects", "root_cap", "index",
                        "min_body_rate", "body_rate_window"})  # the last two are read by the node


class BlobConfigError(BlobError):
    """A [blobs] setting the operator must fix."""

    fault = Fault.CALLER


@attrs.frozen
class BlobSettings:
    node_dir: str
    port: str = DEFAULT_PORT
    tokens_file: str = "private/blobs.tokens"
    quota: int = DEFAULT_QUOTA
    max_objects: int = DEFAULT_MAX_OBJECTS
    root_cap: str | None = None
    index: str = DEFAULT_INDEX

    def path(self, name: str) -> str:
        return os.path.join(self.node_dir, os.path.expanduser(name))

    @classmethod
    def from_section(cls, section: Mapping[str, str], node_dir: str, parse_size: Callable[[str], int]
                     ) -> BlobSettings:
        unknown = set(section) - KNOWN_KEYS
        if unknown:
            raise BlobConfigError(f"unknown key(s) in [blobs]: {', '.join(sorted(unknown))}")
        quota = DEFAULT_QUOTA
        if section.get("quota", "").strip():
            try:
                quota = parse_size(section["quota"])
            except ValueError as e:
                raise BlobConfigError(f"[blobs]quota: {e}") from None
        max_objects = DEFAULT_MAX_OBJECTS
        if section.get("max_objects", "").strip():
            text = section["max_objects"].strip()
            if not text.isdigit() or int(text) < 1:
                raise BlobConfigError(f"[blobs]max_objects: {text!r} is not a whole number of at least 1")
            max_objects = int(text)
        return cls(
            node_dir=node_dir,
            port=section.get("port", "").strip() or DEFAULT_PORT,
            tokens_file=section.get("tokens_file", "").strip() or "private/blobs.tokens",
            quota=quota,
            max_objects=max_objects,
            root_cap=section.get("root_cap", "").strip() or None,
            index=section.get("index", "").strip() or DEFAULT_INDEX,
        )


def _keep_private(path: str) -> None:
    """The tokens file holds every user's secret: no one but the node's user reads it."""
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, mode & 0o700)
        log.msg(f"blobs: {path} was readable by others (mode {mode:o}); made it {mode & 0o700:o}")


def move_old_index(old: str, new: str) -> None:
    """Move an index (and its -wal/-shm) from the old default place under private/."""
    if not os.path.exists(old) or os.path.exists(new):
        return
    os.makedirs(os.path.dirname(new), mode=0o700, exist_ok=True)
    for suffix in SQLITE_SUFFIXES:
        if os.path.exists(old + suffix):
            os.chmod(old + suffix, 0o600)
            os.replace(old + suffix, new + suffix)
    try:
        os.rmdir(os.path.dirname(old))
    except OSError:
        pass  # not empty: something else of the operator's is there


class BlobService(service.Service):
    def __init__(self, settings: BlobSettings, files: ImmutableFiles, nodemaker: NodeMaker, version: str,
                 channel: Callable[[Any], Any] | None = None) -> None:
        self.settings = settings
        if settings.index == DEFAULT_INDEX:
            move_old_index(settings.path(OLD_DEFAULT_INDEX), settings.path(DEFAULT_INDEX))
        root = RootDirectory(nodemaker, settings.root_cap, settings.path("private/blobs.rootcap"))
        self.backend = GridBlobsBackend(files, nodemaker, root=root, index_path=settings.path(settings.index),
                                        quota=settings.quota, max_objects=settings.max_objects)
        tokens_path = settings.path(settings.tokens_file)
        if not os.path.exists(tokens_path):  # show the operator where users go
            os.makedirs(os.path.dirname(tokens_path), exist_ok=True)
            write_private(tokens_path, "# blob service users, one 'user:token' per line")
        _keep_private(tokens_path)
        self.tokens = TokenFile(tokens_path)
        self.site = BlobSite(blob_site_root(self.backend, self.tokens, version), self.tokens, settings.quota)
        if channel is not None:
            self.site.protocol = channel  # type: ignore[method-assign,assignment]
        self.site.displayTracebacks = False
        self.url: str | None = None
        self._port: Any = None

    def startService(self) -> None:
        super().startService()
        d = serverFromString(reactor, self.settings.port).listen(self.site)
        d.addCallback(self._listening)

    def _listening(self, port: Any) -> None:
        self._port = port
        host = port.getHost()
        address = "127.0.0.1" if host.host in ("0.0.0.0", "::") else host.host
        self.url = f"http://{address}:{host.port}/"
        write_private(self.settings.path("private/blobs.url"), self.url)

    def stopService(self) -> Any:
        super().stopService()
        stopped = self._port.stopListening() if self._port is not None else None
        self.backend.close()
        return stopped


def make_blob_service(section: Mapping[str, str], node_dir: str, files: ImmutableFiles, nodemaker: NodeMaker, *,
                      parse_size: Callable[[str], int], version: str = "",
                      channel: Callable[[Any], Any] | None = None) -> BlobService:
    """The blob service for a node whose tahoe.cfg [blobs] section is `section`;
    `channel` is the HTTP protocol factory of its Site (Twisted's when None)."""
    return BlobService(BlobSettings.from_section(section, node_dir, parse_size), files, nodemaker, version,
                       channel=channel)
