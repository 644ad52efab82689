"""Tier -> care: each tier's bundle as a proposed plan, and the plan and tier as FHIR resources."""

from __future__ import annotations

import datetime as dt

from fhir.resources.R4B.careplan import CarePlan as FhirCarePlan
from fhir.resources.R4B.flag import Flag as FhirFlag

from yiyang.tiers.care_plans import ACTIVITIES, BUNDLES, GOALS, REASON_EXTRAS, propose_care_plan
from yiyang.tiers.fhir import TIER_SYSTEM, care_plan_resource, tier_flag
from yiyang.tiers.models import CarePlan, CarePlanStatus
from yiyang.tiers.rules import DEFAULT_RULES, Fact, FactKind, Tier, evaluate_tier

AS_OF = dt.date(2025, 6, 30)


def condition(code: str) -> Fact:
    return Fact(FactKind.condition, code, dt.date(2025, 3, 1), feed="health", source_key="HR-1")


def capability(level: str) -> Fact:
    return Fact(FactKind.capability_level, level, dt.date(2025, 3, 1), feed="civil", source_key="MZ-1")


def test_red_proposes_home_sickbed_and_home_care_bed_linkage() -> None:
    plan = propose_care_plan(evaluate_tier([capability("severe")], as_of=AS_OF))
    assert plan.tier is Tier.red
    assert plan.activities[:3] == ("home_sickbed", "home_care_bed", "bed_linkage_visits")
    assert plan.addresses == ("capability.disabled",)


def test_yellow_proposes_chronic_plan_and_remote_monitoring_tailored_to_the_conditions() -> None:
    plan = propose_care_plan(evaluate_tier([condition("I10"), condition("E11.9")], as_of=AS_OF))
    assert plan.tier is Tier.yellow
    assert {"health_butler", "remote_monitoring", "hypertension_follow_up", "diabetes_follow_up"} <= set(
        plan.activities
    )
    assert "chronic_control" in plan.goals
    assert "home_sickbed" not in plan.activities


def test_green_proposes_wellness_and_an_invitation_to_volunteer() -> None:
    plan = propose_care_plan(evaluate_tier([], as_of=AS_OF))
    assert plan.tier is Tier.green
    assert plan.activities == ("wellness_activities", "annual_health_check", "volunteer_invitation")
    assert plan.addresses == ()


def test_red_resident_with_dementia_and_hypertension_keeps_the_follow_ups() -> None:
    plan = propose_care_plan(evaluate_tier([condition("F03"), condition("I10")], as_of=AS_OF))
    assert plan.tier is Tier.red
    assert "dementia_care" in plan.activities and "hypertension_follow_up" in plan.activities
    assert "cognitive_safety" in plan.goals
    assert len(plan.activities) == len(set(plan.activities))


def test_catalogues_name_every_code_the_bundles_use() -> None:
    for bundle in BUNDLES.values():
        assert set(bundle.goals) <= set(GOALS) and set(bundle.activities) <= set(ACTIVITIES)
    for goals, activities in REASON_EXTRAS.values():
        assert set(goals) <= set(GOALS) and set(activities) <= set(ACTIVITIES)
    assert set(REASON_EXTRAS) <= {rule.code for rule in DEFAULT_RULES}


def plan_row(status: CarePlanStatus, tier: Tier = Tier.yellow) -> CarePlan:
    proposal = (
        propose_care_plan(evaluate_tier([condition("I10")], as_of=AS_OF)) if tier is Tier.yellow else None
    )
    return CarePlan(
        id=7, resident_id=3, tier=tier, status=status, goals=list(proposal.goals) if proposal else ["stay_active"],
        activities=list(proposal.activities) if proposal else ["wellness_activities"],
        addresses=list(proposal.addresses) if proposal else [], tier_change_id=None,
        created_at=dt.datetime(2025, 6, 30, 8, tzinfo=dt.UTC), status_changed_at=dt.datetime(2025, 6, 30, 8, tzinfo=dt.UTC),
        status_changed_by="tier-engine",
    )  # fmt: skip


def test_proposed_plan_is_a_draft_careplan_proposal_with_its_goals() -> None:
    resource = care_plan_resource(plan_row(CarePlanStatus.proposed))
    parsed = FhirCarePlan.model_validate(resource)
    assert (parsed.status, parsed.intent) == ("draft", "proposal")
    assert parsed.subject.reference == "Patient/3"
    assert {c.id for c in parsed.contained} == {"goal-chronic-control"}
    assert [g.reference for g in parsed.goal] == ["#goal-chronic-control"]
    codes = [a.detail.code.coding[0].code for a in parsed.activity]
    assert "hypertension_follow_up" in codes and all(
        a.detail.status == "not-started" for a in parsed.activity
    )


def test_active_plan_maps_to_an_active_plan() -> None:
    parsed = FhirCarePlan.model_validate(care_plan_resource(plan_row(CarePlanStatus.active, Tier.green)))
    assert (parsed.status, parsed.intent) == ("active", "plan")
    assert parsed.category[0].coding[0].code == "green"


def test_tier_flag_carries_the_tier_and_every_reason() -> None:
    decision = evaluate_tier([capability("moderate"), condition("I10")], as_of=AS_OF)
    resource = tier_flag(3, decision.tier, list(decision.reasons), dt.datetime(2025, 6, 30, tzinfo=dt.UTC))
    parsed = FhirFlag.model_validate(resource)
    assert parsed.status == "active"
    assert (parsed.code.coding[0].system, parsed.code.coding[0].code) == (TIER_SYSTEM, "red")
    assert parsed.subject.reference == "Patient/3"
    texts = [e.valueString for e in parsed.extension]
    assert len(texts) == 2 and "MZ-1" in texts[0] and "HR-1" in texts[1]
