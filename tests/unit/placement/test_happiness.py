"""Servers of happiness (Tahoe 1.20's measure) and the share placement planner."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.placement.happiness import (
    Planner,
    happiness_of,
    maximum_matching,
    plan_placement,
    servers_of_happiness,
)

# --- brute force references (small graphs only) ------------------------------------


def brute_matching(edges: dict[int, set[str]]) -> int:
    """Largest matching, by trying every assignment of shares to servers or none."""
    shares = sorted(edges)
    best = 0
    choices = [[None, *sorted(edges[sh])] for sh in shares]
    for pick in itertools.product(*choices):
        used = [s for s in pick if s is not None]
        if len(used) == len(set(used)):
            best = max(best, len(used))
    return best


def brute_min_new(n: int, servers: list[str], writable: set[str], held: dict[str, set[int]]) -> tuple[int, int]:
    """(best happiness, fewest non-held edges in a matching that reaches it)."""
    best = (0, 0)
    choices = [[None, *servers] for _ in range(n)]
    for pick in itertools.product(*choices):
        used = [s for s in pick if s is not None]
        if len(used) != len(set(used)):
            continue
        new = 0
        ok = True
        for sh, s in enumerate(pick):
            if s is None:
                continue
            if sh in held.get(s, ()):
                continue
            if s not in writable:
                ok = False
                break
            new += 1
        if ok and (len(used), -new) > (best[0], -best[1]):
            best = (len(used), new)
    return best


names = [f"s{i}" for i in range(6)]


@st.composite
def grids(draw, max_shares=5, max_servers=5):
    n = draw(st.integers(1, max_shares))
    servers = draw(st.permutations(names[: draw(st.integers(1, max_servers))]))
    writable = set(draw(st.lists(st.sampled_from(servers), unique=True)))
    held = {
        s: set(draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)))
        for s in servers
    }
    return n, list(servers), writable, held


# --- the measure -----------------------------------------------------------------


def test_tahoe_docstring_example():
    # happinessutil.servers_of_happiness's example layout: happiness 5
    servermap = {"1": {1, 2, 3, 4}, "2": {6}, "3": {3}, "4": {4}, "5": {2}}
    assert happiness_of(servermap) == 5


def test_all_shares_on_every_server_counts_k():
    # servers-of-happiness.rst: k=3, ten servers holding all three shares -> 3
    assert happiness_of({f"p{i}": {0, 1, 2} for i in range(10)}) == 3


def test_empty():
    assert servers_of_happiness({}) == 0
    assert happiness_of({"a": set()}) == 0


@given(st.dictionaries(st.integers(0, 5), st.sets(st.sampled_from(names), max_size=4), max_size=6))
def test_matching_is_maximum(edges):
    match = maximum_matching({sh: sorted(s) for sh, s in edges.items()})
    assert len(set(match.values())) == len(match)  # a matching
    assert all(match[sh] in edges[sh] for sh in match)  # uses real edges
    assert len(match) == brute_matching(edges) == servers_of_happiness(edges)


def test_matching_prefers_earlier_servers():
    assert maximum_matching({0: ["a", "b"], 1: ["a", "b"]}) == {0: "a", 1: "b"}
    # augmenting: share 1 can only use "a", so share 0 moves to "b"
    assert maximum_matching({0: ["a", "b"], 1: ["a"]}) == {0: "b", 1: "a"}


def test_long_augmenting_paths():
    # a chain that forces every earlier share to move (deep augmenting path)
    size = 300
    edges = {i: [i, i + 1] for i in range(size)}
    edges[size] = [0]
    assert servers_of_happiness(edges) == size + 1


# --- the planner -------------------------------------------------------------------


def test_fresh_upload_one_share_per_server_in_order():
    servers = [f"s{i}" for i in range(10)]
    plan = plan_placement(servers, 10, writable=set(servers))
    assert plan.homes == {i: f"s{i}" for i in range(10)}
    assert plan.happiness == 10
    assert plan.new == {f"s{i}": frozenset({i}) for i in range(10)}
    assert not plan.relied and not plan.keep and not plan.unplaced


def test_more_servers_than_shares_uses_the_first():
    servers = [f"s{i:02d}" for i in range(20)]
    plan = plan_placement(servers, 10, writable=set(servers))
    assert set(plan.homes.values()) == set(servers[:10])


def test_fewer_servers_spreads_evenly():
    servers = ["a", "b", "c"]
    plan = plan_placement(servers, 10, writable=set(servers))
    assert plan.happiness == 3
    loads = sorted(len(v) for v in plan.new.values())
    assert loads == [3, 3, 4]
    assert plan.homes[0] == "a" and plan.homes[1] == "b" and plan.homes[2] == "c"


def test_skips_readonly_servers():
    servers = ["a", "b", "c", "d"]
    plan = plan_placement(servers, 2, writable={"b", "d"})
    assert plan.homes == {0: "b", 1: "d"}


def test_relies_on_existing_shares():
    servers = ["a", "b", "c"]
    plan = plan_placement(servers, 3, writable=set(servers), held={"c": {0}, "a": {2}})
    assert plan.relied == {"c": frozenset({0}), "a": frozenset({2})}
    assert plan.new == {"b": frozenset({1})}
    assert plan.happiness == 3


def test_readonly_holder_frees_a_writable_server():
    # share 0 is on read-only "r" and on writable "w": rely on "r", use "w" for share 1
    plan = plan_placement(["w", "r"], 2, writable={"w"}, held={"w": {0}, "r": {0}})
    assert plan.happiness == 2
    assert plan.relied == {"r": frozenset({0})}
    assert plan.new == {"w": frozenset({1})}


def test_duplicate_holdings_are_spread_out():
    # one server holds all shares: only one counts, the others go to fresh servers
    plan = plan_placement(["a", "b", "c"], 3, writable={"a", "b", "c"}, held={"a": {0, 1, 2}})
    assert plan.happiness == 3
    assert len(plan.relied["a"]) == 1
    assert sum(len(v) for v in plan.new.values()) == 2
    assert "a" not in plan.new


def test_allocated_writers_are_kept_before_new_ones():
    plan = plan_placement(["a", "b", "c"], 2, writable={"a", "b", "c"}, allocated={"c": {0}})
    assert plan.keep == {"c": frozenset({0})}
    assert plan.new == {"a": frozenset({1})}


def test_unneeded_allocation_is_dropped_for_an_existing_share():
    plan = plan_placement(["a", "b"], 2, writable={"a", "b"}, allocated={"a": {0}}, held={"b": {0}})
    # share 0 exists on b: the writer on a is not needed, a takes share 1
    assert plan.relied == {"b": frozenset({0})}
    assert plan.new == {"a": frozenset({1})}
    assert plan.keep == {}


def test_no_writable_servers():
    plan = plan_placement(["a"], 3, writable=set(), held={"a": {1}})
    assert plan.unplaced == {0, 2}
    assert plan.happiness == 1


@given(grids())
@settings(max_examples=300)
def test_plan_is_optimal(grid):
    n, servers, writable, held = grid
    plan = plan_placement(servers, n, writable=writable, held=held)
    best, fewest_new = brute_min_new(n, servers, writable, held)
    assert plan.happiness == best
    # the layout the plan leaves behind really has that happiness
    layout = {s: set(v) for s, v in held.items()}
    for s, shares in plan.new.items():
        layout[s] |= shares
    assert happiness_of(layout) == best
    # new shares only on writable servers, never where the share already is
    for s, shares in plan.new.items():
        assert s in writable
        assert not shares & held.get(s, set())
    # every share has a home unless it can have none
    for sh in range(n):
        if sh in plan.unplaced:
            assert not writable and not any(sh in v for v in held.values())
        else:
            assert sh in plan.homes
    # the matched part uploads as little as possible (the n - best shares left
    # over may each need an upload too)
    assert sum(len(v) for v in plan.new.values()) <= fewest_new + (n - best)


@given(grids(max_shares=6, max_servers=6))
@settings(max_examples=200)
def test_one_share_per_server_before_seconds(grid):
    n, servers, writable, held = grid
    plan = plan_placement(servers, n, writable=writable, held=held)
    load = {s: 0 for s in servers}
    for s in plan.homes.values():
        load[s] += 1
    doubled_new = [s for s, shares in plan.new.items() if load[s] >= 2]
    if doubled_new:
        # nobody writable is left empty while a server got a second share to upload
        assert all(load[s] >= 1 for s in writable)
        spread = [load[s] for s in writable]
        assert max(spread) - min(spread) <= 1 or any(held.values())


def test_planner_replans_after_refusal_and_error():
    servers = [f"s{i}" for i in range(6)]
    planner = Planner(servers, 3, 3, writable=set(servers))
    first = planner.requests()
    assert first == {"s0": frozenset({0}), "s1": frozenset({1}), "s2": frozenset({2})}
    for s, shares in first.items():
        planner.sent_allocate(s, shares)
    planner.got_allocate("s0", {0}, [], [0])
    planner.got_allocate("s1", {1}, [], [])  # full
    planner.failed("s2", "connection lost")
    for s in ("s3", "s4", "s5"):
        planner.got_buckets(s, [])
    second = planner.requests()
    assert second == {"s3": frozenset({1}), "s4": frozenset({2})}
    assert "full: refused sh1" in planner.answers["s1"].describe()
    assert "error: connection lost" in planner.answers["s2"].describe()


def test_planner_renews_relied_holders_once():
    planner = Planner(["a", "b"], 2, 2, writable={"a", "b"})
    planner.sent_allocate("a", {0})
    planner.got_allocate("a", {0}, [0], [])
    planner.got_buckets("b", [1])
    assert planner.requests() == {"b": frozenset({1})}  # renew the lease on b's share
    planner.sent_allocate("b", {1})
    planner.got_allocate("b", {1}, [1], [])
    assert planner.requests() == {}
    assert planner.plan().relied == {"a": frozenset({0}), "b": frozenset({1})}


@st.composite
def behaviours(draw):
    """Servers with a true capacity (shares they would accept), holdings, failures."""
    n = draw(st.integers(1, 5))
    count = draw(st.integers(1, 6))
    servers = names[:count]
    # a server is full (0) or takes whatever it is asked (n); partly full
    # servers are exercised by the real grid tests
    capacity = {s: draw(st.sampled_from([0, n])) for s in servers}
    broken = {s for s in servers if draw(st.booleans()) and draw(st.booleans())}
    held = {s: set(draw(st.lists(st.integers(0, n - 1), unique=True, max_size=2))) for s in servers}
    announced = {s for s in servers if draw(st.integers(0, 4))}  # mostly writable
    return n, servers, capacity, broken, held, announced


@given(behaviours())
@settings(max_examples=300)
def test_planner_loop_reaches_the_best_happiness(case):
    n, servers, capacity, broken, held, announced = case
    planner = Planner(servers, n, 1, writable=announced)
    left = dict(capacity)

    def allocate(s, shares):
        planner.sent_allocate(s, shares)
        if s in broken:
            planner.failed(s, "boom")
            return
        already = held[s]
        granted = []
        for sh in sorted(shares - already):
            if left[s] > 0:
                left[s] -= 1
                granted.append(sh)
        planner.got_allocate(s, shares, already, granted)

    first = planner.requests()
    for s, shares in first.items():
        allocate(s, shares)
    for s in servers:
        if s not in first:
            if s in broken:
                planner.failed(s, "boom")
            else:
                planner.got_buckets(s, held[s])
    for _ in range(50):
        requests = planner.requests()
        if not requests:
            break
        for s, shares in requests.items():
            allocate(s, shares)
    else:
        raise AssertionError("placement did not converge")
    plan = planner.plan()
    for s, shares in planner.unneeded(plan).items():
        planner.abandon(s, shares)
    # best possible: held shares on working servers, plus any share on a working
    # server that announced room and would accept at least one
    edges: dict[int, set[str]] = {sh: set() for sh in range(n)}
    for s in servers:
        if s in broken:
            continue
        for sh in held[s]:
            edges[sh].add(s)
        if s in announced and capacity[s] > 0:
            for sh in range(n):
                edges[sh].add(s)
    assert planner.happiness() == brute_matching(edges)
