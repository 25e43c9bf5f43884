"""A grid of real network hosts: one network namespace per host, slow links, cuts, partitions.

Each host is a namespace whose eth0 is a veth to a bridge in a hub
namespace (addresses and link model: netlinks.py); nodes run inside their
host's namespace (`ip netns exec`), listen on the host's own address and
announce the hub's relay address for it (relay.py adds delay and loss and
enforces partitions); `tc tbf` on each end of a veth limits bandwidth; a
cut takes the host's veth down. The test process reaches a client's web
API (on the host's own 127.0.0.1) through a forward on its 127.0.0.1, so
the usual helpers (web_json, wait_for_servers, the CLI) work unchanged.

Everything is named PREFIX<pid>-<grid><host> and removed by close() (also
at interpreter exit); a new grid first removes what runs of processes that
no longer exist left behind. unavailable() says why namespaces cannot be
made here (for a pytest skip).

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2 and tc.
"""

import atexit
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from shoal.testing.grid import shares_args, wait_for_servers
from shoal.testing.netlinks import (
    HUB,
    HUB_IP,
    SUBNET,
    Link,
    NetGridError,
    Partition,
    check_host_name,
    namespace,
    node_ip,
    owner_pid,
    relay_ip,
    tbf_args,
)
from shoal.testing.processes import (
    NodeProcess,
    NodeProcessError,
    create,
    set_config,
    start_node,
    stop_all,
)
from shoal.testing.relay import Relay
from shoal.testing.wait import wait_until

TUB_PORT = 4000  # every node's Foolscap/HTTPS port, inside its own namespace
WEB_PORT = 8000  # every client's web API port, inside its own namespace
HUB_MAC = "02:00:0a:4d:00:01"  # locally administered
_grid_numbers = itertools.count()

__all__ = ["NetGrid", "NetGridError", "Link", "unavailable", "cleanup_stale", "shares_args"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise NetGridError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def _tc(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["tc", "-n", ns, *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise NetGridError(f"tc -n {ns} {' '.join(args)}: {r.stderr.strip()}")
    return r


def list_namespaces() -> list[str]:
    r = _ip("netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def unavailable() -> str | None:
    """Why this machine cannot run a namespace grid (a pytest skip reason), or None."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} (iproute2) is not installed"
    probe = namespace(os.getpid(), 999, "probe")
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    try:
        r = _ip("-n", probe, "link", "add", "b0", "type", "bridge", check=False)
        if r.returncode != 0:
            return f"cannot create a bridge in a namespace: {r.stderr.strip()}"
        t = _tc(probe, "qdisc", "add", "dev", "lo", "root", *tbf_args(100), check=False)
        if t.returncode != 0:
            return f"tc tbf does not work: {t.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _gone(pid: int) -> bool:
    """The process is dead (a zombie counts: its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def _destroy_namespace(ns: str) -> None:
    """Kill (by pid) whatever still runs in a namespace the harness made, then delete it."""
    pids = [int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while any(not _gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGKILL takes effect asynchronously; nothing to wait on for a non-child
    _ip("netns", "del", ns, check=False)


def cleanup_stale() -> list[str]:
    """Remove the namespaces (and their processes) left by harness runs whose process is gone."""
    removed = []
    for ns in list_namespaces():
        pid = owner_pid(ns)
        if pid is not None and pid != os.getpid() and _gone(pid):
            _destroy_namespace(ns)
            removed.append(ns)
    return removed


@attrs.define
class Host:
    name: str
    index: int
    ns: str
    link: Link = Link()
    cut: bool = False

    @property
    def ip(self) -> str:
        return node_ip(self.index)

    @property
    def relay(self) -> str:
        return relay_ip(self.index)

    @property
    def veth(self) -> str:  # the hub's end
        return f"v{self.index}"


class NetGrid:
    """Hosts, their links and the node processes in them; close() removes everything."""

    def __init__(self, base: str, seed: int = 0) -> None:
        cleanup_stale()
        self.base = base
        self.pid = os.getpid()
        self.number = next(_grid_numbers)
        self.hub = namespace(self.pid, self.number, HUB)
        self.hosts: dict[str, Host] = {}
        self.processes: list[NodeProcess] = []
        self.nodes: dict[str, NodeProcess] = {}  # host -> the shoal node running there
        self.introducer_furl: str | None = None
        self._web: dict[str, str] = {}
        self._closed = False
        self.relay: Relay | None = None
        atexit.register(self.close)
        try:
            _ip("netns", "add", self.hub)
            _ip("-n", self.hub, "link", "set", "lo", "up")
            # a fixed MAC: otherwise the bridge takes its lowest port's, and a host added later can
            # change it under the hosts' ARP caches (seconds of silence until they re-resolve)
            _ip("-n", self.hub, "link", "add", "br0", "address", HUB_MAC, "type", "bridge")
            _ip("-n", self.hub, "addr", "add", f"{HUB_IP}/{SUBNET.prefixlen}", "dev", "br0")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            self.relay = Relay(self.hub, seed)
        except BaseException:
            self.close()
            raise

    # -- hosts and links ---------------------------------------------------------

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise NetGridError(f"no host {name!r} in this grid") from None

    def add_host(self, name: str) -> Host:
        check_host_name(name)
        if name in self.hosts:
            raise NetGridError(f"host {name!r} exists")
        h = Host(name, len(self.hosts), namespace(self.pid, self.number, name))
        _ip("netns", "add", h.ns)
        self.hosts[name] = h
        _ip("-n", h.ns, "link", "set", "lo", "up")
        _ip("-n", self.hub, "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
        _ip("-n", self.hub, "link", "set", h.veth, "master", "br0", "up")
        _ip("-n", self.hub, "addr", "add", f"{h.relay}/32", "dev", "br0")
        _ip("-n", h.ns, "addr", "add", f"{h.ip}/{SUBNET.prefixlen}", "dev", "eth0")
        _ip("-n", h.ns, "link", "set", "eth0", "up")
        assert self.relay is not None
        self.relay.listen(h.index, h.relay, TUB_PORT)
        return h

    def set_link(self, name: str, **changes: Any) -> Link:
        """Change some of a host's link settings (delay, loss, up_mbit, down_mbit); now, even mid-transfer."""
        h = self.host(name)
        new = attrs.evolve(h.link, **changes)
        for dev, ns, old_rate, rate in ((("eth0", h.ns, h.link.up_mbit, new.up_mbit)),
                                        (h.veth, self.hub, h.link.down_mbit, new.down_mbit)):
            if rate is not None:
                _tc(ns, "qdisc", "replace", "dev", dev, "root", *tbf_args(rate))
            elif old_rate is not None:
                _tc(ns, "qdisc", "del", "dev", dev, "root")
        assert self.relay is not None
        self.relay.set_link(h.index, new)
        h.link = new
        return new

    def set_round_trip(self, rtt: float, names: Iterable[str] | None = None) -> None:
        """Give every pair of the named hosts (default: all) a round trip of `rtt` seconds."""
        for name in list(self.hosts) if names is None else names:
            self.set_link(name, delay=rtt / 4)

    def cut(self, name: str) -> None:
        """Take the host's link down: its packets go nowhere (connections hang, as on a real cut)."""
        h = self.host(name)
        _ip("-n", self.hub, "link", "set", h.veth, "down")
        h.cut = True

    def restore(self, name: str) -> None:
        h = self.host(name)
        _ip("-n", self.hub, "link", "set", h.veth, "up")
        h.cut = False

    def partition(self, names: Iterable[str]) -> None:
        """Cut the named hosts off from the rest (they still reach each other) until heal()."""
        assert self.relay is not None
        self.relay.set_partition(Partition(frozenset(self.host(n).index for n in names)))

    def heal(self) -> None:
        assert self.relay is not None
        self.relay.set_partition(Partition())

    # -- processes -----------------------------------------------------------------

    def exec_prefix(self, name: str) -> list[str]:
        """The argv prefix that runs a command inside the host's namespace."""
        return ["ip", "netns", "exec", self.host(name).ns]

    def listen_args(self, name: str) -> tuple[str, ...]:
        """create-node/create-introducer flags (shoal's and Tahoe's) for a node on this host."""
        h = self.host(name)
        return ("--port", f"tcp:{TUB_PORT}:interface={h.ip}", "--location", f"tcp:{h.relay}:{TUB_PORT}")

    def web_args(self, name: str) -> tuple[str, ...]:
        """create-client flags (shoal's and Tahoe's): the web API on the host's own loopback."""
        self.host(name)
        return ("--webport", f"tcp:{WEB_PORT}:interface=127.0.0.1")

    def web_url(self, name: str) -> str:
        """A URL in the test's namespace for the web API of the client on this host (the user's
        program sits beside the client: this path crosses none of the host's links)."""
        if name not in self._web:
            assert self.relay is not None
            self._web[name] = f"http://127.0.0.1:{self.relay.forward_local(self.host(name).ns, WEB_PORT)}/"
        return self._web[name]

    def start_node(self, name: str, nodedir: str, timeout: float = 60) -> NodeProcess:
        node = start_node(nodedir, timeout, prefix=self.exec_prefix(name))
        self.processes.append(node)
        self.nodes[name] = node
        return node

    def restart(self, name: str, timeout: float = 60) -> NodeProcess:
        """Stop the host's node (by pid) and start it again from the same directory."""
        old = self.nodes[name]
        old.stop()
        self.processes.remove(old)
        return self.start_node(name, old.nodedir, timeout)

    def popen(self, name: str, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """Any command inside the host's namespace (the caller stops it by pid)."""
        return subprocess.Popen([*self.exec_prefix(name), *argv], **kwargs)  # type: ignore[call-overload]

    def start_tahoe(self, name: str, tahoe: str, nodedir: str, ready: str, timeout: float = 180) -> NodeProcess:
        """`tahoe run nodedir` (the reference peer) on the host; returns once the node
        wrote `ready` (a file under nodedir: node.url, private/storage.furl). Stopped by
        pid at close(), or earlier by the caller."""
        proc = self.popen(name, [tahoe, "run", nodedir], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        node = NodeProcess(nodedir, proc)
        self.processes.append(node)

        def up() -> bool:
            if proc.poll() is not None:
                raise NodeProcessError(f"tahoe node {nodedir} exited with {proc.returncode}")
            return os.path.exists(os.path.join(nodedir, ready))

        wait_until(up, timeout, f"tahoe node {nodedir} to write {ready}", interval=0.2)
        return node

    # -- a shoal grid on the hosts -------------------------------------------------

    def _dir(self, name: str) -> str:
        return os.path.join(self.base, name)

    def start_introducer(self, name: str = "intro") -> NodeProcess:
        if name not in self.hosts:
            self.add_host(name)
        d = self._dir(name)
        create("create-introducer", *self.listen_args(name), d)
        node = self.start_node(name, d)
        self.introducer_furl = node.read_private("introducer.furl")
        return node

    def add_storage(self, name: str, config: Mapping[tuple[str, str], str] | None = None) -> NodeProcess:
        """A host (made if new) running a shoal storage node announced through the introducer."""
        assert self.introducer_furl, "start_introducer first"
        if name not in self.hosts:
            self.add_host(name)
        d = self._dir(name)
        create("create-node", *self.listen_args(name), "--webport", "none", "--nickname", name,
               "--introducer", self.introducer_furl, d)
        for (section, key), value in (config or {}).items():
            set_config(d, section, key, value)
        return self.start_node(name, d)

    def add_client(self, name: str, *extra: str, servers: int = 0,
                   config: Mapping[tuple[str, str], str] | None = None) -> tuple[NodeProcess, str]:
        """A host running a shoal client node; returns it and its web URL once it sees `servers`."""
        assert self.introducer_furl, "start_introducer first"
        if name not in self.hosts:
            self.add_host(name)
        d = self._dir(name)
        create("create-client", *self.web_args(name), "--nickname", name,
               "--introducer", self.introducer_furl, *extra, d)
        for (section, key), value in (config or {}).items():
            set_config(d, section, key, value)
        node = self.start_node(name, d)
        url = self.web_url(name)
        if servers:
            wait_for_servers(url, servers, timeout=60)
        return node, url

    # -- teardown ------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process by pid, then remove every namespace (and so every veth and qdisc)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            for h in self.hosts.values():  # a cut host's node still stops: it only lost its network
                if h.cut:
                    _ip("-n", self.hub, "link", "set", h.veth, "up", check=False)
            stop_all(self.processes)
        finally:
            if self.relay is not None:
                self.relay.close()
            for h in self.hosts.values():
                _destroy_namespace(h.ns)
            _destroy_namespace(self.hub)
