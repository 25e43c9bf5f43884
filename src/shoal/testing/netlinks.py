"""The pure parts of the network-namespace grid: address plan, names, link model.

No namespaces, sockets or processes here (those are in netgrid.py), so the
rules can be tested anywhere.

The network: every host is a network namespace with one interface, eth0,
whose other end sits on a bridge in a hub namespace. Host i's node listens
on ``node_ip(i)``; the hub owns ``relay_ip(i)``, where a userspace relay
accepts connections meant for host i and forwards them to ``node_ip(i)``.
Nodes announce relay addresses, so every connection between two hosts
passes one relay, which adds the delay and loss of the link model below;
bandwidth is a ``tc tbf`` queue on each end of the host's veth (the host's
end shapes its uplink, the hub's its downlink).

The link model is an access-link model: each host has a one-way delay, a
loss probability and a rate for its own link to the hub. A byte from a to b
waits ``delay(a) + delay(b)`` (so the round trip between them is twice
that), and a chunk crossing the relay is "lost" with probability
``1 - (1 - loss(a)) * (1 - loss(b))``. A TCP relay cannot drop bytes, so a
lost chunk is modelled as TCP recovers one: it arrives a retransmission
timeout late (``max(RTO_MIN, 2 * round trip)``, Linux's 200 ms floor).
"""

import ipaddress
import random
import re

import attrs

from shoal.errors import ShoalError

PREFIX = "sng"  # every namespace the harness creates is named PREFIX<pid>-<grid number><host>
SUBNET = ipaddress.IPv4Network("10.77.0.0/16")  # only inside the harness's namespaces
HUB_IP = "10.77.0.1"
MAX_HOSTS = 200
HUB = "hub"  # the namespace holding the bridge and the relays
RTO_MIN = 0.2  # seconds: Linux's minimum TCP retransmission timeout
_HOST_NAME = re.compile(r"\A[a-z][a-z0-9]{0,15}\Z")
_OWNED = re.compile(rf"\A{PREFIX}(\d+)-[a-z0-9]+\Z")


class NetGridError(ShoalError):
    """The namespace grid was asked for something it cannot build (the test's mistake)."""


def check_host_name(name: str) -> str:
    if not _HOST_NAME.match(name) or name == HUB:
        raise NetGridError(f"host name {name!r}: want 1-16 lower-case letters and digits, a letter first, not {HUB!r}")
    return name


def namespace(pid: int, grid: int, host: str) -> str:
    """The namespace name of `host` (or HUB) in grid number `grid` of the harness run of process `pid`."""
    return f"{PREFIX}{pid}-{grid}{host if host == HUB else check_host_name(host)}"


def owner_pid(ns_name: str) -> int | None:
    """The pid of the harness run that made a namespace, or None if the harness did not make it."""
    m = _OWNED.match(ns_name)
    return int(m.group(1)) if m else None


def _check_index(index: int) -> int:
    if not 0 <= index < MAX_HOSTS:
        raise NetGridError(f"host index {index} out of range 0..{MAX_HOSTS - 1}")
    return index


def node_ip(index: int) -> str:
    """Where host `index`'s node listens (inside its own namespace)."""
    return str(SUBNET.network_address + 0x0000 + 10 + _check_index(index))


def relay_ip(index: int) -> str:
    """The hub's address that relays to host `index`; nodes announce this one."""
    return str(SUBNET.network_address + 0x0100 + 10 + _check_index(index))


def host_of_node_ip(ip: str) -> int | None:
    """The host index whose node_ip this is, else None (the hub, a relay address, elsewhere)."""
    try:
        offset = int(ipaddress.IPv4Address(ip)) - int(SUBNET.network_address) - 10
    except ValueError:
        return None
    return offset if 0 <= offset < MAX_HOSTS else None


@attrs.frozen
class Link:
    """One host's access link: one-way delay (s), loss probability per chunk, and the rates
    (Mbit/s, None for unlimited) of its uplink (host to hub) and downlink."""

    delay: float = 0.0
    loss: float = 0.0
    up_mbit: float | None = None
    down_mbit: float | None = None

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.delay <= 10:
            raise NetGridError(f"link delay {self.delay!r} s: want 0..10")
        if not 0 <= self.loss < 1:
            raise NetGridError(f"link loss {self.loss!r}: want 0 <= loss < 1")
        for rate in (self.up_mbit, self.down_mbit):
            if rate is not None and not 0.01 <= rate <= 10_000:
                raise NetGridError(f"link rate {rate!r} Mbit/s: want 0.01..10000")


def one_way(a: Link, b: Link) -> float:
    return a.delay + b.delay


def round_trip(a: Link, b: Link) -> float:
    return 2 * one_way(a, b)


def loss_probability(a: Link, b: Link) -> float:
    return 1 - (1 - a.loss) * (1 - b.loss)


def chunk_delay(a: Link, b: Link, rng: random.Random) -> float:
    """How long one chunk from a to b waits in the relay."""
    delay = one_way(a, b)
    p = loss_probability(a, b)
    if p and rng.random() < p:
        delay += max(RTO_MIN, 2 * round_trip(a, b))
    return delay


def tbf_args(rate_mbit: float) -> list[str]:
    """`tc qdisc ... tbf` arguments for a rate: a burst of 10 ms of traffic (at least 16 KiB,
    above the rate/HZ the kernel needs) and a queue of up to 200 ms."""
    rate_bytes = rate_mbit * 1_000_000 / 8
    burst = max(16 * 1024, int(rate_bytes / 100))
    return ["tbf", "rate", f"{rate_mbit}mbit", "burst", str(burst), "latency", "200ms"]


@attrs.frozen
class Partition:
    """Hosts cut off from the rest: two hosts can talk iff both are inside or both outside."""

    inside: frozenset[int] = frozenset()

    def allows(self, a: int | None, b: int | None) -> bool:
        if a is None or b is None or not self.inside:  # the hub itself (the test driver) is never cut off
            return True
        return (a in self.inside) == (b in self.inside)
