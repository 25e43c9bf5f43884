"""Placement policies (shoal.placement.policy), pure: the repair policy places only what
the grid lacks and never relies on a corrupt share; the lost-share decision is the same
rule for upload and repair."""

import pytest

from shoal.placement.policy import LossDecision, PlacementPolicy

SERVERS = [f"s{i}" for i in range(12)]
N = 10


def planner_for(policy: PlacementPolicy[str], servers: list[str] = SERVERS, writable: list[str] | None = None):
    return policy.planner(servers, N, set(servers if writable is None else writable))


def answer_buckets(planner, held: dict[str, set[int]]) -> None:
    for server in planner.servers:
        planner.got_buckets(server, held.get(server, set()))


# --- the repair policy -----------------------------------------------------------------


def test_repair_places_only_missing_and_corrupt_shares_next_to_the_good_ones():
    policy = PlacementPolicy.repair({("s3", 3)})
    planner = planner_for(policy)
    answer_buckets(planner, {f"s{i}": {i} for i in range(2, 10)})  # sh0, sh1 missing; sh3 corrupt
    plan = planner.plan()
    assert plan.relied == {f"s{i}": frozenset({i}) for i in (2, 4, 5, 6, 7, 8, 9)}
    assert sorted(sh for shares in plan.new.values() for sh in shares) == [0, 1, 3]
    # the new shares go to servers holding nothing good (s3's only share is corrupt)
    assert set(plan.new) <= {"s0", "s1", "s3", "s10", "s11"}
    assert plan.happiness == 10
    assert planner.happiness() == 7  # the good existing shares count already


def test_repair_counts_existing_good_shares_and_accepts_any_happiness():
    policy = PlacementPolicy.repair()
    assert policy.happy == 1
    planner = planner_for(policy, SERVERS[:3])
    answer_buckets(planner, {"s0": set(range(N))})  # everything on one server
    plan = planner.plan()
    assert plan.happiness == 3 and planner.happiness() == 1
    # one share copied to each empty server; the other eight stay relied upon where they are
    assert set(plan.new) == {"s1", "s2"} and all(len(shares) == 1 for shares in plan.new.values())
    moved = plan.new["s1"] | plan.new["s2"]
    assert plan.relied == {"s0": frozenset(range(N)) - moved}


def test_a_server_answering_it_holds_the_corrupt_share_asked_of_it_refused_it():
    planner = planner_for(PlacementPolicy.repair({("s0", 0)}))
    planner.sent_allocate("s0", {0})
    planner.got_allocate("s0", {0}, already={0}, allocated=set())
    assert "s0" not in planner.writable()
    assert planner.held() == {}
    assert planner.answers["s0"].refused == {0}


def test_the_upload_policy_counts_every_share_found():
    planner = planner_for(PlacementPolicy.upload(7))
    answer_buckets(planner, {"s3": {3}})
    assert planner.held() == {"s3": frozenset({3})} and planner.happy == 7


def test_happy_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        PlacementPolicy.upload(0)


# --- a share lost while pushing ---------------------------------------------------------


def pushing(policy: PlacementPolicy[str], servers: list[str], writable: list[str] | None = None):
    """A planner in the middle of a push: share i allocated on servers[i] for i < N."""
    planner = planner_for(policy, servers, writable)
    for i, server in enumerate(servers):
        if i < N:
            planner.sent_allocate(server, {i})
            planner.got_allocate(server, {i}, already=set(), allocated={i})
        else:
            planner.got_buckets(server, set())
    return planner


@pytest.mark.parametrize("policy", [PlacementPolicy.upload(7), PlacementPolicy.repair()], ids=["upload", "repair"])
def test_a_lost_share_is_replaced_when_a_spare_server_raises_happiness(policy):
    planner = pushing(policy, SERVERS)
    planner.drop("s4", 4, "connection lost")
    assert policy.after_loss(planner, can_replace=True) is LossDecision.REPLACE
    assert planner.plan().new == {"s10": frozenset({4})}
    # the same loss without a second pass over the source: carry on at 9
    assert policy.after_loss(planner, can_replace=False) is LossDecision.CONTINUE


@pytest.mark.parametrize("policy", [PlacementPolicy.upload(7), PlacementPolicy.repair()], ids=["upload", "repair"])
def test_without_a_spare_a_lost_share_is_dropped_while_happy(policy):
    planner = pushing(policy, SERVERS[:N])
    planner.drop("s4", 4, "connection lost")
    assert policy.after_loss(planner, can_replace=True) is LossDecision.CONTINUE


def test_a_read_only_spare_cannot_take_a_lost_share():
    policy = PlacementPolicy.upload(7)
    planner = pushing(policy, SERVERS, writable=SERVERS[:N])
    planner.drop("s4", 4, "connection lost")
    assert policy.after_loss(planner, can_replace=True) is LossDecision.CONTINUE


def test_losing_more_than_happiness_allows_fails_unless_spares_make_up_for_it():
    policy = PlacementPolicy.upload(8)
    planner = pushing(policy, SERVERS)
    for i in (0, 1, 2):
        planner.drop(f"s{i}", i, "gone")
    assert planner.happiness() == 7
    # two spares: 9 servers can still be reached, so push on and re-place
    assert policy.after_loss(planner, can_replace=True) is LossDecision.REPLACE
    assert policy.after_loss(planner, can_replace=False) is LossDecision.FAIL
    for i in (3, 4):
        planner.drop(f"s{i}", i, "gone")
    # 5 left plus 2 spares: 7 < 8 whatever happens
    assert policy.after_loss(planner, can_replace=True) is LossDecision.FAIL


def test_a_repair_fails_only_when_nothing_is_left():
    policy = PlacementPolicy.repair()
    planner = pushing(policy, SERVERS[:2])
    planner.drop("s0", 0, "gone")
    assert policy.after_loss(planner, can_replace=True) is LossDecision.CONTINUE
    planner.drop("s1", 1, "gone")
    assert policy.after_loss(planner, can_replace=True) is LossDecision.FAIL


# --- a straggler ------------------------------------------------------------------------


def test_a_straggler_is_spared_only_while_happiness_holds_without_it_and_the_planner_is_unchanged():
    policy = PlacementPolicy.upload(8)
    planner = pushing(policy, SERVERS[:N])
    assert policy.can_spare(planner, "s4", 4, can_replace=True)
    assert planner.happiness() == N and planner.answers["s4"].error is None  # only a trial
    planner.drop("s0", 0, "gone")
    assert policy.can_spare(planner, "s4", 4, can_replace=True)  # 9 -> 8: still happy
    planner.drop("s1", 1, "gone")
    assert not policy.can_spare(planner, "s4", 4, can_replace=True)  # 8 -> 7: never below happiness


def test_a_straggler_is_not_spared_when_a_spare_server_would_take_its_share():
    """after_loss would re-place it (a second pass): not what a straggler is dropped for."""
    policy = PlacementPolicy.upload(7)
    planner = pushing(policy, SERVERS)
    assert not policy.can_spare(planner, "s4", 4, can_replace=True)
    assert policy.can_spare(planner, "s4", 4, can_replace=False)
