"""`shoal run NODEDIR`: the node in the foreground, as `tahoe run`.

Writes a pid file (running.process: "PID START-TIME"), refuses to start if
another live process holds it, stops cleanly on SIGTERM/SIGINT, and stops
when its stdin closes unless --allow-stdin-close (so a parent that dies
takes its nodes with it). Config problems are one line on stderr, exit 1.

Stdout says what Tahoe 1.20's `tahoe run` says where scripts look for it
(scripts/tahoe_run.py, node.py): first ``running node in 'DIR'``, and once the
node is up a twistd-style log line ending ``client running`` (any node with a
client, storage or not) or ``introducer running``; tests and Tahoe's own
integration harness wait for that text. shoal prints it only once the web port
listens and node.url is written (Tahoe prints it a little before), after one
line of its own naming the node, its FURL files and its web URL.
"""

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, stdio
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import Protocol
from twisted.python import log

from shoal.errors import Fault, ShoalError
from shoal.node import eliot_log
from shoal.node.config import ConfigError, load_config
from shoal.node.memory import limit_malloc_arenas

reactor: Any = _reactor  # the global reactor, untyped as Twisted's own code uses it

PIDFILE = "running.process"


class RunError(ShoalError):
    """The node cannot be started from this directory (not a node, already running)."""

    fault = Fault.CALLER


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_pidfile(basedir: str) -> str:
    path = os.path.join(basedir, PIDFILE)
    try:
        with open(path) as f:
            parts = f.read().split()
        if parts and parts[0].isdigit() and int(parts[0]) != os.getpid() and _process_alive(int(parts[0])):
            raise RunError(f"{path}: node already running as pid {parts[0]}")
    except FileNotFoundError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()} {time.time()}\n")
    os.replace(tmp, path)
    return path


class _StdinWatcher(Protocol):
    def connectionLost(self, reason: object = None) -> None:
        log.msg("stdin closed: stopping")
        if reactor.running:
            reactor.stop()


def _text(error: BaseException) -> str:
    """An error's text on one line."""
    text = " ".join(str(error).split())
    return text if isinstance(error, ShoalError) else f"{type(error).__name__}: {text}"


def _one_line(error: ShoalError) -> ShoalError:
    """The same error, its message folded onto one line (a YAML or TLS library's text may not be)."""
    text = _text(error)
    if text == str(error):
        return error
    return ConfigError(text) if isinstance(error, ConfigError) else RunError(text)


def readiness_line(node_type: str, now: float | None = None) -> str:
    """The line Tahoe's twistd logger prints once a node is up: ``<time> [-] client running``."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() if now is None else now))
    return f"{stamp} [-] {node_type} running"


def run_node(basedir: str, allow_stdin_close: bool, eliot: list[eliot_log.FileDestinationSpec] | None = None) -> int:
    from shoal.node.introducer_node import INTRODUCER_TAC, IntroducerNode
    from shoal.node.logs import LOG_FILE, start_logging
    from shoal.node.node import Node
    from shoal.versions import versions

    limit_malloc_arenas()
    basedir = os.path.abspath(os.path.expanduser(basedir))
    config = load_config(basedir)
    pidfile = claim_pidfile(basedir)
    failure: list[BaseException] = []
    eliot_service: eliot_log.EliotLogging | None = None
    stop_logging: Callable[[], None] | None = None
    try:
        stop_logging = start_logging(config)  # logs/shoal.log, JSON lines, censored ([logging])
        logger = logging.getLogger("shoal.node.run")
        logger.info("starting in %s: %s", basedir, ", ".join(f"{name} {v}" for name, v in versions()))
        if eliot:
            try:
                eliot_service = eliot_log.EliotLogging(eliot, reactor)
            except OSError as e:
                raise RunError(f"--eliot-destination: cannot open {e.filename or 'the log'}: {e.strerror}") from None
            eliot_service.startService()
        kind = IntroducerNode if os.path.exists(os.path.join(basedir, INTRODUCER_TAC)) else Node
        try:
            node = kind(config)
        except ShoalError as e:
            raise _one_line(e) from None
        except OSError as e:
            raise ConfigError(f"{basedir}: cannot start: {e}") from None
        except Exception as e:  # a bug, or a problem no check names yet: still one line
            log.err(None, "building the node failed")
            raise RunError(f"{basedir}: cannot start: {_text(e)} (the traceback is in {LOG_FILE})") from None
        print(f"running node in {basedir!r}", flush=True)  # Tahoe's first line; a bad config prints nothing
        if not allow_stdin_close:
            stdio.StandardIO(_StdinWatcher())
        reactor.addSystemEventTrigger("before", "shutdown", node.stopService)

        async def start() -> None:
            node.startService()
            await node.start_web()
            parts = [f"shoal {'introducer' if kind is IntroducerNode else 'node'} {node.tubid_b32} running"]
            if node.storage_furl:
                parts.append(f"storage FURL in {config.private_path('storage.furl')}")
            if kind is IntroducerNode:
                parts.append(f"introducer FURL in {config.private_path('introducer.furl')}")
            if node.web_url:
                parts.append(f"web {node.web_url}")
            print("; ".join(parts), flush=True)
            logger.info("%s", "; ".join(parts))
            node_type = "introducer" if kind is IntroducerNode else "client"
            log.msg(f"{node_type} running")
            print(readiness_line(node_type), flush=True)

        def fail(f: Any) -> None:
            failure.append(f.value)
            reactor.stop()

        reactor.callWhenRunning(lambda: defer.ensureDeferred(start()).addErrback(fail))
        reactor.run()  # SIGTERM/SIGINT stop it cleanly
    finally:
        if eliot_service is not None and eliot_service.running:
            eliot_service.stopService()  # its writer thread drains the queue, then ends
        if stop_logging is not None:
            stop_logging()  # no global observer or handler outlives the node (in-process callers)
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass
    if failure:
        raise RunError(f"{basedir}: cannot start: {_text(failure[0])}")
    return 0
