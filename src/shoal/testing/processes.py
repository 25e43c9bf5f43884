"""Start and stop real `shoal` node processes for tests and demos.

Nodes run as `python -m shoal.main run DIR` with a pipe on stdin (closing
it stops them, so nodes never outlive the test run), readiness is the line
the node prints once listening (Tahoe's ``client running``), and every process is stopped by its pid.
"""

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import attrs

from shoal.errors import ShoalError


class NodeProcessError(ShoalError):
    """A node process the test harness started failed (a bug somewhere in shoal)."""


def shoal_command(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "shoal.main", *args], capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise NodeProcessError(f"shoal {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r


def create(command: str, *args: str) -> None:
    """Run one create-* command of the `shoal` CLI in this process.

    The same parser and code as `shoal create-node ...` on a command line, without
    an interpreter start-up per node directory (the nodes themselves always run as
    processes); safe to call from several threads at once. A refused command
    raises its ShoalError.
    """
    from shoal.main import build_parser  # the CLI's whole command tree: only when a node is made

    parsed = build_parser().parse_args([command, *args])
    parsed.func(parsed)


def create_storage_node(nodedir: str, *extra: str) -> None:
    create("create-node", "--hostname", "127.0.0.1", "--webport", "none", *extra, nodedir)


@attrs.define
class NodeProcess:
    nodedir: str
    proc: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def private(self, name: str) -> str:
        return os.path.join(self.nodedir, "private", name)

    def read_private(self, name: str) -> str:
        with open(self.private(name)) as f:
            return f.read().strip()

    @property
    def web_url(self) -> str:
        """The web API's URL, from the node.url file the node writes once listening."""
        with open(os.path.join(self.nodedir, "node.url")) as f:
            return f.read().strip()

    def terminate(self) -> None:
        """Send SIGTERM by pid without waiting (stop() then waits)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM by pid, then wait; SIGKILL if it does not go."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        self._close_pipes()
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class Stoppable(Protocol):
    def stop(self) -> Any: ...


T = TypeVar("T", bound=Stoppable)


def stop_all(nodes: Iterable[Any]) -> None:
    """Stop many processes at once: SIGTERM to every one, then wait for each.

    Anything with terminate() gets the signal first; stop() then waits (and
    SIGKILLs what does not go), so n nodes take as long as the slowest one.
    """
    live = [n for n in nodes if n is not None]
    for n in live:
        if hasattr(n, "terminate"):
            n.terminate()
    for n in live:
        n.stop()


def start_all(starters: Iterable[Callable[[], T]]) -> list[T]:
    """Run node starters concurrently and wait for every readiness signal.

    If any starter fails, the nodes that did start are stopped and the first
    error is raised.
    """
    calls = list(starters)
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(c) for c in calls]
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    if errors:
        stop_all(f.result() for f in futures if f.exception() is None)
        raise errors[0]
    return [f.result() for f in futures]


def start_node(nodedir: str, timeout: float = 60, *extra: str, prefix: Sequence[str] = ()) -> NodeProcess:
    """Run a node and wait for its readiness line; NodeProcessError with its stderr if it dies.

    `prefix` goes before the command: a wrapper that execs it (`ip netns exec NS`), so the
    pid is still the node's.
    """
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "shoal.main", "run", *extra, nodedir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    node = NodeProcess(nodedir, proc)
    try:
        wait_for_readiness(proc, timeout)
    except NodeProcessError as e:
        node.stop()
        raise NodeProcessError(f"node {nodedir} did not start: {e}") from None
    return node


READY_SUFFIXES = (b"client running", b"introducer running")


def wait_for_readiness(proc: subprocess.Popen, timeout: float) -> list[bytes]:
    """Read the node's stdout until its readiness line (Tahoe's ``... client running`` /
    ``... introducer running``, the last line `run` prints); the lines read, or
    NodeProcessError if it exits or takes longer than `timeout`."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()  # read unbuffered: a buffered reader could hold a line select() can't see
    deadline = time.monotonic() + timeout
    pending = b""
    lines: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NodeProcessError(f"took longer than {timeout}s to start: {lines!r}")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            proc.wait(10)
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise NodeProcessError(f"exited ({proc.returncode}) before it was running: {lines!r} {err}")
        *complete, pending = (pending + chunk).split(b"\n")
        for line in complete:
            lines.append(line)
            if line.rstrip().endswith(READY_SUFFIXES):
                return lines


def set_config(nodedir: str, section: str, key: str, value: str) -> None:
    """Add or replace `key = value` in [section] of NODEDIR/tahoe.cfg, keeping the rest."""
    path = os.path.join(nodedir, "tahoe.cfg")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out, in_section, done = [], False, False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            if in_section and not done:
                out.append(f"{key} = {value}")
                done = True
            in_section = stripped == f"[{section}]"
        elif in_section and stripped.split("=")[0].strip() == key:
            if not done:
                out.append(f"{key} = {value}")
                done = True
            continue
        out.append(line)
    if not done:
        if not in_section:
            out.append(f"[{section}]")
        out.append(f"{key} = {value}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """One memory figure of a live process in KiB, from /proc/PID/status (Linux): VmRSS (resident
    now) or VmHWM (the peak since exec). OSError if the process is gone."""
    prefix = field + ":"
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(prefix):
                return int(line.split()[1])
    raise ValueError(f"no {field} in /proc/{pid}/status")
