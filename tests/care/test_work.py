"""Work items on a fake clock: the day job, outcomes and what they schedule, escalation, hand-overs."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import pytest
from fhir.resources.R4B.task import Task
from openpyxl import load_workbook
from sqlalchemy import func, select

from tests.care.builders import NOW, actor_named, add_resident, load, make_world
from yiyang import events
from yiyang.care import contracts, overdue, referrals, service
from yiyang.care.day import run_care_day
from yiyang.care.fhir import work_item_task
from yiyang.care.models import Referral, ReferralStatus, WorkItem, WorkKind, WorkStatus
from yiyang.care.schedule import VisitOutcome
from yiyang.db import Database
from yiyang.errors import Conflict, Forbidden, Invalid
from yiyang.tiers.models import CarePlan, CarePlanStatus
from yiyang.tiers.rules import Tier


def days(n: int) -> dt.datetime:
    return NOW + dt.timedelta(days=n)


def items(session, resident_id: int, programme: str | None = None) -> list[WorkItem]:  # type: ignore[no-untyped-def]
    stmt = select(WorkItem).where(WorkItem.resident_id == resident_id)
    if programme:
        stmt = stmt.where(WorkItem.programme == programme)
    return list(session.execute(stmt.order_by(WorkItem.id)).scalars())


def contracted(db: Database, *, conditions: tuple[str, ...] = ("I10",), packages: tuple[str, ...] = ("basic", "chronic"),
               born: dt.date = dt.date(1950, 5, 1)):  # type: ignore[no-untyped-def]  # fmt: skip
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=conditions, born=born)
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=list(packages), now=NOW)  # fmt: skip
    return world, rid


def test_the_day_job_generates_what_the_packages_promise_once(db: Database) -> None:
    # given a 75-year-old with hypertension under the basic and chronic packages
    world, rid = contracted(db)
    report = run_care_day(db, NOW)
    with db.unit_of_work() as session:
        got = {(i.programme, i.kind, i.status, i.due_by) for i in items(session, rid)}
        # then a first hypertension follow-up within 30 days and this year's health check, both for the team
        assert got == {
            ("hypertension", WorkKind.follow_up, WorkStatus.due, dt.date(2026, 4, 1)),
            ("elderly_check", WorkKind.health_check, WorkStatus.due, dt.date(2026, 12, 31)),
        }
        assert all(i.owner_organisation_id == world.team_id for i in items(session, rid))
    assert report.created == 2
    # and the next day generates nothing new: open work is not duplicated
    assert run_care_day(db, days(1)).created == 0


def test_no_diagnosis_no_chronic_follow_up_and_under_65_no_annual_check(db: Database) -> None:
    _world, rid = contracted(db, conditions=(), born=dt.date(1970, 1, 1))
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        assert items(session, rid) == []


def record(
    db: Database, actor_id: int, item_id: int, at: dt.datetime, **visit: object
) -> service.OutcomeResult:
    refer_to = visit.pop("refer_to", None)
    with db.unit_of_work() as session:
        return service.record_outcome(
            session, load(session, actor_id), item_id,
            service.Outcome(visit=VisitOutcome(**visit), refer_to_organisation_id=refer_to),  # type: ignore[arg-type]
            now=at,
        )  # fmt: skip


def test_the_follow_up_chain_on_a_fake_clock(db: Database) -> None:
    world, rid = contracted(db, born=dt.date(1962, 1, 1))  # 64: the 140/90 limit applies
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        (first,) = items(session, rid, "hypertension")
    # an unsatisfactory visit: a follow-up due within 14 days
    result = record(db, world.doctor_id, first.id, days(3), systolic=152, diastolic=92)
    assert result.visit_class == "unsatisfactory" and not result.referral_required
    (second,) = result.next_items
    assert (second.kind, second.due_by, second.rule) == (
        WorkKind.follow_up,
        dt.date(2026, 3, 19),
        "bphs.htn.unsatisfactory",
    )
    # a second unsatisfactory visit in a row: a referral and a 2-week referral follow-up
    result = record(
        db, world.doctor_id, second.id, days(14), systolic=148, diastolic=94, refer_to=world.hospital_id
    )
    assert result.referral_required and result.referral_id is not None
    (third,) = result.next_items
    assert third.kind is WorkKind.referral_follow_up and third.due_by == dt.date(2026, 3, 30)
    with db.unit_of_work() as session:
        referral = session.get(Referral, result.referral_id)
        assert referral.status is ReferralStatus.sent and referral.to_organisation_id == world.hospital_id
        assert referral.from_organisation_id == world.team_id
        assert [c["code"] for c in referral.summary["conditions"]] == ["I10"]
    # controlled at the referral follow-up: back to the quarterly cadence
    result = record(db, world.doctor_id, third.id, days(20), systolic=128, diastolic=80)
    (fourth,) = result.next_items
    assert fourth.rule == "bphs.htn.quarterly" and fourth.due_by == dt.date(2026, 3, 22) + dt.timedelta(
        days=90
    )
    with db.unit_of_work() as session:
        assert [h.action for h in service.work_item_history(session, first.id)] == [
            "done"
        ]  # generated in bulk


def test_an_urgent_reading_schedules_the_urgent_referral_follow_up(db: Database) -> None:
    world, rid = contracted(db)
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        (first,) = items(session, rid, "hypertension")
    result = record(db, world.doctor_id, first.id, NOW, systolic=186, diastolic=104)
    assert result.visit_class == "urgent" and result.referral_required and result.referral_id is None
    (step,) = result.next_items
    assert step.rule == "bphs.htn.urgent_referral" and step.due_by == dt.date(2026, 3, 16)


def test_a_closed_item_cannot_be_closed_again_and_strangers_cannot_close_it(db: Database) -> None:
    world, rid = contracted(db)
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        (first,) = items(session, rid, "hypertension")
    with pytest.raises(Forbidden):
        record(db, world.other_doctor_id, first.id, NOW, systolic=120, diastolic=80)
    with db.unit_of_work() as session:
        assert session.get(WorkItem, first.id).status is WorkStatus.due  # nothing changed
    record(db, world.doctor_id, first.id, NOW, systolic=120, diastolic=80)
    with pytest.raises(Conflict):
        record(db, world.doctor_id, first.id, NOW, systolic=120, diastolic=80)


def test_overdue_marking_and_escalation_to_the_lead_then_the_centre(db: Database) -> None:
    world, rid = contracted(db)
    run_care_day(db, NOW)  # hypertension follow-up due by 1 April
    assert run_care_day(db, dt.datetime(2026, 4, 1, 1, tzinfo=dt.UTC)).became_overdue == 0
    report = run_care_day(db, dt.datetime(2026, 4, 2, 1, tzinfo=dt.UTC))
    assert report.became_overdue == 1 and report.escalated_to_lead == 0
    report = run_care_day(db, dt.datetime(2026, 4, 8, 1, tzinfo=dt.UTC))
    assert (report.escalated_to_lead, report.escalated_to_centre) == (1, 0)
    with db.unit_of_work() as session:
        (item,) = items(session, rid, "hypertension")
        assert (item.status, item.escalation_level, item.escalated_to_user_id) == (
            WorkStatus.overdue,
            1,
            world.lead_id,
        )
    report = run_care_day(db, dt.datetime(2026, 4, 22, 1, tzinfo=dt.UTC))
    assert (report.escalated_to_lead, report.escalated_to_centre) == (0, 1)
    with db.unit_of_work() as session:
        (item,) = items(session, rid, "hypertension")
        assert (item.escalation_level, item.escalated_to_organisation_id) == (2, world.centre_id)
        actions = [h.action for h in service.work_item_history(session, item.id)]
        assert actions == [
            "overdue",
            "escalated",
            "escalated",
        ]  # created in bulk: the history starts at overdue
        # the lead now sees it in "my work"
        mine = overdue.my_work(session, load(session, world.lead_id), now=days(60))
        assert [i.id for i, _ in mine if i.programme == "hypertension"] == [item.id]


def test_the_overdue_list_counts_and_exports_to_xlsx(db: Database) -> None:
    world, rid = contracted(db)
    run_care_day(db, NOW)
    run_care_day(db, dt.datetime(2026, 4, 10, 1, tzinfo=dt.UTC))
    later = dt.datetime(2026, 4, 10, 2, tzinfo=dt.UTC)
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        page = overdue.overdue_list(session, doctor, now=later, team_id=world.team_id)
        assert (
            page.total == 1
            and page.rows[0].days_overdue == 9
            and page.rows[0].community_id == world.community_id
        )
        assert (
            overdue.overdue_list(session, doctor, now=later, community_id=world.other_community_id).total == 0
        )
        counts = overdue.overdue_counts(session, doctor, by="community", now=later)
        assert [(c.label, c.overdue, c.escalated) for c in counts] == [("甲社区", 1, 1)]
        content = overdue.overdue_xlsx(session, doctor, now=later, team_id=world.team_id)
    sheet = load_workbook(io.BytesIO(content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "任务编号 (item)" and len(rows) == 2
    assert rows[1][1:5] == (rid, "张桂芳", "甲社区", "follow_up") and rows[1][6] == "高血压季度随访"
    assert rows[1][8] == 9 and rows[1][11] == "王医生团队"


@dataclass(frozen=True)
class AlertRaised:
    alert_id: int
    resident_id: int
    kind: str
    severity: str
    raised_at: dt.datetime


def test_an_alert_becomes_a_home_visit_for_the_grid_worker_and_its_outcome_is_published(db: Database) -> None:
    world, rid = contracted(db)
    seen: list[events.WorkItemCompleted] = []
    events.subscribe(events.WorkItemCompleted, lambda _s, e: seen.append(e))
    alert = AlertRaised(41, rid, "no_activity_12h", "high", NOW)
    with db.unit_of_work() as session:
        visit = service.on_alert_raised(session, alert)
        again = service.on_alert_raised(session, alert)  # delivered twice: one visit
        assert again.id == visit.id
        assert (visit.kind, visit.owner_user_id, visit.due_by, visit.source_type, visit.source_id) == (
            WorkKind.home_visit, world.grid_worker_id, NOW.date(), "alert", 41,
        )  # fmt: skip
        grid_worker = load(session, world.grid_worker_id)
        service.record_outcome(
            session, grid_worker, visit.id, service.Outcome(findings="在家，安好"), now=days(0)
        )
    (event,) = seen
    assert (event.source_type, event.source_id, event.status) == ("alert", 41, "done")
    assert event.outcome["findings"] == "在家，安好"


def test_an_alert_without_a_grid_worker_goes_to_the_team(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, grid=False)
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic"], now=NOW)  # fmt: skip
        visit = service.on_alert_raised(session, AlertRaised(7, rid, "fall", "low", NOW))
        assert visit.owner_user_id is None and visit.owner_organisation_id == world.team_id
        assert visit.due_by == NOW.date() + dt.timedelta(days=1)


def test_alerts_raised_together_become_the_same_visits_as_one_by_one(db: Database) -> None:
    # given a resident in a grid with a grid worker and one outside any grid, under the team
    world, in_grid = contracted(db)
    with db.unit_of_work() as session:
        outside = add_resident(session, world, grid=False)
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=outside, team_id=world.team_id,
                                packages=["basic"], now=NOW)  # fmt: skip
    raised = [
        AlertRaised(51, in_grid, "spo2_low", "high", NOW),
        AlertRaised(52, outside, "fall", "low", NOW),
        AlertRaised(51, in_grid, "spo2_low", "high", NOW),  # delivered twice in one batch
        AlertRaised(53, 999_999, "sos", "high", NOW),  # a resident the registry does not have
    ]
    # when the batch is handed over at once
    with db.unit_of_work() as session:
        first, second, again, unknown = service.on_alerts_raised(session, raised)
        # then each alert has one visit, owned as one by one would own it
        assert again is first and unknown is None
        assert (first.owner_user_id, first.owner_organisation_id, first.due_by) == (
            world.grid_worker_id, None, NOW.date(),
        )  # fmt: skip
        assert (second.owner_user_id, second.owner_organisation_id, second.due_by) == (
            None, world.team_id, NOW.date() + dt.timedelta(days=1),
        )  # fmt: skip
        assert [h.action for h in service.work_item_history(session, first.id)] == ["created"]
        # and handing one of them over again finds the same visit
        assert service.on_alert_raised(session, raised[1]).id == second.id
        count = session.scalar(
            select(func.count()).select_from(WorkItem).where(WorkItem.source_type == "alert")
        )
        assert count == 2


def test_accepting_a_care_plan_turns_its_activities_into_work(db: Database) -> None:
    world, rid = contracted(db)
    with db.unit_of_work() as session:
        plan = CarePlan(resident_id=rid, tier=Tier.yellow, status=CarePlanStatus.proposed, goals=["chronic_control"],
                        activities=["health_butler", "remote_monitoring", "hypertension_follow_up"], addresses=[])  # fmt: skip
        session.add(plan)
        session.flush()
        created = service.accept_care_plan(session, load(session, world.doctor_id), plan.id, now=NOW)
        assert plan.status is CarePlanStatus.active
        assert [(i.kind, i.programme) for i in created] == [
            (WorkKind.follow_up, "plan.health_butler"), (WorkKind.service_delivery, "plan.remote_monitoring"),
            (WorkKind.follow_up, "hypertension"),
        ]  # fmt: skip
        assert all(i.source_type == "care_plan" and i.owner_organisation_id == world.team_id for i in created)
    # the day job sees the open hypertension follow-up and does not add another
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        assert len(items(session, rid, "hypertension")) == 1


def test_a_work_item_exports_as_a_valid_fhir_task(db: Database) -> None:
    world, rid = contracted(db)
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        (first,) = items(session, rid, "hypertension")
    result = record(db, world.doctor_id, first.id, days(2), systolic=150, diastolic=95)
    task = Task.model_validate(work_item_task(result.item))
    assert task.status == "completed" and task.for_fhir.reference == f"Patient/{rid}"
    assert {o.type.text: o.valueInteger for o in task.output if o.valueInteger is not None}["systolic"] == 150
    open_task = work_item_task(result.next_items[0])
    assert (
        open_task["status"] == "ready" and open_task["owner"]["reference"] == f"Organization/{world.team_id}"
    )
    assert open_task["executionPeriod"]["end"] == "2026-03-18"


def test_a_returned_referral_schedules_the_community_follow_up(db: Database) -> None:
    world, rid = contracted(db)
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        referral = referrals.send_referral(session, doctor, resident_id=rid, to_organisation_id=world.hospital_id,
                                           reason="血压控制不佳 (BP not controlled)", now=NOW)  # fmt: skip
        receiver = actor_named(session, "hospital_doc")
        with pytest.raises(Forbidden):
            referrals.accept_referral(session, doctor, referral.id, now=NOW)
        referrals.accept_referral(session, receiver, referral.id, now=days(1))
        referrals.return_referral(session, receiver, referral.id, note="调整用药后下转 (back after a change of drugs)",
                                  now=days(5))  # fmt: skip
        assert referral.status is ReferralStatus.returned
        (follow_up,) = items(session, rid, "referral")
        assert (follow_up.kind, follow_up.owner_organisation_id, follow_up.due_by, follow_up.rule) == (
            WorkKind.referral_follow_up, world.team_id, dt.date(2026, 3, 21), "referral.returned",
        )  # fmt: skip
        with pytest.raises(Conflict):
            referrals.complete_referral(session, receiver, referral.id, now=days(6))


def test_the_day_job_dates_the_next_visit_from_the_last_completed_one(db: Database) -> None:
    # given a hypertension follow-up completed on 10 January (Beijing time, late in the UTC evening before)
    world, rid = contracted(db, packages=("chronic",))
    with db.unit_of_work() as session:
        session.add(WorkItem(
            resident_id=rid, kind=WorkKind.follow_up, programme="hypertension", status=WorkStatus.done,
            rule="bphs.htn.quarterly", owner_organisation_id=world.team_id, due_from=dt.date(2026, 1, 1),
            due_by=dt.date(2026, 1, 15), completed_at=dt.datetime(2026, 1, 9, 17, 30, tzinfo=dt.UTC),
        ))  # fmt: skip
    # when the day job runs, then the next one is due 90 days after the visit, its window opening 2 weeks before
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        (_done, new) = items(session, rid, "hypertension")
        assert (new.due_from, new.due_by, new.status) == (
            dt.date(2026, 3, 27),
            dt.date(2026, 4, 10),
            WorkStatus.scheduled,
        )


def test_cancelling_keeps_history_and_a_mental_follow_up_needs_its_risk_grade(db: Database) -> None:
    world, rid = contracted(db, conditions=("I10", "F20.0"))
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        (mental,) = items(session, rid, "severe_mental")
        doctor = load(session, world.doctor_id)
        with pytest.raises(Invalid):
            service.record_outcome(session, doctor, mental.id, service.Outcome(), now=NOW)
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        result = service.record_outcome(
            session, doctor, mental.id, service.Outcome(visit=VisitOutcome(risk_grade=1)), now=NOW
        )
        assert result.next_items[0].rule == "bphs.smd.basically_stable"
        (htn,) = items(session, rid, "hypertension")
        service.cancel_work_item(session, doctor, htn.id, reason="已迁出 (moved away)", now=NOW)
        assert htn.status is WorkStatus.cancelled
        assert [h.action for h in service.work_item_history(session, htn.id)] == ["cancelled"]


def test_the_xlsx_export_is_audited(db: Database) -> None:
    from yiyang.access.models import AuditEvent

    world, _rid = contracted(db)
    with db.unit_of_work() as session:
        overdue.overdue_xlsx(session, load(session, world.doctor_id), now=NOW)
        exports = session.scalars(select(AuditEvent).where(AuditEvent.action == "export")).all()
        assert [(e.resource_type, e.user_id) for e in exports] == [("work_item.overdue", world.doctor_id)]


def test_a_grid_workers_overdue_visit_escalates_to_the_residents_team_lead(db: Database) -> None:
    world, rid = contracted(db, packages=("basic",))
    with db.unit_of_work() as session:
        visit = service.on_alert_raised(session, AlertRaised(9, rid, "no_activity_12h", "high", NOW))
        assert visit.owner_user_id == world.grid_worker_id and visit.owner_organisation_id is None
    run_care_day(db, days(30))
    with db.unit_of_work() as session:
        item = session.get(WorkItem, visit.id)
        assert (item.status, item.escalation_level) == (WorkStatus.overdue, 2)
        assert (item.escalated_to_user_id, item.escalated_to_organisation_id) == (
            world.lead_id,
            world.centre_id,
        )


def test_the_receiver_of_a_referral_has_scope_from_acceptance_until_it_returns_the_resident(
    db: Database,
) -> None:
    from yiyang.access.policy import DataCategory, authorize

    world, rid = contracted(db)
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        receiver = actor_named(session, "hospital_doc")
        referral = referrals.send_referral(session, doctor, resident_id=rid, to_organisation_id=world.hospital_id,
                                           reason="血压控制不佳 (BP not controlled)", now=NOW)  # fmt: skip
        # before accepting, the hospital does not reach the resident
        with pytest.raises(Forbidden):
            referrals.read_referral(session, receiver, referral.id, days(1))
        referrals.accept_referral(session, receiver, referral.id, now=days(1))
        # from acceptance it does
        assert referrals.read_referral(session, receiver, referral.id, days(2)).id == referral.id
        referrals.return_referral(session, receiver, referral.id, note="下转 (back)", now=days(5))
        # and once the resident is returned, no longer
        with pytest.raises(Forbidden):
            authorize(session, receiver, rid, category=DataCategory.clinical, what="test", now=days(6))


def test_a_clinician_who_is_also_station_staff_accepts_a_referral_as_a_clinician(db: Database) -> None:
    from yiyang.access import service as access
    from yiyang.access.models import ResidentRelationship
    from yiyang.access.roles import Role

    # given a care home whose one person is station staff first and a nurse second
    world, rid = contracted(db)
    with db.unit_of_work() as session:
        person = access.create_user(session, "home_nurse")
        access.grant_role(session, person, Role.station_staff, organisation_id=world.care_home_id)
        access.grant_role(session, person, Role.nurse, organisation_id=world.care_home_id)
        doctor = load(session, world.doctor_id)
        referral = referrals.send_referral(session, doctor, resident_id=rid, to_organisation_id=world.care_home_id,
                                           reason="术后康复 (rehabilitation)", now=NOW)  # fmt: skip
        # when they accept it
        referrals.accept_referral(session, actor_named(session, "home_nurse"), referral.id, now=days(1))
        # then the home takes the resident under a clinician's relationship, not the station's
        kinds = session.scalars(
            select(ResidentRelationship.kind).where(
                ResidentRelationship.source_type == "referral", ResidentRelationship.source_id == referral.id
            )
        ).all()
        assert [str(kind) for kind in kinds] == ["contract"]
