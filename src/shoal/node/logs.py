"""The node's log: NODEDIR/logs/shoal.log, one JSON object per line, rotated by size.

Everything a running node says goes here: the standard logging module's
records (shoal's storage server, quarantine and HTTP storage modules log there,
under their module names) and Twisted's and Foolscap's log events, bridged from
twisted.logger into logging under the event's namespace, with the web port's
access lines among them. The handler sits on the root logger. Each line is

    {"time": "2026-12-03T05:40:01.123Z", "level": "INFO", "source": "shoal.node.run",
     "message": "...", "failure": "Traceback ..."}

("failure" only when an error came with one). Every message and traceback
passes through shoal.caps.censor.censor_secrets first, so no cap and no FURL
secret reaches the disk. `[logging] level`, `max_bytes` and `backups` choose
the least severe level written and the rotation (shoal.log.1 is the newest
old file). `shoal log NODEDIR` follows it.
"""

import json
import logging
import logging.handlers
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs
from twisted.logger import (
    ILogObserver,
    LogLevel,
    formatEvent,
    globalLogBeginner,
    globalLogPublisher,
)
from zope.interface import implementer

from shoal.caps.censor import censor_secrets
from shoal.node.config import ConfigError, NodeConfig, parse_size
from shoal.node.config_keys import KEYS

LOG_DIR = "logs"
LOG_FILE = os.path.join(LOG_DIR, "shoal.log")
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_TWISTED_LEVELS = {LogLevel.debug: logging.DEBUG, LogLevel.info: logging.INFO, LogLevel.warn: logging.WARNING,
                   LogLevel.error: logging.ERROR, LogLevel.critical: logging.CRITICAL}
HANDLER_NAME = "shoal-node-log"  # the name of the one handler install() puts on the root logger


@attrs.frozen
class LogSettings:
    """The [logging] section, validated."""

    level: int = LEVELS[KEYS[("logging", "level")].default]
    max_bytes: int = parse_size(KEYS[("logging", "max_bytes")].default)
    backups: int = int(KEYS[("logging", "backups")].default)

    @classmethod
    def from_config(cls, config: NodeConfig) -> "LogSettings":
        defaults = cls()
        name = (config.get("logging", "level") or "").strip().upper()
        if name and name not in LEVELS:
            raise ConfigError(f"{config.path}: [logging]level: {name!r} is not one of {', '.join(LEVELS)}")
        max_bytes = config.get_size("logging", "max_bytes")
        if max_bytes is not None and max_bytes < 4096:
            raise ConfigError(f"{config.path}: [logging]max_bytes: {max_bytes} is under 4096 bytes")
        backups = config.get_int("logging", "backups", defaults.backups)
        if not 1 <= backups <= 1000:
            raise ConfigError(f"{config.path}: [logging]backups: {backups} is not from 1 to 1000")
        return cls(level=LEVELS[name] if name else defaults.level,
                   max_bytes=defaults.max_bytes if max_bytes is None else max_bytes, backups=backups)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record; message and traceback censored."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "source": record.name,
            "message": censor_secrets(record.getMessage()),
        }
        failure = getattr(record, "failure_text", None)
        if failure is None and record.exc_info:
            failure = self.formatException(record.exc_info)
        if failure:
            line["failure"] = censor_secrets(failure)
        return json.dumps(line, ensure_ascii=False, sort_keys=False)


def make_handler(basedir: str, settings: LogSettings) -> logging.Handler:
    """The rotating JSON-lines handler of BASEDIR/logs/shoal.log (logs/ made mode 0700)."""
    os.makedirs(os.path.join(basedir, LOG_DIR), mode=0o700, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        os.path.join(basedir, LOG_FILE), maxBytes=settings.max_bytes, backupCount=settings.backups,
        encoding="utf-8")
    handler.setFormatter(JsonLinesFormatter())
    handler.setLevel(settings.level)
    return handler


def install(settings: LogSettings, handler: logging.Handler) -> None:
    """Put `handler` on the root logger at the configured level, replacing one installed before."""
    uninstall()
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.level)


def uninstall() -> None:
    """Take the node's handler off the root logger again (and close it)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()


@implementer(ILogObserver)
class TwistedToLogging:
    """A twisted.logger observer handing each event to the stdlib logger named by its namespace."""

    def __call__(self, event: Mapping[str, Any]) -> None:
        level = _TWISTED_LEVELS.get(event.get("log_level", LogLevel.info), logging.INFO)
        failure = event.get("log_failure")
        if event.get("isError") and level < logging.ERROR:
            level = logging.ERROR  # legacy log.err without a level
        namespace = str(event.get("log_namespace") or "twisted")
        if namespace == "log_legacy":  # twisted.python.log.msg/err callers say no more
            namespace = "twisted"
        logger = logging.getLogger(namespace)
        if not logger.isEnabledFor(level):
            return
        text = formatEvent(dict(event)) if (event.get("log_format") or event.get("message")) else ""
        if not text and failure is not None:
            text = failure.getErrorMessage()
        extra = {"failure_text": failure.getTraceback() if failure is not None else None}
        logger.log(level, "%s", text, extra=extra)


def start_logging(config: NodeConfig) -> Callable[[], None]:
    """Send everything the node logs (Twisted's global log included) to NODEDIR/logs/shoal.log.

    Returns the undo: it takes the Twisted observer and the root handler off again and
    puts the root logger's level back (run_node calls it once the reactor has stopped,
    so a process that runs a node in-process keeps no global log state of it)."""
    settings = LogSettings.from_config(config)
    root = logging.getLogger()
    level = root.level
    install(settings, make_handler(config.basedir, settings))
    observer = cast(ILogObserver, TwistedToLogging())  # @implementer is invisible to mypy
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)

    def stop_logging() -> None:
        globalLogPublisher.removeObserver(observer)
        uninstall()
        root.setLevel(level)

    return stop_logging
