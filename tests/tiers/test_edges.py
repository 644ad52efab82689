"""Edges of the tier engine found in review: FHIR arrays and statuses, merged records' plans, a district's
alert window, rules files with values of the wrong type, and pages whose reasons were all withheld."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.careplan import CarePlan as FhirCarePlan
from fhir.resources.R4B.flag import Flag as FhirFlag

from tests.access.world import World
from tests.tiers.builders import civil_row, health_row, run, seed_areas
from tests.tiers.test_sensor_reasons import world_with_a_fall
from yiyang.access.roles import Role
from yiyang.alerts.models import Alert, AlertState
from yiyang.app import create_app
from yiyang.assessments.models import Assessment
from yiyang.db import Database
from yiyang.errors import Invalid, NotFound
from yiyang.residents.service import merge_residents
from yiyang.sources.models import Feed
from yiyang.sources.records import ConditionFact
from yiyang.tiers import service
from yiyang.tiers.care_plans import propose_care_plan
from yiyang.tiers.fhir import care_plan_resource, tier_flag
from yiyang.tiers.models import CarePlan, CarePlanStatus
from yiyang.tiers.rules import DEFAULT_RULES, Fact, FactKind, Tier, evaluate_tier, rules_from_data

AS_OF = dt.date(2025, 6, 30)
NOW = dt.datetime(2025, 6, 30, 1, tzinfo=dt.UTC)
NO_RED_OR_YELLOW = "无红色或黄色情形"  # tier.green_reason, zh-CN


# -- FHIR ----------------------------------------------------------------------------------------


def test_a_flag_without_reasons_has_no_empty_extension_array() -> None:
    # given a green resident (no reasons), or one whose every reason the reader may not see
    resource = tier_flag(3, Tier.green, [], dt.datetime(2025, 6, 30, tzinfo=dt.UTC))
    # then the Flag carries no "extension": [] (FHIR JSON: an array is never empty), and parses
    assert "extension" not in resource
    assert FhirFlag.model_validate(resource).code.coding[0].code == "green"


def _plan(status: CarePlanStatus) -> CarePlan:
    proposal = propose_care_plan(
        evaluate_tier([Fact(FactKind.condition, "I10", dt.date(2025, 3, 1), feed="health")], as_of=AS_OF)
    )
    return CarePlan(
        id=7, resident_id=3, tier=Tier.yellow, status=status, goals=list(proposal.goals),
        activities=list(proposal.activities), addresses=list(proposal.addresses), tier_change_id=None,
        created_at=NOW, status_changed_at=NOW, status_changed_by="tier-engine",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "goal_status", "activity_status"),
    [
        (CarePlanStatus.proposed, "proposed", "not-started"),
        (CarePlanStatus.active, "active", "not-started"),
        (CarePlanStatus.revoked, "cancelled", "cancelled"),
        (CarePlanStatus.completed, "completed", "completed"),
    ],
)
def test_a_plan_s_goals_and_activities_follow_its_status(
    status: CarePlanStatus, goal_status: str, activity_status: str
) -> None:
    # when a plan is exported in each of its states
    parsed = FhirCarePlan.model_validate(care_plan_resource(_plan(status)))
    # then a revoked plan's goals are not "proposed" nor its activities "not started"
    assert {goal.lifecycleStatus for goal in parsed.contained} == {goal_status}
    assert {activity.detail.status for activity in parsed.activity} == {activity_status}


# -- a merged record's plan ------------------------------------------------------------------------


def test_a_merged_record_s_proposal_cannot_be_put_in_force(db: Database) -> None:
    # given two records of one person, each tiered with a proposed plan
    seed_areas(db)
    survivor = run(db, Feed.health, [health_row("HR-1")]).resident_ids["HR-1"]
    merged = run(
        db, Feed.civil, [civil_row("MZ-9", "014", "severe", name="王秀英", id_number=None)]
    ).resident_ids["MZ-9"]
    with db.unit_of_work() as session:
        service.retier_residents(session, [survivor, merged], as_of=AS_OF, now=NOW)
    with db.unit_of_work() as session:
        stale = service.care_plans_of(session, merged)[0]
        assert stale.status is CarePlanStatus.proposed
        stale_id = stale.id
    # and the second record is merged into the first
    with db.unit_of_work() as session:
        merge_residents(session, survivor, merged, by="registry-keeper", reason="same person")
    # when a clinician accepts the merged record's old proposal
    with db.unit_of_work() as session, pytest.raises(NotFound) as refused:
        service.activate_care_plan(session, stale_id, by="家庭医生A")
    # then it is refused (the record was merged: nobody's care works from it), and stays proposed
    assert refused.value.code == "resident.merged"
    with db.unit_of_work() as session:
        assert session.get(CarePlan, stale_id).status is CarePlanStatus.proposed


# -- a district's alert window ---------------------------------------------------------------------


def test_a_district_s_longer_alert_window_reads_alerts_older_than_ninety_days(db: Database) -> None:
    # given a district that counts alerts for half a year, and a fall 120 days ago
    seed_areas(db)
    rid = run(db, Feed.health, [health_row("HR-1")]).resident_ids["HR-1"]
    rules = rules_from_data({"rules": [{"code": "alert.recent", "within_days": 180}]})
    raised = NOW - dt.timedelta(days=120)
    with db.unit_of_work() as session:
        session.add(Alert(
            resident_id=rid, kind="fall", rule_kind="event", severity="critical", state=AlertState.open,
            open_key=f"{rid}:fall", device_id=None, detail={"event": "fall"}, tier_fact=True,
            raised_at=raised, recorded_at=raised, last_seen_at=raised, chain="fall",
        ))  # fmt: skip
    # when the resident is decided with those rules
    with db.unit_of_work() as session:
        service.retier_residents(session, [rid], as_of=AS_OF, now=NOW, rules=rules)
        view = service.tier_of(session, rid, rules)
    # then the fall counts: yellow, for the alert
    assert view is not None and view.tier is Tier.yellow
    assert [r.rule.code for r in view.reasons] == ["alert.recent"]


@pytest.mark.parametrize(("days_before", "tier"), [(10, Tier.yellow), (30, Tier.yellow), (32, Tier.green)])
def test_alerts_are_read_back_from_the_day_decided_not_from_the_machine_s_clock(
    db: Database, days_before: int, tier: Tier
) -> None:
    # given a fall some days before the day a sweep decides for (2025-06-30; the machine's clock is later)
    seed_areas(db)
    rid = run(db, Feed.health, [health_row("HR-1")]).resident_ids["HR-1"]
    raised = NOW - dt.timedelta(days=days_before)
    with db.unit_of_work() as session:
        session.add(Alert(
            resident_id=rid, kind="fall", rule_kind="event", severity="critical", state=AlertState.open,
            open_key=f"{rid}:fall", device_id=None, detail={"event": "fall"}, tier_fact=True,
            raised_at=raised, recorded_at=raised, last_seen_at=raised, chain="fall",
        ))  # fmt: skip
    # when the sweep decides for that day
    with db.unit_of_work() as session:
        service.sweep_tiers(session, as_of=AS_OF, now=NOW, rules=DEFAULT_RULES)
        view = service.tier_of(session, rid)
    # then the default 30-day window counts from that day
    assert view is not None and view.tier is tier


# -- rules files with values of the wrong type -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"rules": [{"code": "condition.copd", "label_zh": ["慢阻肺"]}]}, "label_zh"),
        ({"rules": [{"code": "new.rule", "tier": "red", "kind": "assessment", "instrument": ["ad8"],
                     "label_zh": "x", "label_en": "x"}]}, "instrument"),
        ({"rules": [{"code": "condition.copd", "standard": 44}]}, "standard"),
        ({"rules": [{"code": "condition.copd", "enabled": "false"}]}, "enabled"),
    ],
)  # fmt: skip
def test_a_field_of_the_wrong_type_is_refused_as_an_invalid_rules_file(data: object, words: str) -> None:
    # when a district's file gives a list, a number or text where the rule needs another type
    with pytest.raises(Invalid) as caught:
        rules_from_data(data)
    # then the file is refused naming the field, not failed later with a TypeError (or ignored)
    assert caught.value.code == "tier.rules.invalid"
    assert words in caught.value.message


# -- pages whose reasons were all withheld -----------------------------------------------------------


@pytest.fixture
def fall_world(sqlite_db: Database) -> World:
    return world_with_a_fall(sqlite_db)


@pytest.fixture
def client(fall_world: World) -> Iterator[TestClient]:
    with TestClient(create_app(fall_world.database)) as test_client:
        yield test_client


def test_a_yellow_resident_whose_reasons_are_withheld_is_not_said_to_have_no_yellow_fact(
    client: TestClient, fall_world: World
) -> None:
    # given a resident yellow only for a fall, and a health officer (refused sensor data)
    headers = fall_world.token(Role.health_officer)
    resident_id = fall_world.residents["in_given"]
    # when the officer opens her profile and her community's list by tier
    profile = client.get(f"/residents/{resident_id}", headers=headers)
    listing = client.get("/tiers?community=C1&tier=yellow", headers=headers)
    # then she is shown yellow, without the fall, and without the green tier's "no red or yellow fact"
    assert profile.status_code == 200 and listing.status_code == 200
    assert "tier tier-yellow" in profile.text and f"/residents/{resident_id}?" in listing.text
    assert NO_RED_OR_YELLOW not in profile.text
    assert NO_RED_OR_YELLOW not in listing.text


# -- a proposal the decision no longer calls for ---------------------------------------------------


def _ad8(session, resident_id: int, level: str, day: str) -> None:  # type: ignore[no-untyped-def]
    at = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    session.add(Assessment(
        resident_id=resident_id, instrument="ad8", answers={}, level=level, level_zh=level, level_en=level,
        flags=[], explanation=[], details={}, assessed_at=at, assessor="护士甲", recorded_by="nurse",
    ))  # fmt: skip
    session.flush()


def test_back_to_the_active_plan_s_tier_revokes_the_proposal_made_in_between(db: Database) -> None:
    # given a yellow resident (hypertension) whose yellow plan a clinician put in force
    seed_areas(db)
    rid = run(
        db, Feed.health, [health_row("HR-1", conditions=[ConditionFact("I10", "高血压")])]
    ).resident_ids["HR-1"]
    with db.unit_of_work() as session:
        service.retier_residents(session, [rid], as_of=AS_OF, now=NOW)
        yellow = service.care_plans_of(session, rid)[0]
        service.activate_care_plan(session, yellow.id, by="家庭医生A", now=NOW)
        yellow_id = yellow.id
    # and a positive AD8 then made her red, proposing the red bundle
    with db.unit_of_work() as session:
        _ad8(session, rid, "positive", "2025-06-01T09:00:00")
        service.retier_residents(session, [rid], as_of=AS_OF, now=NOW)
        red = service.care_plans_of(session, rid)[0]
        assert (red.tier, red.status) == (Tier.red, CarePlanStatus.proposed)
        red_id = red.id
    # when a later negative AD8 supersedes it (the only red fact) before anyone accepted the red plan
    with db.unit_of_work() as session:
        _ad8(session, rid, "negative", "2025-06-20T09:00:00")
        report = service.retier_residents(session, [rid], as_of=AS_OF, now=NOW)
    # then she is yellow again, her yellow plan stays in force, and the red proposal is withdrawn
    assert report.changed == 1
    with db.unit_of_work() as session:
        assert service.tier_of(session, rid).tier is Tier.yellow
        assert session.get(CarePlan, yellow_id).status is CarePlanStatus.active
        assert session.get(CarePlan, red_id).status is CarePlanStatus.revoked
