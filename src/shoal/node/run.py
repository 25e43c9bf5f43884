"""`shoal run NODEDIR`: the node in the foreground, as `tahoe run`.

Writes a pid file (running.process: "PID START-TIME"), refuses to start if
another live process holds it, stops cleanly on SIGTERM/SIGINT, and stops
when its stdin closes unless --allow-stdin-close (so a parent that dies
takes its nodes with it). Config problems are one line on stderr, exit 1.
"""

import os
import sys
import time
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet import stdio
from twisted.internet.protocol import Protocol
from twisted.python import log

from shoal.errors import ShoalError
from shoal.node.config import ConfigError, load_config

reactor: Any = _reactor  # the global reactor, untyped as Twisted's own code uses it

PIDFILE = "running.process"


class RunError(ShoalError):
    pass


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


def run_node(basedir: str, allow_stdin_close: bool) -> int:
    from shoal.node.node import Node  # imports Foolscap/Twisted services

    basedir = os.path.abspath(os.path.expanduser(basedir))
    config = load_config(basedir)
    pidfile = claim_pidfile(basedir)
    try:
        log.startLogging(open(os.path.join(basedir, "shoal.log"), "a"), setStdout=False)
        try:
            node = Node(config)
        except OSError as e:
            raise ConfigError(f"{basedir}: cannot start: {e}") from None
        if not allow_stdin_close:
            stdio.StandardIO(_StdinWatcher())
        reactor.callWhenRunning(node.startService)
        reactor.addSystemEventTrigger("before", "shutdown", node.stopService)

        def _ready() -> None:
            what = f"storage FURL in {config.private_path('storage.furl')}" if node.storage_furl else "client"
            print(f"shoal node {node.tubid_b32} running ({what})", flush=True)

        reactor.callWhenRunning(_ready)
        reactor.run()  # SIGTERM/SIGINT stop it cleanly
    finally:
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(run_node(sys.argv[1], "--allow-stdin-close" in sys.argv))
