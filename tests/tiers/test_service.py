"""Deciding and keeping tiers on a database (SQLite and PostgreSQL): new facts, history, sweeps, plans."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.tiers.builders import (
    COMMUNITY,
    OTHER_COMMUNITY,
    STREET,
    civil_row,
    health_row,
    insurance_row,
    resident_id_of,
    run,
    seed_areas,
)
from yiyang.db import Database
from yiyang.errors import Conflict
from yiyang.sources.models import Feed
from yiyang.sources.records import ConditionFact
from yiyang.tiers import service
from yiyang.tiers.models import CarePlan, CarePlanStatus, ResidentTier, TierChange
from yiyang.tiers.rules import Tier

TODAY = dt.date(2025, 6, 30)
NOW = dt.datetime(2025, 6, 30, 1, tzinfo=dt.UTC)


def retier(database: Database, ids, trigger: str = "import", as_of: dt.date = TODAY) -> service.RetierReport:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return service.retier_residents(session, ids, trigger=trigger, as_of=as_of, now=NOW)


def sweep(database: Database, as_of: dt.date = TODAY) -> service.RetierReport:
    with database.unit_of_work() as session:
        return service.sweep_tiers(session, as_of=as_of, now=NOW)


def view(database: Database, resident_id: int) -> service.TierView:
    with database.unit_of_work() as session:
        found = service.tier_of(session, resident_id)
    assert found is not None
    return found


def history(database: Database, resident_id: int) -> list[tuple[str | None, str, str]]:
    with database.unit_of_work() as session:
        rows = service.tier_history(session, resident_id)
        return [
            (r.old_tier.value if r.old_tier else None, r.new_tier.value, r.trigger) for r in reversed(rows)
        ]


def plans(database: Database, resident_id: int) -> list[CarePlan]:
    with database.unit_of_work() as session:
        return list(reversed(service.care_plans_of(session, resident_id)))


def count(database: Database, model) -> int:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_diagnosis_import_moves_resident_to_yellow_naming_the_claim(db: Database) -> None:
    # given a resident known from the health file with no chronic diagnosis, decided green
    seed_areas(db)
    rid = resident_id_of(run(db, Feed.health, [health_row("HR-1")]), "HR-1")
    retier(db, [rid])
    assert view(db, rid).tier is Tier.green
    # when an insurance claim with a hypertension diagnosis is imported and its residents re-tiered
    report = run(db, Feed.insurance, [insurance_row("JS-900", "002", "I10", "原发性高血压", "2025-05-20")])
    assert resident_id_of(report, "JS-900") == rid
    retier(db, report.resident_ids.values())
    # then the resident is yellow, and the reason names the diagnosis, the claim and its date
    current = view(db, rid)
    assert current.tier is Tier.yellow
    reason = current.reasons[0]
    assert reason.rule.code == "condition.hypertension"
    assert (reason.fact.feed, reason.fact.source_key, reason.fact.value) == ("insurance", "JS-900", "I10")
    assert "I10" in reason.zh and "JS-900" in reason.zh and "2025-05-20" in reason.zh
    # and the history holds both decisions
    assert history(db, rid) == [(None, "green", "import"), ("green", "yellow", "import")]


def test_dementia_in_the_health_file_makes_red_and_replaces_the_green_proposal(db: Database) -> None:
    seed_areas(db)
    rid = resident_id_of(run(db, Feed.health, [health_row("HR-1")]), "HR-1")
    retier(db, [rid])
    assert [(p.tier, p.status) for p in plans(db, rid)] == [(Tier.green, CarePlanStatus.proposed)]
    # when the health file's next version carries an Alzheimer dementia diagnosis
    changed = health_row(
        "HR-1",
        observed_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
        conditions=[ConditionFact("F00.1", "阿尔茨海默病性痴呆")],
    )
    retier(db, run(db, Feed.health, [changed]).resident_ids.values())
    # then red, because of that diagnosis, with a red proposal and the green one revoked
    current = view(db, rid)
    assert current.tier is Tier.red
    assert [r.rule.code for r in current.decisive] == ["dementia.diagnosis"]
    assert current.reasons[0].fact.source_key == "HR-1"
    assert [(p.tier, p.status) for p in plans(db, rid)] == [
        (Tier.green, CarePlanStatus.revoked), (Tier.red, CarePlanStatus.proposed)
    ]  # fmt: skip
    red_plan = plans(db, rid)[-1]
    assert "home_sickbed" in red_plan.activities and "dementia_care" in red_plan.activities
    with db.unit_of_work() as session:
        change = session.get(TierChange, red_plan.tier_change_id)
        assert (change.old_tier, change.new_tier) == (Tier.green, Tier.red)


def test_capability_level_from_civil_affairs_is_a_red_fact_with_its_source(db: Database) -> None:
    seed_areas(db)
    rid = resident_id_of(
        run(db, Feed.civil, [civil_row("MZ-5", "004", "moderate", observed="2025-02-01")]), "MZ-5"
    )
    retier(db, [rid])
    reason = view(db, rid).reasons[0]
    assert reason.rule.code == "capability.disabled"
    assert (reason.fact.feed, reason.fact.source_key) == ("civil", "MZ-5")
    assert "民政 MZ-5" in reason.zh and "2025-02-01" in reason.zh


def test_second_sweep_with_nothing_new_writes_nothing(db: Database) -> None:
    seed_areas(db)
    run(
        db,
        Feed.health,
        [
            health_row("HR-1"),
            health_row(
                "HR-2", "014", name="李建国", sex="M", conditions=[ConditionFact("E11.9", "2型糖尿病")]
            ),
        ],
    )
    run(db, Feed.civil, [civil_row("MZ-1", "022", "severe", name="赵玉梅")])
    first = sweep(db)
    assert (first.residents, first.changed) == (3, 3)
    assert first.by_tier == {"green": 1, "yellow": 1, "red": 1}
    tiers_before, changes_before, plans_before = (
        count(db, ResidentTier),
        count(db, TierChange),
        count(db, CarePlan),
    )
    # when nothing changed and the sweep runs again
    second = sweep(db)
    # then every resident is unchanged and no row was written
    assert (second.residents, second.changed, second.updated, second.unchanged, second.proposed_plans) == (
        3,
        0,
        0,
        3,
        0,
    )
    assert (count(db, ResidentTier), count(db, TierChange), count(db, CarePlan)) == (
        tiers_before,
        changes_before,
        plans_before,
    )


def test_post_operative_period_expires_in_the_nightly_sweep(db: Database) -> None:
    # given a claim for surgical aftercare on 2025-06-01
    seed_areas(db)
    report = run(db, Feed.insurance, [insurance_row("JS-1", "002", "Z48.8", "手术后随诊", "2025-06-01")])
    rid = resident_id_of(report, "JS-1")
    # when the sweep runs ten days later, then 91 days later
    sweep(db, as_of=dt.date(2025, 6, 11))
    assert view(db, rid).tier is Tier.yellow
    assert view(db, rid).reasons[0].rule.code == "rehab.post_surgery"
    sweep(db, as_of=dt.date(2025, 8, 31))
    # then the rehab reason has lapsed: green, and the history says the sweep did it
    assert view(db, rid).tier is Tier.green
    assert history(db, rid) == [(None, "yellow", "sweep"), ("yellow", "green", "sweep")]


def test_new_reason_in_the_same_tier_updates_reasons_and_plan_but_not_history(db: Database) -> None:
    seed_areas(db)
    rid = resident_id_of(
        run(db, Feed.insurance, [insurance_row("JS-1", "002", "I10", "高血压", "2025-05-01")]), "JS-1"
    )
    retier(db, [rid])
    # when a diabetes claim arrives
    report = run(db, Feed.insurance, [insurance_row("JS-2", "002", "E11.9", "2型糖尿病", "2025-06-01")])
    outcome = retier(db, report.resident_ids.values())
    # then still yellow, one history row, both reasons, and a new proposal with diabetes follow-up
    assert (outcome.changed, outcome.updated) == (0, 1)
    assert [r.rule.code for r in view(db, rid).reasons] == ["condition.hypertension", "condition.diabetes"]
    assert history(db, rid) == [(None, "yellow", "import")]
    statuses = [(p.status, "diabetes_follow_up" in p.activities) for p in plans(db, rid)]
    assert statuses == [(CarePlanStatus.revoked, False), (CarePlanStatus.proposed, True)]


def test_clinician_activates_a_proposal_and_an_equal_decision_proposes_nothing_new(db: Database) -> None:
    seed_areas(db)
    rid = resident_id_of(
        run(db, Feed.insurance, [insurance_row("JS-1", "002", "I10", "高血压", "2025-05-01")]), "JS-1"
    )
    retier(db, [rid])
    proposal = plans(db, rid)[-1]
    # when a doctor accepts it
    with db.unit_of_work() as session:
        service.activate_care_plan(session, proposal.id, by="家庭医生A")
    # then it is active and cannot be accepted twice
    assert plans(db, rid)[-1].status is CarePlanStatus.active
    with db.unit_of_work() as session, pytest.raises(Conflict) as caught:
        service.activate_care_plan(session, proposal.id, by="家庭医生A")
    assert caught.value.code == "care_plan.not_proposed"
    # and a newer claim for the same condition (same plan) adds no proposal
    retier(
        db,
        run(
            db, Feed.insurance, [insurance_row("JS-2", "002", "I10", "高血压", "2025-06-10")]
        ).resident_ids.values(),
    )
    assert len(plans(db, rid)) == 1
    # while a new condition does; accepting it revokes the plan it replaces
    retier(
        db,
        run(
            db, Feed.insurance, [insurance_row("JS-3", "002", "J44.1", "慢阻肺", "2025-06-20")]
        ).resident_ids.values(),
    )
    newer = plans(db, rid)[-1]
    assert newer.status is CarePlanStatus.proposed
    with db.unit_of_work() as session:
        service.activate_care_plan(session, newer.id, by="家庭医生A")
    assert [p.status for p in plans(db, rid)] == [CarePlanStatus.revoked, CarePlanStatus.active]


def test_tier_mix_counts_streets_then_communities(db: Database) -> None:
    areas = seed_areas(db)
    run(db, Feed.health, [
        health_row("HR-1"),
        health_row("HR-2", "014", name="李建国", sex="M", conditions=[ConditionFact("I10", "高血压")]),
        health_row("HR-3", "022", name="赵玉梅", community_code=OTHER_COMMUNITY, conditions=[ConditionFact("F03", "痴呆")]),
    ])  # fmt: skip
    sweep(db)
    with db.unit_of_work() as session:
        streets = service.tier_mix(session)
        communities = {m.code: (m.red, m.yellow, m.green) for m in service.tier_mix(session, areas[STREET])}
        total, rows = service.residents_by_tier(session, community_id=areas[COMMUNITY])
        red_total, _ = service.residents_by_tier(session, tier=Tier.red)
    assert [(m.code, m.red, m.yellow, m.green) for m in streets] == [(STREET, 1, 1, 1)]
    assert communities == {COMMUNITY: (0, 1, 1), OTHER_COMMUNITY: (1, 0, 0)}
    assert total == 2 and [row.tier for _, row in rows] == [Tier.yellow, Tier.green]
    assert red_total == 1


def test_alert_hook_is_empty_while_there_are_no_alerts(db: Database) -> None:
    seed_areas(db)
    rid = resident_id_of(run(db, Feed.health, [health_row("HR-1")]), "HR-1")
    with db.unit_of_work() as session:
        assert service.recent_alert_facts(session, rid) == []
        assert service.facts_of(session, rid) == []


def test_sweep_in_several_chunks_decides_everyone_once(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # given five residents and chunks of two ids (on PostgreSQL the next chunk is read on a second connection)
    seed_areas(db)
    rows = [
        health_row(
            f"HR-{n}",
            f"{n:02d}2",
            name=f"居民{n}",
            conditions=[ConditionFact("I10", "高血压")] if n % 2 else [],
        )
        for n in range(5)
    ]
    run(db, Feed.health, rows)
    monkeypatch.setattr(service, "IDS_PER_RANGE", 2)
    # when swept
    report = sweep(db)
    # then every resident is decided exactly once
    assert (report.residents, report.changed) == (5, 5)
    assert report.by_tier == {"yellow": 2, "green": 3}
    assert count(db, ResidentTier) == 5 and count(db, TierChange) == 5


def test_a_failure_while_reading_facts_fails_the_sweep(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_areas(db)
    run(db, Feed.health, [health_row(f"HR-{n}", f"{n:02d}2", name=f"居民{n}") for n in range(5)])
    monkeypatch.setattr(service, "IDS_PER_RANGE", 2)
    real = service.load_facts
    calls = []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "load_facts", failing)
    with pytest.raises(RuntimeError, match="connection lost"):
        sweep(db)
    assert count(db, ResidentTier) == 0  # the sweep's unit of work rolled back whole
