"""The care API and pages over HTTP, signed in, on a fake clock."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.task import Task
from openpyxl import load_workbook

from tests.care.builders import NOW, World, add_resident, bearer, make_world
from yiyang.app import create_app
from yiyang.db import Database


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(sqlite_db: Database, clock: Clock) -> Iterator[TestClient]:
    app = create_app(sqlite_db)
    app.state.clock = clock
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return make_world(sqlite_db)


def test_sign_read_renew_and_terminate_through_the_api(
    client: TestClient, sqlite_db: Database, world: World
) -> None:
    with sqlite_db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
    doctor = bearer(sqlite_db, "dr_wang")
    body = {"resident_id": rid, "team_id": world.team_id, "packages": ["basic", "chronic"]}
    assert client.post("/api/care/contracts", json=body).status_code == 401
    signed = client.post("/api/care/contracts", json=body, headers=doctor)
    assert signed.status_code == 201, signed.text
    contract = signed.json()
    assert contract["status"] == "in_force" and [h["action"] for h in contract["history"]] == ["signed"]
    assert (
        client.post("/api/care/contracts", json=body, headers=doctor).json()["code"] == "care.contract.exists"
    )
    unknown = client.post("/api/care/contracts", json={**body, "packages": ["gold"]}, headers=doctor)
    assert unknown.status_code == 422
    team = client.get(f"/api/care/teams/{world.team_id}", headers=doctor).json()
    assert (team["panel_size"], team["panel_limit"]) == (1, 3)
    renewed = client.post(f"/api/care/contracts/{contract['id']}/renew", json={}, headers=doctor).json()
    assert renewed["renewed_from_id"] == contract["id"]
    listed = client.get(f"/api/residents/{rid}/contracts", headers=doctor).json()
    assert [c["status"] for c in listed] == ["in_force", "renewed"]
    ended = client.post(
        f"/api/care/contracts/{renewed['id']}/terminate", json={"reason": "本人申请"}, headers=doctor
    )
    assert ended.json()["status"] == "terminated"
    # terminated, the team no longer reaches the resident (the renewed contract's row ended with it)
    refused = client.get(f"/api/residents/{rid}/contracts", headers=doctor)
    assert (refused.status_code, refused.json()["code"]) == (403, "access.scope")
    assert client.get("/api/care/contracts/999", headers=doctor).status_code == 404


def test_another_team_cannot_terminate_and_nothing_changes(
    client: TestClient, sqlite_db: Database, world: World
) -> None:
    with sqlite_db.unit_of_work() as session:
        rid = add_resident(session, world)
    contract = client.post(
        "/api/care/contracts", json={"resident_id": rid, "team_id": world.team_id, "packages": ["basic"]},
        headers=bearer(sqlite_db, "dr_wang"),
    ).json()  # fmt: skip
    refused = client.post(
        f"/api/care/contracts/{contract['id']}/terminate",
        json={"reason": "x"},
        headers=bearer(sqlite_db, "dr_li"),
    )
    assert refused.status_code == 403 and refused.json()["code"] == "care.team_role"
    assert (
        client.get(f"/api/care/contracts/{contract['id']}", headers=bearer(sqlite_db, "dr_wang")).json()[
            "status"
        ]
        == "in_force"
    )


def test_work_outcome_overdue_list_export_and_pages(
    client: TestClient, sqlite_db: Database, world: World, clock: Clock
) -> None:
    from yiyang.care.day import run_care_day

    with sqlite_db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10", "E11"))
    doctor = bearer(sqlite_db, "dr_wang")
    client.post("/api/care/contracts", json={"resident_id": rid, "team_id": world.team_id, "packages": ["chronic"]},
                headers=doctor)  # fmt: skip
    run_care_day(sqlite_db, NOW)
    mine = client.get("/api/care/work-items/mine", headers=doctor).json()
    assert sorted(i["programme"] for i in mine) == ["diabetes", "hypertension"]
    htn = next(i for i in mine if i["programme"] == "hypertension")
    assert htn["rule_zh"] == "高血压季度随访"
    done = client.post(
        f"/api/care/work-items/{htn['id']}/outcome", json={"systolic": 158, "diastolic": 96}, headers=doctor
    )
    assert done.status_code == 200, done.text
    assert (
        done.json()["visit_class"] == "unsatisfactory"
        and done.json()["next_items"][0]["due_by"] == "2026-03-16"
    )
    bad = client.post(f"/api/care/work-items/{htn['id']}/outcome", json={"systolic": 9999}, headers=doctor)
    assert bad.status_code == 422
    task = client.get(f"/api/care/work-items/{htn['id']}/fhir", headers=doctor).json()
    assert Task.model_validate(task).status == "completed"
    detail = client.get(f"/api/care/work-items/{htn['id']}", headers=doctor).json()
    assert [h["action"] for h in detail["history"]] == ["done"] and detail["outcome"]["systolic"] == 158
    # six weeks later the diabetes follow-up is overdue
    run_care_day(sqlite_db, NOW + dt.timedelta(days=42))
    clock.now = NOW + dt.timedelta(days=42)
    page = client.get(f"/api/care/overdue?team_id={world.team_id}", headers=doctor).json()
    assert page["total"] == 2 and {i["item"]["programme"] for i in page["items"]} == {
        "diabetes",
        "hypertension",
    }
    counts = client.get("/api/care/overdue/counts?by=team", headers=doctor).json()
    assert counts == [{"key": world.team_id, "label": "王医生团队", "overdue": 2, "escalated": 2}]
    export = client.get("/api/care/overdue.xlsx", headers=doctor)
    assert export.headers["content-type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
    assert len(rows) == 3 and {r[5] for r in rows[1:]} == {"diabetes", "hypertension"}
    html = client.get("/care/overdue", headers=doctor)
    assert (
        html.status_code == 200 and "逾期清单" in html.text and "<svg" in html.text and "甲社区" in html.text
    )
    english = client.get("/care/my-work?lang=en", headers=doctor)
    assert english.status_code == 200 and "My work" in english.text and "family doctor" in english.text
    # without a session the page sends the person to sign in, and back here afterwards
    anonymous = client.get("/care/my-work", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/care/my-work"


def test_referral_round_trip_over_http(client: TestClient, sqlite_db: Database, world: World) -> None:
    with sqlite_db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
    doctor, hospital = bearer(sqlite_db, "dr_wang"), bearer(sqlite_db, "hospital_doc")
    client.post("/api/care/contracts", json={"resident_id": rid, "team_id": world.team_id, "packages": ["basic"]},
                headers=doctor)  # fmt: skip
    sent = client.post(
        "/api/care/referrals", headers=doctor,
        json={"resident_id": rid, "to_organisation_id": world.hospital_id, "reason": "血压≥180/110", "urgent": True},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    referral = sent.json()
    assert referral["status"] == "sent" and referral["summary"]["conditions"][0]["code"] == "I10"
    # an urgent referral is followed up within 2 weeks by the sending team
    work = client.get(f"/api/residents/{rid}/work-items?open_only=true", headers=doctor).json()
    assert [(w["kind"], w["due_by"], w["rule"]) for w in work] == [
        ("referral_follow_up", "2026-03-16", "referral.urgent")
    ]
    assert client.post(f"/api/care/referrals/{referral['id']}/accept", headers=doctor).status_code == 403
    assert (
        client.post(f"/api/care/referrals/{referral['id']}/accept", headers=hospital).json()["status"]
        == "accepted"
    )
    done = client.post(
        f"/api/care/referrals/{referral['id']}/complete", json={"note": "住院治疗"}, headers=hospital
    )
    assert done.json()["status"] == "completed"
    again = client.post(f"/api/care/referrals/{referral['id']}/return", json={"note": "x"}, headers=hospital)
    assert again.status_code == 409


def test_an_administrator_creates_a_team(client: TestClient, sqlite_db: Database, world: World) -> None:
    admin = bearer(sqlite_db, "admin")
    body = {"code": "FDT-3", "name": "赵医生团队", "health_centre_id": world.centre_id, "panel_limit": 600,
            "specialists": [{"name": "心内科专家", "specialty": "cardiology", "organisation_id": world.hospital_id}]}  # fmt: skip
    created = client.post("/api/care/teams", json=body, headers=admin)
    assert created.status_code == 201 and created.json()["specialists"][0]["specialty"] == "cardiology"
    assert client.post("/api/care/teams", json=body, headers=admin).status_code == 409
    assert (
        client.post(
            "/api/care/teams", json={**body, "code": "FDT-4"}, headers=bearer(sqlite_db, "dr_wang")
        ).status_code
        == 403
    )
    assert client.post("/api/care/teams", json={**body, "code": "FDT-5", "health_centre_id": world.hospital_id},
                       headers=admin).status_code == 422  # fmt: skip
