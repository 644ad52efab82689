"""Searching and exporting the audit trail, and a resident's view of who accessed their record."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from tests.access.conftest import PASSWORD, FakeClock, Place, add_user
from yiyang.access import service
from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.audit import record_access
from yiyang.access.models import AuditEvent
from yiyang.access.roles import Role
from yiyang.db import Database
from yiyang.residents.models import Resident
from yiyang.residents.names import name_pinyin


def token_for(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def trail(sqlite_db: Database, place: Place, clock: FakeClock) -> dict[str, int]:
    """Two residents of the grid; a nurse read one on day 1 and both on day 2, was refused once on day 3."""
    with sqlite_db.unit_of_work() as session:
        other = Resident(name="李建国", name_pinyin=name_pinyin("李建国"), sex="M", grid_id=place.grid_id)
        session.add(other)
        session.get(Resident, place.resident_id).grid_id = place.grid_id
        session.flush()
        other_id = other.id
    nurse_id = add_user(sqlite_db, "nurse.li", Role.nurse, organisation_id=place.centre_id)
    nurse = Actor(nurse_id, "nurse.li", (RoleGrant(Role.nurse, organisation_id=place.centre_id),))
    day = clock.now.replace(hour=9)
    with sqlite_db.unit_of_work() as session:
        record_access(session, nurse, action="read", resource_type="resident", resident_id=place.resident_id,
                      field_group="clinical", purpose="care", at=day - dt.timedelta(days=2))  # fmt: skip
        for resident in (place.resident_id, other_id):
            record_access(session, nurse, action="read", resource_type="resident", resident_id=resident,
                          field_group="identity", purpose="care", at=day - dt.timedelta(days=1))  # fmt: skip
        record_access(session, nurse, action="update", resource_type="care_plan", resident_id=other_id,
                      outcome="denied", reason="out of scope", at=day)  # fmt: skip
    return {"nurse": nurse_id, "wang": place.resident_id, "li": other_id}


def events(client: TestClient, headers: dict[str, str], **params: object):  # type: ignore[no-untyped-def]
    return client.get("/api/audit/events", params=params, headers=headers)


def test_an_administrator_searches_by_resident_user_time_action_and_outcome_with_paging(
    client: TestClient, sqlite_db: Database, trail: dict[str, int], clock: FakeClock
) -> None:
    add_user(sqlite_db, "admin", Role.district_admin)
    headers = token_for(client, "admin")
    everything = events(client, headers).json()
    assert everything["total"] == 4
    # newest first
    assert [item["action"] for item in everything["items"]][0] == "update"
    assert events(client, headers, resident_id=trail["li"]).json()["total"] == 2
    assert events(client, headers, user_id=trail["nurse"], action="read").json()["total"] == 3
    assert events(client, headers, outcome="denied").json()["items"][0]["reason"] == "out of scope"
    since = (clock.now - dt.timedelta(days=1, hours=1)).isoformat()
    until = clock.now.replace(hour=0).isoformat()
    assert events(client, headers, since=since, until=until).json()["total"] == 2
    page = events(client, headers, user_id=trail["nurse"], limit=3, offset=3).json()
    assert page["total"] == 4 and len(page["items"]) == 1
    assert events(client, headers, action="teleport").status_code == 422


def test_searching_the_trail_is_itself_audited(
    client: TestClient, sqlite_db: Database, trail: dict[str, int]
) -> None:
    add_user(sqlite_db, "admin", Role.district_admin)
    headers = token_for(client, "admin")
    events(client, headers, resident_id=trail["wang"])
    with sqlite_db.unit_of_work() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (last.actor_name, last.action, last.resource_type, last.resident_id) == (
        "admin", "read", "audit_event", trail["wang"],
    )  # fmt: skip


def test_an_officer_sees_events_about_residents_but_not_the_rest_of_the_trail(
    client: TestClient, sqlite_db: Database, place: Place, trail: dict[str, int]
) -> None:
    add_user(sqlite_db, "officer.he", Role.health_officer, area_id=place.district_id)
    with sqlite_db.unit_of_work() as session:
        # an event that names no resident (an administrative one), and one about a resident elsewhere
        record_access(session, Actor(None, "system:job"), action="read", resource_type="indicator")
        elsewhere = Resident(name="赵凤兰", name_pinyin=name_pinyin("赵凤兰"), sex="F")
        session.add(elsewhere)
        session.flush()
        record_access(session, Actor(None, "system:job"), action="read", resource_type="resident",
                      resident_id=elsewhere.id)  # fmt: skip
    page = events(client, token_for(client, "officer.he")).json()
    assert page["total"] == 4
    assert {item["resident_id"] for item in page["items"]} == {trail["wang"], trail["li"]}


def test_other_roles_are_refused_and_the_refusal_is_kept(
    client: TestClient, sqlite_db: Database, place: Place, trail: dict[str, int]
) -> None:
    headers = token_for(client, "nurse.li")
    response = events(client, headers)
    assert response.status_code == 403 and response.json()["code"] == "access.audit.role"
    assert "items" not in response.json()
    assert client.get("/api/audit/events.csv", headers=headers).status_code == 403
    with sqlite_db.unit_of_work() as session:
        refused = session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "audit_event", AuditEvent.outcome == "denied"
            )
        ).all()
    assert [(e.actor_name, e.action) for e in refused] == [("nurse.li", "read"), ("nurse.li", "export")]


def test_csv_export_has_a_bom_chinese_headings_and_the_rows_and_is_audited(
    client: TestClient, sqlite_db: Database, place: Place, trail: dict[str, int]
) -> None:
    add_user(sqlite_db, "officer.ma", Role.civil_affairs_officer, area_id=place.district_id)
    response = client.get(
        "/api/audit/events.csv", params={"resident_id": trail["li"]}, headers=token_for(client, "officer.ma")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "编号 id" and "操作 action" in rows[0]
    assert len(rows) == 1 + 2
    assert {row[rows[0].index("操作 action")] for row in rows[1:]} == {"read", "update"}
    with sqlite_db.unit_of_work() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (last.action, last.resource_type, last.resident_id) == ("export", "audit_event", trail["li"])


def test_xlsx_export_opens_as_a_workbook(
    client: TestClient, sqlite_db: Database, trail: dict[str, int]
) -> None:
    add_user(sqlite_db, "admin", Role.district_admin)
    response = client.get(
        "/api/audit/events.xlsx", params={"outcome": "denied"}, headers=token_for(client, "admin")
    )
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "编号 id"
    assert len(rows) == 2 and "out of scope" in rows[1]


def test_a_resident_sees_who_accessed_their_record_and_nothing_of_others(
    client: TestClient, sqlite_db: Database, place: Place, trail: dict[str, int], clock: FakeClock
) -> None:
    with sqlite_db.unit_of_work() as session:
        own = service.create_user(session, "wang.xiuying", password=PASSWORD, resident_id=trail["wang"])
        service.grant_role(session, own, Role.resident)
        son = service.create_user(session, "wang.son", password=PASSWORD)
        service.grant_role(session, son, Role.family_member)
        service.authorise_family_member(
            session, trail["wang"], son, "子女", valid_from=clock.now - dt.timedelta(days=9)
        )
    headers = token_for(client, "wang.xiuying")
    response = client.get(f"/api/residents/{trail['wang']}/access-log", headers=headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    first = page["items"][0]
    assert first["role_label"] == "护士 (nurse)" and first["organisation"] == "示例社区卫生服务中心"
    assert first["field_group"] == "identity" and first["purpose"] == "care" and first["occurred_at"]
    assert "nurse.li" not in response.text and "actor_name" not in first
    # another resident's log is refused (and the refusal kept); the son sees his mother's
    refused = client.get(f"/api/residents/{trail['li']}/access-log", headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "access.audit.own_record"
    son_view = client.get(f"/api/residents/{trail['wang']}/access-log", headers=token_for(client, "wang.son"))
    assert son_view.status_code == 200 and son_view.json()["total"] >= 2
    # staff use the officers' search, not a resident's view
    staff = client.get(f"/api/residents/{trail['wang']}/access-log", headers=token_for(client, "nurse.li"))
    assert staff.status_code == 403
    with sqlite_db.unit_of_work() as session:
        own_reads = session.scalars(
            select(AuditEvent).where(
                AuditEvent.resource_type == "audit_event", AuditEvent.purpose == "own_record"
            )
        ).all()
    assert [(e.actor_name, e.outcome) for e in own_reads] == [
        ("wang.xiuying", "allowed"), ("wang.xiuying", "denied"), ("wang.son", "allowed"), ("nurse.li", "denied"),
    ]  # fmt: skip


def test_the_residents_page_lists_who_accessed_the_record(
    client: TestClient, sqlite_db: Database, trail: dict[str, int]
) -> None:
    with sqlite_db.unit_of_work() as session:
        own = service.create_user(session, "wang.xiuying", password=PASSWORD, resident_id=trail["wang"])
        service.grant_role(session, own, Role.resident)
    page = client.get("/my/access-log", headers=token_for(client, "wang.xiuying"))
    assert page.status_code == 200
    assert (
        "谁查看了我的档案" in page.text
        and "护士 (nurse)" in page.text
        and "示例社区卫生服务中心" in page.text
    )
    assert "nurse.li" not in page.text
    english = client.get("/my/access-log?lang=en", headers=token_for(client, "wang.xiuying"))
    assert "Who accessed my record" in english.text
    refused = client.get("/my/access-log", headers=token_for(client, "nurse.li"))
    assert refused.status_code == 403 and "nurse" not in refused.text.split("<main>")[1]
