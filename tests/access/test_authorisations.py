"""Family authorisations (数据授权) over the API: recorded by the resident or by staff entering the
signed form, given up by the family member, in force from the next request (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.access.conftest import PASSWORD, FakeClock, Place, add_user, make_place
from tests.access.test_web_sign_in import csrf_in
from yiyang.access import service
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database
from yiyang.residents.models import Resident


@pytest.fixture
def place(db: Database) -> Place:
    made = make_place(db)
    with db.unit_of_work() as session:
        session.get(Resident, made.resident_id).grid_id = made.grid_id  # she lives in the grid
    return made


@pytest.fixture
def api(db: Database, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(db, settings)
    app.state.clock = clock
    with TestClient(app) as test_client:
        yield test_client


def _token(api: TestClient, username: str) -> dict[str, str]:
    answer = api.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _accounts(db: Database, place: Place) -> None:
    with db.unit_of_work() as session:
        own = service.create_user(session, "wang.xy", password=PASSWORD, resident_id=place.resident_id)
        service.grant_role(session, own, Role.resident)
        service.create_user(session, "daughter.li", password=PASSWORD)  # no role yet
        service.create_user(session, "son.li", password=PASSWORD)


def test_a_resident_lets_her_daughter_act_for_her_until_the_daughter_gives_it_up(
    db: Database, api: TestClient, place: Place, clock: FakeClock
) -> None:
    _accounts(db, place)
    resident = _token(api, "wang.xy")
    daughter = _token(api, "daughter.li")
    assert api.get(f"/api/residents/{place.resident_id}", headers=daughter).status_code == 403
    given = api.post(
        f"/api/residents/{place.resident_id}/authorisations", headers=resident,
        json={"grantee_username": "Daughter.Li", "kinship": "child"},
    )  # fmt: skip
    assert given.status_code == 201, given.text
    body = given.json()
    assert (body["grantee_username"], body["kinship_zh"], body["in_force"]) == ("daughter.li", "子女", True)
    # from her next request the daughter acts for her mother, as a family member
    me = api.get("/api/auth/me", headers=daughter).json()
    assert me["acts_for"] == [place.resident_id] and [r["role"] for r in me["roles"]] == ["family_member"]
    assert api.get(f"/api/residents/{place.resident_id}", headers=daughter).status_code == 200
    # but may not hand it on to her brother
    handed = api.post(
        f"/api/residents/{place.resident_id}/authorisations", headers=daughter,
        json={"grantee_username": "son.li", "kinship": "child"},
    )  # fmt: skip
    assert handed.status_code == 403 and handed.json()["code"] == "authorisation.recorder.forbidden"
    again = api.post(
        f"/api/residents/{place.resident_id}/authorisations", headers=resident,
        json={"grantee_username": "daughter.li", "kinship": "child"},
    )  # fmt: skip
    assert again.status_code == 409 and again.json()["code"] == "authorisation.exists"
    # the daughter gives it up: from the next request she no longer reaches her mother's record
    clock.advance(minutes=5)
    given_up = api.post(f"/api/authorisations/{body['id']}/revoke", headers=daughter)
    assert given_up.status_code == 200 and given_up.json()["in_force"] is False
    assert api.get(f"/api/residents/{place.resident_id}", headers=daughter).status_code == 403
    history = api.get(f"/api/residents/{place.resident_id}/authorisations", headers=resident).json()
    assert [(a["id"], a["revoked_at"] is not None) for a in history] == [(body["id"], True)]


def test_staff_enter_the_signed_form_and_a_volunteer_may_not(
    db: Database, api: TestClient, place: Place, clock: FakeClock
) -> None:
    _accounts(db, place)
    add_user(db, "grid.wu", Role.grid_worker, area_id=place.grid_id)
    add_user(db, "volunteer.he", Role.volunteer)
    grid = _token(api, "grid.wu")
    ends = (clock.now + dt.timedelta(days=30)).isoformat()
    form = api.post(
        f"/api/residents/{place.resident_id}/authorisations", headers=grid,
        json={"grantee_username": "son.li", "kinship": "child", "valid_until": ends},
    )  # fmt: skip
    assert form.status_code == 201, form.text
    son = _token(api, "son.li")
    assert api.get("/api/auth/me", headers=son).json()["acts_for"] == [place.resident_id]
    clock.advance(days=31)  # the form's period is over (and the day's tokens with it)
    assert api.get("/api/auth/me", headers=_token(api, "son.li")).json()["acts_for"] == []
    grid = _token(api, "grid.wu")
    refused = api.post(
        f"/api/residents/{place.resident_id}/authorisations", headers=_token(api, "volunteer.he"),
        json={"grantee_username": "daughter.li", "kinship": "child"},
    )  # fmt: skip
    assert refused.status_code == 403 and refused.json()["code"] == "authorisation.recorder.forbidden"
    with db.unit_of_work() as session:
        denied = session.scalars(
            select(AuditEvent.reason).where(
                AuditEvent.resource_type == "resident_authorisation",
                AuditEvent.outcome == AuditOutcome.denied,
            )
        ).all()
    assert denied == ["authorisation.recorder.forbidden"]
    for body, code in (
        ({"grantee_username": "nobody.here", "kinship": "child"}, 404),
        ({"grantee_username": "wang.xy", "kinship": "child"}, 422),  # her own account
        ({"grantee_username": "daughter.li", "kinship": "neighbour"}, 422),
        ({"grantee_username": "daughter.li", "kinship": "child", "valid_from": clock.now.isoformat(),
          "valid_until": (clock.now - dt.timedelta(days=1)).isoformat()}, 422),
    ):  # fmt: skip
        answer = api.post(f"/api/residents/{place.resident_id}/authorisations", headers=grid, json=body)
        assert answer.status_code == code, (body, answer.text)


def test_staff_out_of_scope_are_refused(db: Database, api: TestClient, place: Place) -> None:
    _accounts(db, place)
    add_user(db, "nurse.elsewhere", Role.nurse, organisation_id=place.centre_id)  # no contract with her
    nurse = _token(api, "nurse.elsewhere")
    answer = api.post(
        f"/api/residents/{place.resident_id}/authorisations", headers=nurse,
        json={"grantee_username": "son.li", "kinship": "child"},
    )  # fmt: skip
    assert answer.status_code == 403 and answer.json()["code"] == "access.scope"
    assert api.get(f"/api/residents/{place.resident_id}/authorisations", headers=nurse).status_code == 403


def test_staff_record_and_revoke_it_on_the_profile_page(db: Database, api: TestClient, place: Place) -> None:
    _accounts(db, place)
    add_user(db, "grid.wu", Role.grid_worker, area_id=place.grid_id)
    signed = api.post("/login", data={"username": "grid.wu", "password": PASSWORD}, follow_redirects=False)
    assert signed.status_code == 303
    profile = api.get(f"/residents/{place.resident_id}")
    assert profile.status_code == 200 and "家属授权" in profile.text and "尚未授权家属" in profile.text
    token = csrf_in(profile.text)
    recorded = api.post(
        f"/residents/{place.resident_id}/authorisations",
        data={
            "csrf_token": token,
            "grantee_username": "son.li",
            "kinship": "child",
            "valid_until": "2027-06-30",
        },
    )
    assert recorded.status_code == 200 and "已授权" in recorded.text and "son.li" in recorded.text
    assert "2027-07-01 00:00" in recorded.text  # open to the end of the form's last day, China time
    unknown = api.post(
        f"/residents/{place.resident_id}/authorisations",
        data={"csrf_token": token, "grantee_username": "nobody.here", "kinship": "child"},
    )
    assert unknown.status_code == 404 and "账号不存在" in unknown.text
    [authorisation_id] = [a["id"] for a in api.get(
        f"/api/residents/{place.resident_id}/authorisations", headers=_token(api, "grid.wu")
    ).json()]  # fmt: skip
    revoked = api.post(f"/authorisations/{authorisation_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 200 and "授权已撤销" in revoked.text
