"""An introducer node: a Tub serving the introducer service, FURL in private/introducer.furl."""

from typing import Any

from twisted.application import service

from shoal import __version__
from shoal.encoding.base32 import a2b
from shoal.introducer.server import IntroducerService
from shoal.node.config import ConfigError, NodeConfig
from shoal.node.identity import load_identity, write_node_id_files
from shoal.node.node import _make_tub

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
        self.web_url = None

    async def start_web(self) -> None:
        return None

    def describe(self) -> str:
        return f"introducer FURL in {self.config.private_path('introducer.furl')}"

    def stopService(self) -> Any:
        return super().stopService()
