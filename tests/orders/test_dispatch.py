"""Dispatch as a pure function: coverage, skill, kind, load balance, distance, declines, slots."""

from __future__ import annotations

import datetime as dt

from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE, ProviderKind
from yiyang.care.orders.dispatch import (
    Candidate,
    DispatchWeights,
    Exclusion,
    available_at,
    covers,
    hops_between,
    rank_providers,
    slot_at,
)

MEAL = DEFAULT_CATALOGUE.get("meal")
NURSING = DEFAULT_CATALOGUE.get("home_nursing")
STREET = "D/S1"
HOME = "D/S1/C1/G1"  # the resident's grid


def station(pid: int, base: str = "D/S1/C1", *, skills: tuple[str, ...] = ("meal_delivery",), load: int = 0,
            capacity: int = 5, coverage: tuple[str, ...] = (STREET,), kind: ProviderKind = ProviderKind.station,
            available: bool = True, active: bool = True) -> Candidate:  # fmt: skip
    return Candidate(pid, kind, frozenset(skills), coverage, base, load, capacity, available, active)


def test_area_paths_cover_their_subtree_only() -> None:
    assert covers(["D/S1"], "D/S1/C1/G1")
    assert covers(["D/S1"], "D/S1")
    assert not covers(["D/S1"], "D/S10/C1")  # a prefix of the text is not a parent
    assert not covers(["D/S1/C2"], "D/S1/C1")


def test_hops_count_steps_in_the_area_tree() -> None:
    assert hops_between("D/S1/C1/G1", "D/S1/C1/G1") == 0
    assert hops_between("D/S1/C1/G1", "D/S1/C1") == 1
    assert hops_between("D/S1/C1/G1", "D/S1/C1/G2") == 2
    assert hops_between("D/S1/C1/G1", "D/S2/C9") == 5


def test_only_providers_covering_the_area_with_the_skill_and_kind_are_ranked() -> None:
    ranking = rank_providers(
        MEAL,
        HOME,
        [
            station(1),
            station(2, coverage=("D/S2",)),  # another street
            station(3, skills=("nursing",)),  # no meal skill
            station(4, kind=ProviderKind.family_doctor_team),  # meals are not a team's work
            station(5, active=False),
        ],
    )
    assert [r.provider_id for r in ranking.ranked] == [1]
    assert ranking.excluded == {
        2: Exclusion.coverage, 3: Exclusion.skill, 4: Exclusion.kind, 5: Exclusion.inactive,
    }  # fmt: skip


def test_the_nearer_provider_wins_when_loads_are_equal() -> None:
    ranking = rank_providers(MEAL, HOME, [station(1, base="D/S1/C2"), station(2, base="D/S1/C1")])
    assert [r.provider_id for r in ranking.ranked] == [2, 1]
    assert ranking.ranked[0].hops == 1 and ranking.ranked[1].hops == 3


def test_load_balances_work_towards_the_provider_with_room() -> None:
    # the same distance: the emptier station wins; a full one is excluded
    ranking = rank_providers(
        MEAL, HOME, [station(1, load=4), station(2, load=1), station(3, load=5, capacity=5)]
    )
    assert [r.provider_id for r in ranking.ranked] == [2, 1]
    assert ranking.excluded == {3: Exclusion.full}


def test_much_spare_capacity_outweighs_a_little_distance() -> None:
    busy_near = station(1, base="D/S1/C1", load=4)  # 1 hop, 1/5 spare
    idle_farther = station(2, base="D/S1/C2", load=0)  # 3 hops, all spare
    best = rank_providers(MEAL, HOME, [busy_near, idle_farther]).best
    assert best is not None and best.provider_id == 2
    # a district that weighs distance alone sends it to the nearer one
    near_only = DispatchWeights(nearness=1.0, spare_capacity=0.0, kind_preference=0.0)
    best = rank_providers(MEAL, HOME, [busy_near, idle_farther], weights=near_only).best
    assert best is not None and best.provider_id == 1


def test_providers_that_declined_are_not_offered_the_order_again() -> None:
    ranking = rank_providers(MEAL, HOME, [station(1), station(2, base="D/S1/C2")], already_tried={1})
    assert [r.provider_id for r in ranking.ranked] == [2]
    assert ranking.excluded == {1: Exclusion.declined}
    assert rank_providers(MEAL, HOME, [station(1)], already_tried={1}).best is None


def test_the_preferred_kind_breaks_an_otherwise_even_contest() -> None:
    team = station(1, kind=ProviderKind.family_doctor_team, skills=("nursing",))
    stn = station(2, kind=ProviderKind.station, skills=("nursing",))
    assert [r.provider_id for r in rank_providers(NURSING, HOME, [stn, team]).ranked] == [1, 2]


def test_ties_go_to_the_lower_id_so_dispatch_is_deterministic() -> None:
    assert [r.provider_id for r in rank_providers(MEAL, HOME, [station(7), station(3)]).ranked] == [3, 7]


def test_volunteer_availability_slots_are_read_in_china_time() -> None:
    tuesday_10_cst = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
    assert slot_at(tuesday_10_cst) == "tue.am"
    assert slot_at(dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)) is None  # 01:00 at night
    assert available_at(["tue.am"], tuesday_10_cst)
    assert not available_at(["sat.pm"], tuesday_10_cst)
    assert available_at([], tuesday_10_cst)  # no slots given: any time
    assert available_at(["sat.pm"], None)  # as soon as possible
    ranking = rank_providers(MEAL, HOME, [station(1, available=False)])
    assert ranking.excluded == {1: Exclusion.unavailable}


def test_a_kind_the_residents_consent_refuses_is_excluded_for_consent_only_when_nothing_else_is() -> None:
    escort = DEFAULT_CATALOGUE.get("escort")
    volunteer = ProviderKind.volunteer
    ranking = rank_providers(
        escort,
        HOME,
        [
            station(1, skills=("escort",), kind=volunteer),
            station(2, skills=("escort",), kind=volunteer, load=2, capacity=2),  # full anyway
            station(3, skills=("escort",)),
        ],
        refused_kinds={volunteer},
    )
    assert [r.provider_id for r in ranking.ranked] == [3]
    assert ranking.excluded == {1: Exclusion.consent, 2: Exclusion.full}
    # and without the refusal the preferred kind wins again
    assert rank_providers(escort, HOME, [station(1, skills=("escort",), kind=volunteer),
                                         station(3, skills=("escort",))]).best.provider_id == 1  # type: ignore[union-attr]  # fmt: skip
