"""The pure parts of the namespace grid: address plan, names, link model, partitions."""

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.testing.netlinks import (
    HUB,
    HUB_IP,
    MAX_HOSTS,
    RTO_MIN,
    SUBNET,
    Link,
    NetGridError,
    Partition,
    check_host_name,
    chunk_delay,
    host_of_node_ip,
    loss_probability,
    namespace,
    node_ip,
    owner_pid,
    relay_ip,
    round_trip,
    tbf_args,
)

host_names = st.from_regex(r"\A[a-z][a-z0-9]{0,15}\Z").filter(lambda n: n != HUB)


def test_address_plan_is_distinct_and_inside_the_subnet():
    nodes = [node_ip(i) for i in range(MAX_HOSTS)]
    relays = [relay_ip(i) for i in range(MAX_HOSTS)]
    everything = [*nodes, *relays, HUB_IP]
    assert len(set(everything)) == len(everything)
    assert all(ipaddress.IPv4Address(a) in SUBNET for a in everything)
    assert [host_of_node_ip(a) for a in nodes] == list(range(MAX_HOSTS))
    assert {host_of_node_ip(a) for a in [*relays, HUB_IP, "127.0.0.1", "not an address"]} == {None}


@pytest.mark.parametrize("index", [-1, MAX_HOSTS])
def test_host_index_out_of_range(index):
    with pytest.raises(NetGridError, match="out of range"):
        node_ip(index)


@given(st.integers(1, 2**22), st.integers(0, 999), host_names)
def test_namespace_names_say_whose_they_are(pid, grid, host):
    ns = namespace(pid, grid, host)
    assert owner_pid(ns) == pid
    assert owner_pid(namespace(pid, grid, HUB)) == pid


@pytest.mark.parametrize("name", ["", "Host", "1host", "a" * 17, "a-b", "hub", "a/b"])
def test_bad_host_names(name):
    with pytest.raises(NetGridError):
        check_host_name(name)


@pytest.mark.parametrize("ns", ["sng", "sngx-1a", "other123-1a", "sng12-", "sng12-a/b"])
def test_foreign_namespaces_are_not_ours(ns):
    assert owner_pid(ns) is None


@pytest.mark.parametrize("kwargs", [{"delay": -1}, {"delay": 11}, {"loss": 1}, {"loss": -0.1},
                                    {"up_mbit": 0}, {"down_mbit": 1e6}])
def test_bad_links(kwargs):
    with pytest.raises(NetGridError):
        Link(**kwargs)


@given(st.floats(0, 1), st.floats(0, 1))
def test_round_trip_is_twice_the_sum_of_both_access_delays(a, b):
    la, lb = Link(delay=a), Link(delay=b)
    assert round_trip(la, lb) == pytest.approx(2 * (a + b))
    assert chunk_delay(la, lb, random.Random(0)) == pytest.approx(a + b)  # no loss: exactly one way


def test_a_lost_chunk_arrives_one_retransmission_timeout_late():
    a, b = Link(delay=0.01, loss=0.2), Link(delay=0.02, loss=0.1)
    p = loss_probability(a, b)
    assert p == pytest.approx(1 - 0.8 * 0.9)
    rng = random.Random(7)
    delays = [chunk_delay(a, b, rng) for _ in range(20_000)]
    late = [d for d in delays if d > 0.03 + 1e-9]
    assert set(round(d, 9) for d in late) == {round(0.03 + RTO_MIN, 9)}  # 2 * RTT = 0.12 < 200 ms floor
    assert len(late) / len(delays) == pytest.approx(p, abs=0.02)
    slow = Link(delay=0.1, loss=0.5)
    assert max(chunk_delay(slow, slow, rng) for _ in range(100)) == pytest.approx(0.2 + 2 * 0.4)


def test_partition_splits_only_across_its_edge():
    p = Partition(frozenset({1, 2}))
    assert p.allows(1, 2) and p.allows(3, 4)
    assert not p.allows(1, 3) and not p.allows(4, 2)
    assert p.allows(None, 1) and p.allows(3, None)  # the test driver reaches everyone
    assert Partition().allows(1, 3)


@pytest.mark.parametrize("rate", [0.5, 10, 100, 1000])
def test_tbf_burst_covers_a_kernel_tick(rate):
    args = tbf_args(rate)
    burst = int(args[args.index("burst") + 1])
    assert burst >= rate * 1_000_000 / 8 / 250 and burst >= 16 * 1024
    assert args[:3] == ["tbf", "rate", f"{rate}mbit"]
