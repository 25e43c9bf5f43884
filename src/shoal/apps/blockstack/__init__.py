"""The shoal Blockstack storage driver: the module-level functions of the driver
contract (shared/reference/app-apis.md section 2.1), none of which ever raises.

Configure with ``storage_init({"path": "client.ini"})`` where client.ini has::

    [shoal]
    node_url = http://127.0.0.1:3456/
    # optional: state_file, timeout, read_attempts, read_pause

All data goes through the shoal client node's web API; see driver.py. Data comes
back as it was put (str in, str out; bytes in, bytes out). A storage_init that
fails leaves no driver active (later calls return None/False), never the one a
previous storage_init set up.
"""

from typing import Any

from shoal.apps.blockstack.driver import CLASSES, ShoalDriver, from_config, safely
from shoal.apps.blockstack.records import URL_SCHEME, parse_url

__all__ = [
    "ShoalDriver", "storage_init", "handles_url", "make_mutable_url", "get_immutable_handler",
    "get_mutable_handler", "put_immutable_handler", "put_mutable_handler",
    "delete_immutable_handler", "delete_mutable_handler", "get_classes",
]

_driver: ShoalDriver | None = None


def _init(conf: Any, kw: dict[str, Any]) -> bool:
    global _driver
    _driver = None  # a failed init leaves no driver: later calls fail instead of using the old node
    driver = from_config(conf, **kw)
    driver.open()
    _driver = driver
    return True


def storage_init(conf: Any, **kw: Any) -> bool:
    """One-time setup from Blockstack's config dict; True on success."""
    return bool(safely(False, "storage_init", _init, conf, kw))


def _ready() -> ShoalDriver:
    if _driver is None:
        raise RuntimeError("storage_init was not called (or failed)")
    return _driver


def handles_url(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(URL_SCHEME) and parse_url(url) is not None


def make_mutable_url(data_id: str) -> str | None:
    return safely(None, "make_mutable_url", lambda: _ready().mutable_url(data_id))  # type: ignore[no-any-return]


def get_immutable_handler(data_hash: str, **kw: Any) -> bytes | str | None:
    return safely(None, "get_immutable_handler", lambda: _ready().get_immutable(data_hash))  # type: ignore[no-any-return]


def get_mutable_handler(url: str, **kw: Any) -> bytes | str | None:
    return safely(None, "get_mutable_handler", lambda: _ready().get_mutable(url))  # type: ignore[no-any-return]


def put_immutable_handler(data_hash: str, data_txt: bytes | str, txid: str, **kw: Any) -> bool:
    return bool(safely(False, "put_immutable_handler", lambda: _ready().put_immutable(data_hash, data_txt)))


def put_mutable_handler(data_id: str, data_txt: bytes | str, **kw: Any) -> bool:
    return bool(safely(False, "put_mutable_handler", lambda: _ready().put_mutable(data_id, data_txt)))


def delete_immutable_handler(data_hash: str, txid: str, tombstone: str | bytes, **kw: Any) -> bool:
    return bool(safely(False, "delete_immutable_handler",
                       lambda: _ready().delete_immutable(data_hash, txid, tombstone)))


def delete_mutable_handler(data_id: str, tombstone: str | bytes, **kw: Any) -> bool:
    return bool(safely(False, "delete_mutable_handler", lambda: _ready().delete_mutable(data_id, tombstone)))


def get_classes() -> list[str]:
    return list(CLASSES)
