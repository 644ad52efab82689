"""Overdue lists keep clinical work to those who may see the resident's clinical data.

A chronic or mental-disorder follow-up, a care-plan activity or a referral follow-up names what the
resident is treated for (docs/access.md: the `clinical` category). A grid worker's and a civil-affairs
officer's scope has no clinical category, so without the resident's permit those rows are left out of
their overdue list, its total, the counts and the export; their own home visits stay.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.care.builders import NOW, PASSWORD, World, add_resident, bearer, load, make_world, system
from yiyang.access import service as access
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import RelationshipKind, ResidentRelationship
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.care import contracts, overdue, service
from yiyang.care.day import run_care_day
from yiyang.care.models import WorkKind
from yiyang.db import Database

LATER = NOW + dt.timedelta(days=40)  # the first chronic follow-ups were due by 1 April: overdue now
CLINICAL_TERMS = ("severe_mental", "hypertension", "plan.dementia_care", "精神", "高血压", "照护计划")


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
    officer_id: int
    alert_visit_id: int
    plan_item_id: int


def overdue_scene(database: Database) -> Scene:
    """A resident in the grid with schizophrenia and hypertension under the team's chronic package, no
    consent recorded; an alert's home visit for the grid worker and a care-plan activity for the team."""
    world = make_world(database)
    with database.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("F20", "I10"))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["chronic"], now=NOW)  # fmt: skip
        officer = access.create_user(session, "mz_officer", password=PASSWORD, display_name="民政干部")
        access.grant_role(session, officer, Role.civil_affairs_officer, area_id=world.community_id)
        visit = service.on_alert_raised(session, AlertRaised(7, rid, "no_activity_12h", "high", NOW))
        plan_item = service.create_work_item(
            session, resident_id=rid, kind=WorkKind.home_visit, programme="plan.dementia_care",
            rule="care_plan.activity", due_from=NOW.date(), due_by=NOW.date() + dt.timedelta(days=30), now=NOW,
            by="test", owner_organisation_id=world.team_id, source_type="care_plan", source_id=1,
            note="dementia_care",
        )  # fmt: skip
        ids = officer.id, visit.id, plan_item.id
    run_care_day(database, NOW)
    run_care_day(database, LATER)
    return Scene(world, rid, *ids)


def mentions_clinical(text: str) -> bool:
    return any(term in text for term in CLINICAL_TERMS)


def xlsx_text(content: bytes) -> tuple[list[tuple], str]:
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    return rows, " ".join(str(cell) for row in rows for cell in row)


def test_clinical_work_is_left_out_of_the_overdue_list_counts_and_export_for_the_civil_affairs_side(
    db: Database,
) -> None:
    # given a resident in the grid with overdue mental-disorder, hypertension and care-plan work for the
    # team, an overdue alert home visit for the grid worker, and no consent recorded
    scene = overdue_scene(db)
    world = scene.world
    with db.unit_of_work() as session:
        for user_id in (world.grid_worker_id, scene.officer_id):
            actor = load(session, user_id)
            # when the grid worker or the civil-affairs officer reads the overdue list, counts and export
            page = overdue.overdue_list(session, actor, now=LATER)
            counts = overdue.overdue_counts(session, actor, by="team", now=LATER)
            rows, text = xlsx_text(overdue.overdue_xlsx(session, actor, now=LATER))
            # then only the home visit shows, the total and the counts count only it
            assert [(r.item.id, r.item.programme) for r in page.rows] == [(scene.alert_visit_id, "alert")]
            assert page.total == 1
            assert sum(c.overdue for c in counts) == 1
            # and the workbook holds the visit and nothing naming the clinical programmes
            assert [r[0] for r in rows[1:]] == [scene.alert_visit_id] and not mentions_clinical(text)
        # while the contracted team's doctor sees all four, with their programmes
        doctor = load(session, world.doctor_id)
        page = overdue.overdue_list(session, doctor, now=LATER)
        assert page.total == 4
        assert {r.item.programme for r in page.rows} == {"alert", "severe_mental", "hypertension",
                                                         "plan.dementia_care"}  # fmt: skip
        assert sum(c.overdue for c in overdue.overdue_counts(session, doctor, by="team", now=LATER)) == 4
        _rows, text = xlsx_text(overdue.overdue_xlsx(session, doctor, now=LATER))
        assert "severe_mental" in text and "精神" in text


def test_an_explicit_permit_opens_clinical_work_to_a_station_that_may_see_clinical_data(db: Database) -> None:
    # given a care home's station staff serving the resident (its scope includes clinical, but health data
    # crossing to the civil-affairs side needs the resident's permit), and no consent recorded yet
    scene = overdue_scene(db)
    with db.unit_of_work() as session:
        staff = access.create_user(session, "station_1", password=PASSWORD, display_name="驿站")
        access.grant_role(session, staff, Role.station_staff, organisation_id=scene.world.care_home_id)
        session.add(ResidentRelationship(
            resident_id=scene.resident_id, kind=RelationshipKind.service, organisation_id=scene.world.care_home_id,
            valid_from=NOW, source_type="test", source_id=1,
        ))  # fmt: skip
        session.flush()
        staff_id = staff.id
        # when the staff member reads the overdue list, they see the home visit only
        before = overdue.overdue_list(session, load(session, staff_id), now=LATER)
        assert [r.item.programme for r in before.rows] == ["alert"] and before.total == 1
        # when the resident permits clinical data to the civil-affairs side for care
        record_consent(
            session, system(), scene.resident_id, category=DataCategory.clinical,
            recipient_class=RecipientClass.civil_affairs, purpose=Purpose.care, decision=ConsentDecision.permit,
            now=NOW,
        )  # fmt: skip
        # then the clinical work shows too
        after = overdue.overdue_list(session, load(session, staff_id), now=LATER)
        assert after.total == 4 and "severe_mental" in {r.item.programme for r in after.rows}


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    app = create_app(sqlite_db)
    app.state.clock = lambda: LATER
    with TestClient(app) as test_client:
        yield test_client


def test_grid_worker_and_officer_see_no_clinical_rows_over_http_while_the_family_doctor_does(
    client: TestClient, sqlite_db: Database
) -> None:
    # given the same scene, signed in over the API and the staff pages
    scene = overdue_scene(sqlite_db)
    for username in ("grid_1", "mz_officer"):
        headers = bearer(sqlite_db, username)
        # when they ask for the overdue list, its export, the counts and the page
        listed = client.get("/api/care/overdue", headers=headers)
        export = client.get("/api/care/overdue.xlsx", headers=headers)
        counts = client.get("/api/care/overdue/counts?by=owner", headers=headers)
        html = client.get("/care/overdue", headers=headers)
        # then the resident's home visit is there, counted once, and no clinical programme or label is
        assert listed.status_code == 200 and export.status_code == 200 and html.status_code == 200
        body = listed.json()
        assert body["total"] == 1
        assert [(i["item"]["id"], i["resident_name"]) for i in body["items"]] == [
            (scene.alert_visit_id, "张桂芳")
        ]
        assert not mentions_clinical(listed.text)
        assert [r["overdue"] for r in counts.json()] == [1]
        rows, text = xlsx_text(export.content)
        assert len(rows) == 2 and not mentions_clinical(text)
        assert "张桂芳" in html.text and not mentions_clinical(html.text)
    # and the family doctor of the contracted team still sees the clinical follow-ups
    doctor = bearer(sqlite_db, "dr_wang")
    body = client.get("/api/care/overdue", headers=doctor).json()
    assert body["total"] == 4
    assert "bphs.smd.stable" in {i["item"]["rule"] for i in body["items"]}
    _rows, text = xlsx_text(client.get("/api/care/overdue.xlsx", headers=doctor).content)
    assert "严重精神障碍" in text
    assert "严重精神障碍" in client.get("/care/overdue", headers=doctor).text
