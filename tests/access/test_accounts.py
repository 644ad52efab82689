"""Account administration (账号管理): district administrators keep accounts and roles, each over
their own area; people change their own password. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.access.conftest import PASSWORD, FakeClock, add_user
from yiyang.access.models import AuditEvent, AuthCredential, RoleMembership, User
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.cli import app as cli
from yiyang.config import Settings, get_settings
from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.residents.models import Resident

NEW_PASSWORD = "another-long-secret"


@dataclass
class Streets:
    """A district with two streets, each with a community and a health station."""

    district: int
    east: int
    west: int
    east_community: int
    west_community: int
    east_station: int
    west_station: int
    resident: int


def _streets(database: Database) -> Streets:
    with database.unit_of_work() as session:
        district = Area(level=AreaLevel.district, code="440113", name="番禺区", path="440113")
        session.add(district)
        session.flush()
        ids: dict[str, int] = {}
        for side, name in (("E", "东街道"), ("W", "西街道")):
            street = Area(
                level=AreaLevel.street, code=f"440113-{side}", name=name, parent_id=district.id,
                path=f"440113/{side}",
            )  # fmt: skip
            session.add(street)
            session.flush()
            community = Area(
                level=AreaLevel.community, code=f"440113-{side}1", name=f"{name}一社区", parent_id=street.id,
                path=f"440113/{side}/{side}1",
            )  # fmt: skip
            session.add(community)
            session.flush()
            station = Organisation(
                code=f"HS-{side}", name=f"{name}卫生服务站", kind=OrganisationKind.health_station,
                area_id=community.id,
            )  # fmt: skip
            session.add(station)
            session.flush()
            ids |= {
                f"{side}street": street.id,
                f"{side}community": community.id,
                f"{side}station": station.id,
            }
        resident = Resident(
            name="陈桂英", name_pinyin="chen gui ying", sex="F", community_id=ids["Ecommunity"]
        )
        session.add(resident)
        session.flush()
        return Streets(
            district.id, ids["Estreet"], ids["Wstreet"], ids["Ecommunity"], ids["Wcommunity"],
            ids["Estation"], ids["Wstation"], resident.id,
        )  # fmt: skip


@pytest.fixture
def streets(db: Database) -> Streets:
    return _streets(db)


@pytest.fixture
def api(db: Database, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(db, settings)
    app.state.clock = clock
    with TestClient(app) as test_client:
        yield test_client


def _token(api: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    answer = api.post("/api/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _audit_reasons(database: Database) -> list[str]:
    with database.unit_of_work() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.resource_type == "user_account").order_by(AuditEvent.id)
        )
        return [row.reason or "" for row in rows]


def test_an_administrator_takes_on_a_doctor_and_later_stops_the_account(
    db: Database, api: TestClient, streets: Streets
) -> None:
    add_user(db, "admin", Role.district_admin)
    admin = _token(api, "admin")
    created = api.post(
        "/api/users",
        headers=admin,
        json={"username": "Doctor.Lin", "display_name": "林医生", "password": PASSWORD,
              "role": "family_doctor", "organisation_id": streets.east_station},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    doctor = created.json()
    assert doctor["username"] == "doctor.lin" and doctor["active"] is True
    assert [(r["role"], r["label_zh"], r["organisation_id"]) for r in doctor["roles"]] == [
        ("family_doctor", "家庭医生", streets.east_station)
    ]
    listed = api.get("/api/users", headers=admin, params={"q": "doc"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == doctor["id"]
    assert api.get("/api/users", headers=admin, params={"role": "grid_worker"}).json()["total"] == 0

    nurse = api.post(
        f"/api/users/{doctor['id']}/roles", headers=admin,
        json={"role": "nurse", "organisation_id": streets.east_station},
    )  # fmt: skip
    assert nurse.status_code == 201
    again = api.post(
        f"/api/users/{doctor['id']}/roles", headers=admin,
        json={"role": "nurse", "organisation_id": streets.east_station},
    )  # fmt: skip
    assert again.status_code == 409 and again.json()["code"] == "role.membership.held"

    phone_app = _token(api, "doctor.lin")
    web_too = _token(api, "doctor.lin")
    assert api.get("/api/auth/me", headers=phone_app).json()["username"] == "doctor.lin"
    stopped = api.post(f"/api/users/{doctor['id']}/deactivate", headers=admin)
    assert stopped.status_code == 200 and stopped.json() == {"revoked": 2}
    assert api.get("/api/auth/me", headers=phone_app).status_code == 401
    assert api.get("/api/auth/me", headers=web_too).status_code == 401
    refused = api.post("/api/auth/login", json={"username": "doctor.lin", "password": PASSWORD})
    assert refused.status_code == 401

    back = api.post(f"/api/users/{doctor['id']}/reactivate", headers=admin)
    assert back.json()["active"] is True
    roles = {r["role"] for r in back.json()["roles"] if r["revoked_at"] is None}
    assert roles == {"family_doctor", "nurse"}  # reactivating restores the account as it was
    assert api.get("/api/auth/me", headers=_token(api, "doctor.lin")).status_code == 200

    reasons = _audit_reasons(db)
    assert len(reasons) == 4 and reasons[0].startswith(
        f"account {doctor['id']} created with role family_doctor"
    )
    assert all("doctor.lin" not in r and "林" not in r and PASSWORD not in r for r in reasons)


def test_a_role_ends_and_its_record_stays(db: Database, api: TestClient, streets: Streets) -> None:
    add_user(db, "admin", Role.district_admin)
    grid_id = add_user(db, "grid.he", Role.grid_worker, area_id=streets.east_community)
    admin = _token(api, "admin")
    worker = _token(api, "grid.he")
    [membership] = api.get(f"/api/users/{grid_id}", headers=admin).json()["roles"]
    ended = api.post(f"/api/users/{grid_id}/roles/{membership['id']}/revoke", headers=admin)
    assert ended.status_code == 200 and ended.json()["revoked_at"] is not None
    assert api.get("/api/auth/me", headers=worker).json()["roles"] == []  # from the next request on
    kept = api.get(f"/api/users/{grid_id}", headers=admin).json()["roles"]
    assert [r["id"] for r in kept] == [membership["id"]]
    twice = api.post(f"/api/users/{grid_id}/roles/{membership['id']}/revoke", headers=admin)
    assert twice.json()["revoked_at"] == ended.json()["revoked_at"]
    admin_id = api.get("/api/auth/me", headers=admin).json()["user_id"]
    wrong_owner = api.post(f"/api/users/{admin_id}/roles/{membership['id']}/revoke", headers=admin)
    assert wrong_owner.status_code == 404


def test_a_street_administrator_keeps_only_that_streets_staff(
    db: Database, api: TestClient, streets: Streets
) -> None:
    add_user(db, "admin.east", Role.district_admin, area_id=streets.east)
    east_doctor = add_user(db, "doctor.east", Role.family_doctor, organisation_id=streets.east_station)
    west_doctor = add_user(db, "doctor.west", Role.family_doctor, organisation_id=streets.west_station)
    both = add_user(db, "nurse.both", Role.nurse, organisation_id=streets.east_station)
    with db.unit_of_work() as session:
        session.add(RoleMembership(user_id=both, role=Role.nurse, organisation_id=streets.west_station))
    east = _token(api, "admin.east")

    listed = api.get("/api/users", headers=east).json()
    assert {u["username"] for u in listed["items"]} == {"admin.east", "doctor.east"}
    assert api.post(f"/api/users/{east_doctor}/deactivate", headers=east).status_code == 200
    for outside in (west_doctor, both):
        answer = api.post(f"/api/users/{outside}/deactivate", headers=east)
        assert answer.status_code == 403 and answer.json()["code"] == "user.scope"
        assert api.get(f"/api/users/{outside}", headers=east).status_code == 403
    assert api.get("/api/users/999999", headers=east).status_code == 404

    inside = api.post(
        "/api/users", headers=east,
        json={"username": "grid.east", "password": PASSWORD, "role": "grid_worker", "area_id": streets.east_community},
    )  # fmt: skip
    assert inside.status_code == 201
    for body in (
        {"role": "grid_worker", "area_id": streets.west_community},
        {"role": "family_doctor", "organisation_id": streets.west_station},
        {"role": "district_admin"},
        {"role": "family_member"},
    ):
        refused = api.post(
            "/api/users", headers=east, json={"username": "x.y.z", "password": PASSWORD, **body}
        )
        assert refused.status_code == 403 and refused.json()["code"] == "user.scope", body
    with db.unit_of_work() as session:
        assert session.scalar(select(User).where(User.username == "x.y.z")) is None
    # moving the east doctor to the west station would take the account out of this area
    grant = api.post(
        f"/api/users/{east_doctor}/roles", headers=east,
        json={"role": "family_doctor", "organisation_id": streets.west_station},
    )  # fmt: skip
    assert grant.status_code == 403


def test_only_administrators_keep_accounts(db: Database, api: TestClient, streets: Streets) -> None:
    doctor = add_user(db, "doctor.east", Role.family_doctor, organisation_id=streets.east_station)
    officer = add_user(db, "officer", Role.civil_affairs_officer, area_id=streets.district)
    token = _token(api, "officer")
    for answer in (
        api.get("/api/users", headers=token),
        api.post(f"/api/users/{doctor}/deactivate", headers=token),
        api.post(f"/api/users/{doctor}/password", headers=token, json={"password": NEW_PASSWORD}),
    ):
        assert answer.status_code == 403 and answer.json()["code"] == "access.role"
    assert api.get("/api/users").status_code == 401
    assert officer


def test_nobody_locks_the_deployment_out(
    db: Database, api: TestClient, streets: Streets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_id = add_user(db, "admin", Role.district_admin)
    admin = _token(api, "admin")
    [membership] = api.get(f"/api/users/{admin_id}", headers=admin).json()["roles"]
    for answer in (
        api.post(f"/api/users/{admin_id}/deactivate", headers=admin),
        api.post(f"/api/users/{admin_id}/roles/{membership['id']}/revoke", headers=admin),
        api.post(f"/api/users/{admin_id}/password", headers=admin, json={"password": NEW_PASSWORD}),
    ):
        assert answer.status_code == 403 and answer.json()["code"] == "user.self"
    second = add_user(db, "admin.two", Role.district_admin)
    # the command line acts as the system: it may stop an administrator, never the last one
    monkeypatch.setenv("YIYANG_DATABASE_URL", db.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("YIYANG_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(cli, ["user", "deactivate", "admin.two"])
        last = CliRunner().invoke(cli, ["user", "deactivate", "admin"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert last.exit_code == 1 and "user.admin.last" in last.output
    with db.unit_of_work() as session:
        assert session.get(User, admin_id).active is True
        assert session.get(User, second).active is False


def test_a_forgotten_password_is_reset_and_signs_the_account_out(
    db: Database, api: TestClient, streets: Streets
) -> None:
    add_user(db, "admin", Role.district_admin)
    grid = add_user(db, "grid.he", Role.grid_worker, area_id=streets.east_community)
    admin = _token(api, "admin")
    old_token = _token(api, "grid.he")
    short = api.post(f"/api/users/{grid}/password", headers=admin, json={"password": "short"})
    assert short.status_code == 422 and short.json()["code"] == "auth.password.short"
    reset = api.post(f"/api/users/{grid}/password", headers=admin, json={"password": NEW_PASSWORD})
    assert reset.status_code == 200 and reset.json() == {"revoked": 1}
    assert api.get("/api/auth/me", headers=old_token).status_code == 401
    assert api.post("/api/auth/login", json={"username": "grid.he", "password": PASSWORD}).status_code == 401
    assert api.get("/api/auth/me", headers=_token(api, "grid.he", NEW_PASSWORD)).status_code == 200
    assert not any(NEW_PASSWORD in reason for reason in _audit_reasons(db))


def test_a_person_changes_their_own_password(db: Database, api: TestClient, streets: Streets) -> None:
    user_id = add_user(db, "nurse.wu", Role.nurse, organisation_id=streets.east_station)
    here = _token(api, "nurse.wu")
    elsewhere = _token(api, "nurse.wu")
    changed = api.post(
        "/api/auth/password", headers=here, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 200 and changed.json() == {"revoked": 1}
    assert api.get("/api/auth/me", headers=here).status_code == 200  # this one stays signed in
    assert api.get("/api/auth/me", headers=elsewhere).status_code == 401
    assert api.post("/api/auth/login", json={"username": "nurse.wu", "password": PASSWORD}).status_code == 401
    _token(api, "nurse.wu", NEW_PASSWORD)
    with db.unit_of_work() as session:
        revoked = session.scalars(
            select(AuthCredential.revoked_at).where(AuthCredential.user_id == user_id)
        ).all()
    assert sum(r is not None for r in revoked) == 1


def test_guessing_the_current_password_is_throttled(
    db: Database, api: TestClient, streets: Streets, settings: Settings, clock: FakeClock
) -> None:
    add_user(db, "nurse.wu", Role.nurse, organisation_id=streets.east_station)
    stolen = _token(api, "nurse.wu")
    clock.advance(seconds=1)  # failures count from after the last success
    guess = {"current_password": "a-wrong-guess", "new_password": NEW_PASSWORD}
    for _ in range(settings.sign_in_max_failures_per_account):
        wrong = api.post("/api/auth/password", headers=stolen, json=guess)
        assert wrong.status_code == 403 and wrong.json()["code"] == "auth.credentials"
    throttled = api.post(
        "/api/auth/password",
        headers=stolen,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
    assert api.get("/api/auth/me", headers=stolen).status_code == 200
    _token_refused = api.post("/api/auth/login", json={"username": "nurse.wu", "password": NEW_PASSWORD})
    assert _token_refused.status_code in (401, 429)  # the password did not change
