"""Revealing a masked ID number or phone: allowed roles get it, audited with the reason; other
roles are refused, and the refusal is audited too."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.access.conftest import PASSWORD, FakeClock, Place, add_user
from yiyang.access import service
from yiyang.access.models import AuditEvent, RelationshipKind, ResidentRelationship
from yiyang.access.roles import Role
from yiyang.db import Database
from yiyang.geo.models import Organisation, OrganisationKind
from yiyang.residents.models import Resident
from yiyang.residents.names import name_pinyin

ID_NUMBER, PHONE = "110108194803120242", "13911002345"


@pytest.fixture
def team_id(sqlite_db: Database, place: Place) -> int:
    """A family-doctor team of the district's health centre."""
    with sqlite_db.unit_of_work() as session:
        team = Organisation(
            code="HC-001-T1",
            name="家医团队一",
            kind=OrganisationKind.family_doctor_team,
            area_id=place.district_id,
        )
        session.add(team)
        session.flush()
        return team.id


@pytest.fixture
def resident_id(sqlite_db: Database, place: Place, team_id: int, clock: FakeClock) -> int:
    """A resident living in the grid, under contract with the team (so in both roles' scope)."""
    with sqlite_db.unit_of_work() as session:
        resident = Resident(
            name="王秀英", name_pinyin=name_pinyin("王秀英"), sex="F", birth_date=dt.date(1948, 3, 12),
            id_number=ID_NUMBER, phone=PHONE, grid_id=place.grid_id,
        )  # fmt: skip
        session.add(resident)
        session.flush()
        session.add(
            ResidentRelationship(
                resident_id=resident.id, kind=RelationshipKind.contract, organisation_id=team_id,
                valid_from=clock.now - dt.timedelta(days=30), source_type="test", source_id=resident.id,
            )
        )  # fmt: skip
        return resident.id


def token_for(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def reveal(
    client: TestClient, headers: dict[str, str], resident_id: int, field: str, reason: str = "签约核对身份"
):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/residents/{resident_id}/reveal", json={"field": field, "reason": reason}, headers=headers
    )


def audit_rows(database: Database) -> list[AuditEvent]:
    with database.unit_of_work() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_a_family_doctor_reveals_an_id_number_and_the_reveal_is_audited_with_its_reason(
    client: TestClient, sqlite_db: Database, team_id: int, resident_id: int
) -> None:
    # given a family doctor of the team the resident is contracted with
    add_user(sqlite_db, "dr.zhao", Role.family_doctor, organisation_id=team_id)
    headers = token_for(client, "dr.zhao")
    # when she asks for the whole ID number with a reason
    response = reveal(client, headers, resident_id, "id_number", "签约时核对身份证")
    # then she gets it, not cached, and the trail says who revealed what, for whom, and why
    assert response.status_code == 200, response.text
    assert response.json()["value"] == ID_NUMBER
    assert response.headers["cache-control"] == "no-store"
    reveals = [e for e in audit_rows(sqlite_db) if e.action == "reveal" and e.field_group == "id_number"]
    assert len(reveals) == 1
    event = reveals[0]
    assert (event.actor_name, event.role, event.organisation_id) == (
        "dr.zhao",
        "family_doctor",
        team_id,
    )
    assert (event.resident_id, event.outcome, event.reason) == (resident_id, "allowed", "签约时核对身份证")


def test_a_grid_worker_may_reveal_a_phone_but_not_an_id_number_and_the_refusal_is_kept(
    client: TestClient, sqlite_db: Database, place: Place, resident_id: int
) -> None:
    add_user(sqlite_db, "wu.grid", Role.grid_worker, area_id=place.grid_id)
    headers = token_for(client, "wu.grid")
    # a phone: allowed
    phone = reveal(client, headers, resident_id, "phone", "上门走访前电话联系")
    assert phone.status_code == 200 and phone.json()["value"] == PHONE
    # an ID number: refused, nothing revealed, and the refused attempt audited with the stated reason
    refused = reveal(client, headers, resident_id, "id_number", "想看看")
    assert refused.status_code == 403
    assert refused.json()["code"] == "access.reveal.role"
    assert ID_NUMBER not in refused.text
    denied = [e for e in audit_rows(sqlite_db) if e.outcome == "denied"]
    assert len(denied) == 1
    assert (denied[0].action, denied[0].field_group, denied[0].resident_id) == (
        "reveal",
        "id_number",
        resident_id,
    )
    assert "想看看" in denied[0].reason


def test_a_family_doctor_without_a_contract_with_the_resident_is_refused_and_the_refusal_is_kept(
    client: TestClient, sqlite_db: Database, place: Place, resident_id: int
) -> None:
    # given a family doctor of another organisation (no contract with this resident)
    add_user(sqlite_db, "dr.qian", Role.family_doctor, organisation_id=place.centre_id)
    # when she asks for the phone
    response = reveal(client, token_for(client, "dr.qian"), resident_id, "phone", "电话随访")
    # then she is refused by scope, nothing is revealed, and the refusal is in the trail
    assert response.status_code == 403 and response.json()["code"] == "access.scope"
    assert PHONE not in response.text and "value" not in response.json()
    denied = [e for e in audit_rows(sqlite_db) if e.outcome == "denied"]
    assert [(e.actor_name, e.action, e.resident_id) for e in denied] == [("dr.qian", "reveal", resident_id)]
    assert not [e for e in audit_rows(sqlite_db) if e.outcome == "allowed" and e.action == "reveal"]


def test_a_volunteer_may_reveal_nothing(client: TestClient, sqlite_db: Database, resident_id: int) -> None:
    add_user(sqlite_db, "vol.sun", Role.volunteer)
    headers = token_for(client, "vol.sun")
    for field in ("phone", "id_number"):
        response = reveal(client, headers, resident_id, field)
        assert response.status_code == 403 and "value" not in response.json()
    assert [e.outcome for e in audit_rows(sqlite_db) if e.action == "reveal"] == ["denied", "denied"]


def test_a_resident_and_an_authorised_family_member_may_reveal_the_residents_own_values(
    client: TestClient, sqlite_db: Database, clock: FakeClock, resident_id: int
) -> None:
    with sqlite_db.unit_of_work() as session:
        own = service.create_user(session, "wang.xiuying", password=PASSWORD, resident_id=resident_id)
        service.grant_role(session, own, Role.resident)
        son = service.create_user(session, "wang.son", password=PASSWORD)
        service.grant_role(session, son, Role.family_member)
        service.authorise_family_member(
            session, resident_id, son, "子女", valid_from=clock.now - dt.timedelta(days=1)
        )
    assert (
        reveal(client, token_for(client, "wang.xiuying"), resident_id, "id_number").json()["value"]
        == ID_NUMBER
    )
    assert reveal(client, token_for(client, "wang.son"), resident_id, "phone").json()["value"] == PHONE


def test_a_reason_is_required_and_personal_numbers_in_it_are_not_kept(
    client: TestClient, sqlite_db: Database, team_id: int, resident_id: int
) -> None:
    add_user(sqlite_db, "dr.zhao", Role.family_doctor, organisation_id=team_id)
    headers = token_for(client, "dr.zhao")
    missing = client.post(f"/api/residents/{resident_id}/reveal", json={"field": "phone"}, headers=headers)
    assert missing.status_code == 422
    blank = reveal(client, headers, resident_id, "phone", "   \n  ")
    assert blank.status_code == 422 and blank.json()["code"] == "access.reveal.reason"
    ok = reveal(client, headers, resident_id, "phone", f"家属来电 {PHONE} 要求核对")
    assert ok.status_code == 200
    (event,) = [e for e in audit_rows(sqlite_db) if e.action == "reveal" and e.field_group == "phone"]
    assert PHONE not in event.reason and "[PHONE-REDACTED]" in event.reason


def test_unknown_fields_residents_and_anonymous_callers_get_4xx(
    client: TestClient, sqlite_db: Database, team_id: int, resident_id: int
) -> None:
    add_user(sqlite_db, "dr.zhao", Role.family_doctor, organisation_id=team_id)
    headers = token_for(client, "dr.zhao")
    assert reveal(client, headers, resident_id, "address").status_code == 422
    assert reveal(client, headers, 2_000_000_000, "phone").status_code == 404
    assert reveal(client, {}, resident_id, "phone").status_code == 401
