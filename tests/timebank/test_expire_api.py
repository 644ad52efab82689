"""POST /api/timebank/expire expires hours across the whole deployment, so only an administrator
without an area runs it, and never with a validity so short it would wipe out hours still good."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select

from tests.orders.district import NOW, PASSWORD, District, build
from yiyang.access import service as access
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.timebank import service as timebank
from yiyang.timebank.models import TimebankTransaction


@pytest.fixture
def place(sqlite_db: Database) -> District:
    district = build(sqlite_db)
    with sqlite_db.unit_of_work() as session:
        street_admin = access.create_user(session, "admin.street1", password=PASSWORD)
        access.grant_role(session, street_admin, Role.district_admin, area_id=district.street_1)
        # hours earned 40 days ago
        timebank.earn(
            session, district.volunteer_1, 90, source_type="service_order", source_id=1,
            now=NOW - dt.timedelta(days=40), by="test",
        )  # fmt: skip
    return district


@pytest.fixture
def client(sqlite_db: Database, place: District) -> Iterator[TestClient]:
    app = create_app(sqlite_db)
    app.state.clock = lambda: NOW
    with TestClient(app) as test_client:
        yield test_client


def bearer(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def expiries(database: Database) -> int:
    with database.unit_of_work() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(TimebankTransaction)
                .where(TimebankTransaction.kind == "expire")
            )
            or 0
        )


def test_an_administrator_over_one_street_cannot_expire_the_whole_deployments_hours(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    response = client.post(
        "/api/timebank/expire", json={"validity_days": 30}, headers=bearer(client, "admin.street1")
    )
    assert response.status_code == 403
    assert response.json()["code"] == "timebank.expire.deployment_admin"
    assert expiries(sqlite_db) == 0


def test_a_validity_too_short_is_refused_with_a_code(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    admin = bearer(client, "admin")
    for days in (1, 29):
        response = client.post("/api/timebank/expire", json={"validity_days": days}, headers=admin)
        assert response.status_code == 422
        assert response.json()["code"] == "timebank.validity_days.minimum"
        assert "30" in response.json()["message"]
    assert expiries(sqlite_db) == 0


def test_the_deployments_administrator_expires_hours_past_a_sane_validity(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    response = client.post(
        "/api/timebank/expire", json={"validity_days": 30}, headers=bearer(client, "admin")
    )
    assert response.status_code == 200 and response.json() == {"expired_minutes": 90}


def test_the_districts_validity_may_not_be_set_below_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    # a daily job running with a week's validity would take every volunteer's hours: it fails instead
    monkeypatch.setenv("YIYANG_TIMEBANK_VALIDITY_DAYS", "7")
    with pytest.raises(ValidationError):
        timebank.configured_validity_days()
    monkeypatch.setenv("YIYANG_TIMEBANK_VALIDITY_DAYS", "30")
    assert timebank.configured_validity_days() == 30
