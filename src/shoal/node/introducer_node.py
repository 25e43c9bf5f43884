"""An introducer node: a Tub serving the introducer service, FURL in private/introducer.furl;
with `[node] web.port`, its web page (shoal.web.introweb) and NODEDIR/node.url, as Tahoe's."""

from typing import Any

from twisted.application import service
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString

from shoal import __version__
from shoal.encoding.base32 import a2b
from shoal.introducer.server import IntroducerService
from shoal.node.config import ConfigError, NodeConfig
from shoal.node.identity import load_identity, write_node_id_files
from shoal.node.node import _make_tub, write_node_url
from shoal.web.introweb import IntroducerRoot, IntroducerSource
from shoal.web.spool import ShoalSite

INTRODUCER_TAC = "tahoe-introducer.tac"


class IntroducerNode(service.MultiService):
    def __init__(self, config: NodeConfig) -> None:
        super().__init__()
        self.config = config
        self.identity = load_identity(config)
        location = (config.get("node", "tub.location") or "").strip()
        if not location or location == "disabled":
            raise ConfigError(f"{config.path}: an introducer needs [node]tub.port and tub.location")
        self.tub = _make_tub(config)
        self.tub.setServiceParent(self)
        self.tubid_b32: str = self.tub.getTubID()
        self.nodeid = a2b(self.tubid_b32)
        write_node_id_files(config, self.tubid_b32)
        self.introducer = IntroducerService(app_version=f"shoal/{__version__}".encode())
        self.introducer.setServiceParent(self)
        self.introducer_furl: str = self.tub.registerReference(
            self.introducer, furlFile=config.private_path("introducer.furl")
        )
        self.storage_furl = None
        self.web_url: str | None = None
        self._web_port: Any = None
        self._web_endpoint: Any = None
        webports = config.get_endpoints("node", "web.port")
        if len(webports) > 1:
            raise ConfigError(f"{config.path}: [node]web.port: one endpoint only, not {len(webports)}")
        if webports:
            source = IntroducerSource(nodeid=self.tubid_b32, version=f"shoal/{__version__}",
                                      status=self.introducer.status)
            self._web_endpoint = serverFromString(reactor, webports[0])
            self._web_site = ShoalSite(IntroducerRoot(source))

    async def start_web(self) -> None:
        """Listen on web.port (if any); node.url is written once listening."""
        if self._web_endpoint is not None:
            self._web_port = await self._web_endpoint.listen(self._web_site)
            self.web_url = write_node_url(self.config, self._web_port)

    def describe(self) -> str:
        return f"introducer FURL in {self.config.private_path('introducer.furl')}"

    def stopService(self) -> Any:
        if self._web_port is not None:
            self._web_port.stopListening()
            self._web_port = None
        return super().stopService()
