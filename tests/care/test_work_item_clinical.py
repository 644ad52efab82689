"""One resident's work list and single work items keep clinical work to those who may see clinical data.

A hypertension follow-up names the resident's diagnosis (docs/care.md, "Clinical work in the lists"). A
grid worker's scope has no clinical category, so the resident's work list shows them the alert home visit
only, and reading the follow-up itself, or its FHIR Task, is refused (403, audited as denied); the family
doctor of the contracted team sees both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.care.builders import NOW, World, add_resident, bearer, load, make_world
from yiyang.access.break_glass import open_break_glass
from yiyang.access.models import AuditEvent
from yiyang.app import create_app
from yiyang.care import contracts, overdue, schedule, service
from yiyang.care.day import run_care_day
from yiyang.care.models import WorkItem, WorkKind
from yiyang.care.schedule import Programme
from yiyang.db import Database
from yiyang.errors import Forbidden

CLINICAL_TERMS = ("hypertension", "高血压")


@dataclass(frozen=True)
class AlertRaised:
    alert_id: int
    resident_id: int
    kind: str
    severity: str
    raised_at: dt.datetime


@dataclass(frozen=True)
class Scene:
    world: World
    resident_id: int
    visit_id: int
    follow_up_id: int


def work_scene(database: Database) -> Scene:
    """A resident in the grid worker's grid with hypertension under the team's chronic package, no consent
    recorded: an alert's home visit for the grid worker, and the day job's hypertension follow-up."""
    world = make_world(database)
    with database.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["chronic"], now=NOW)  # fmt: skip
        visit_id = service.on_alert_raised(session, AlertRaised(7, rid, "no_activity_12h", "high", NOW)).id
    run_care_day(database, NOW)
    with database.unit_of_work() as session:
        follow_up_id = session.scalar(
            select(WorkItem.id).where(WorkItem.resident_id == rid, WorkItem.programme == "hypertension")
        )
    assert follow_up_id is not None
    return Scene(world, rid, visit_id, follow_up_id)


def last_audit(database: Database) -> AuditEvent:
    with database.unit_of_work() as session:
        event = session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
        session.expunge(event)
        return event


def test_the_grid_worker_lists_and_reads_only_the_residents_non_clinical_work(db: Database) -> None:
    # given the resident's alert home visit and hypertension follow-up
    scene = work_scene(db)
    with db.unit_of_work() as session:
        worker = load(session, scene.world.grid_worker_id)
        # when the grid worker lists the resident's work
        listed = service.work_items_of(session, worker, scene.resident_id, NOW)
        # then only the home visit is listed
        assert [(i.id, i.programme) for i in listed] == [(scene.visit_id, "alert")]
        assert service.read_work_item(session, worker, scene.visit_id, NOW).id == scene.visit_id
    # when the grid worker reads the follow-up itself, then it is refused for the role
    with pytest.raises(Forbidden) as refused, db.unit_of_work() as session:
        service.read_work_item(session, load(session, scene.world.grid_worker_id), scene.follow_up_id, NOW)
    assert refused.value.code == "access.role"
    # and the attempt is audited as denied, for clinical data
    denied = last_audit(db)
    assert (denied.outcome, denied.field_group, denied.resident_id) == (
        "denied",
        "clinical",
        scene.resident_id,
    )
    # while the contracted team's doctor lists and reads both
    with db.unit_of_work() as session:
        doctor = load(session, scene.world.doctor_id)
        listed = service.work_items_of(session, doctor, scene.resident_id, NOW)
        assert {i.id for i in listed} == {scene.visit_id, scene.follow_up_id}
        assert service.read_work_item(session, doctor, scene.follow_up_id, NOW).programme == "hypertension"


def test_clinical_work_cannot_be_cancelled_or_closed_with_care_services_alone(db: Database) -> None:
    # given a care-plan activity (a home visit naming the plan) that the grid worker somehow owns
    scene = work_scene(db)
    with db.unit_of_work() as session:
        plan_visit_id = service.create_work_item(
            session, resident_id=scene.resident_id, kind=WorkKind.home_visit, programme="plan.dementia_care",
            rule="care_plan.activity", due_from=NOW.date(), due_by=NOW.date() + dt.timedelta(days=30), now=NOW,
            by="test", owner_user_id=scene.world.grid_worker_id, source_type="care_plan", source_id=1,
        ).id  # fmt: skip
    for write in (
        lambda session, worker: service.cancel_work_item(
            session, worker, plan_visit_id, reason="搬走", now=NOW
        ),
        lambda session, worker: service.record_outcome(
            session, worker, plan_visit_id, service.Outcome(findings="在家"), now=NOW
        ),
    ):
        # when the grid worker cancels it or records a findings-only outcome
        with pytest.raises(Forbidden) as refused, db.unit_of_work() as session:
            write(session, load(session, scene.world.grid_worker_id))
        # then it is refused as clinical data, and the item stays open
        assert refused.value.code == "access.role"
        assert last_audit(db).field_group == "clinical"
    with db.unit_of_work() as session:
        assert session.get(WorkItem, plan_visit_id).status.value in ("due", "scheduled")


def test_the_python_test_of_clinical_work_agrees_with_the_overdue_lists_sql(db: Database) -> None:
    # given a work item of every programme the schedule and care plans use, from every source of work
    programmes = {p.value for p in Programme} | {work[1] for work in service.PLAN_ACTIVITY_WORK.values()}
    sources = (None, "contract", "alert", "care_plan", "referral", "work_item")
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        items = [
            service.create_work_item(
                session,
                resident_id=rid,
                kind=WorkKind.home_visit,
                programme=programme,
                rule="test",
                due_from=NOW.date(),
                due_by=NOW.date(),
                now=NOW,
                by="test",
                source_type=source,
                source_id=None if source is None else 1,
            )  # fmt: skip
            for programme in sorted(programmes)
            for source in sources
        ]
        # when both tests judge them
        in_python = {i.id for i in items if schedule.is_clinical_work(i.programme, i.source_type)}
        in_sql = set(
            session.scalars(select(WorkItem.id).where(WorkItem.resident_id == rid, overdue.clinical_work()))
        )
        # then they pick the same items, and some items are not clinical
        assert in_python == in_sql
        assert 0 < len(in_sql) < len(items)


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    app = create_app(sqlite_db)
    app.state.clock = lambda: NOW
    with TestClient(app) as test_client:
        yield test_client


def test_over_http_the_grid_worker_gets_the_visit_only_and_the_family_doctor_gets_the_follow_up(
    client: TestClient, sqlite_db: Database
) -> None:
    # given the scene, signed in over the API
    scene = work_scene(sqlite_db)
    worker = bearer(sqlite_db, "grid_1")
    # when the grid worker lists the resident's work
    listed = client.get(f"/api/residents/{scene.resident_id}/work-items", headers=worker)
    # then only the home visit is there, and nothing names the diagnosis
    assert listed.status_code == 200
    assert [i["id"] for i in listed.json()] == [scene.visit_id]
    assert not any(term in listed.text for term in CLINICAL_TERMS)
    for path in (
        f"/api/care/work-items/{scene.follow_up_id}",
        f"/api/care/work-items/{scene.follow_up_id}/fhir",
    ):
        # when the grid worker reads the follow-up or its FHIR Task
        response = client.get(path, headers=worker)
        # then it is refused, nothing of it is returned, and the attempt is audited as denied
        assert response.status_code == 403
        assert response.json()["code"] == "access.role"
        assert not any(term in response.text for term in CLINICAL_TERMS)
        denied = last_audit(sqlite_db)
        assert (denied.outcome, denied.resource_type, denied.field_group) == (
            "denied",
            "work_item",
            "clinical",
        )
    # while the family doctor of the contracted team gets both, and the follow-up as a Task
    doctor = bearer(sqlite_db, "dr_wang")
    listed = client.get(f"/api/residents/{scene.resident_id}/work-items", headers=doctor)
    assert {i["id"] for i in listed.json()} == {scene.visit_id, scene.follow_up_id}
    item = client.get(f"/api/care/work-items/{scene.follow_up_id}", headers=doctor)
    assert item.status_code == 200 and item.json()["programme"] == "hypertension"
    task = client.get(f"/api/care/work-items/{scene.follow_up_id}/fhir", headers=doctor)
    assert task.status_code == 200 and task.json()["resourceType"] == "Task"
    assert last_audit(sqlite_db).outcome == "allowed"


def test_a_clinician_who_broke_the_glass_lists_the_residents_clinical_work_audited(db: Database) -> None:
    # given the scene, and the doctor of another team, for whom the resident is outside scope
    scene = work_scene(db)
    with pytest.raises(Forbidden), db.unit_of_work() as session:
        service.work_items_of(session, load(session, scene.world.other_doctor_id), scene.resident_id, NOW)
    # when she breaks the glass for the resident
    with db.unit_of_work() as session:
        opened = open_break_glass(
            session, load(session, scene.world.other_doctor_id), scene.resident_id,
            "夜间跌倒呼救，签约医生联系不上 (night fall call)", NOW,
        ).id  # fmt: skip
    # then the resident's work list shows the follow-up too, as reading a single item would
    with db.unit_of_work() as session:
        doctor = load(session, scene.world.other_doctor_id)
        listed = service.work_items_of(session, doctor, scene.resident_id, NOW)
        assert {i.id for i in listed} == {scene.visit_id, scene.follow_up_id}
    # and the clinical part of the list is audited as a use of the glass
    shown = last_audit(db)
    assert (shown.action, shown.outcome, shown.field_group, shown.resident_id) == (
        "break_glass", "allowed", "clinical", scene.resident_id,
    )  # fmt: skip
    assert shown.reason.startswith(f"break-glass #{opened}")
