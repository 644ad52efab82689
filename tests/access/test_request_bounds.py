"""A consent period with a time that has no UTC moment, or lies past any sane date, is a 422 with a
code, and no decision is recorded (nor is the one in force superseded)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.access.consent_models import Consent
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database

from .conftest import FakeClock
from .world import World, build_world


@pytest.fixture
def world(db: Database, clock: FakeClock) -> World:
    return build_world(db, clock.now)


@pytest.fixture
def client(world: World, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(world.database, settings)
    app.state.clock = clock
    with TestClient(app) as test_client:
        yield test_client


def consents(world: World) -> list[tuple[int, bool]]:
    with world.database.unit_of_work() as session:
        rows = session.execute(select(Consent.id, Consent.revoked_at.is_(None))).all()
    return sorted((row[0], row[1]) for row in rows)


@pytest.mark.parametrize("field", ["valid_until", "valid_from"])
@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "2101-01-01T00:00:00",
    ],
)
def test_a_consent_time_off_the_calendar_is_a_422_and_records_nothing(
    client: TestClient, world: World, field: str, moment: str
) -> None:
    # given the resident's decisions as they stand
    resident_id = world.residents["in_given"]
    before = consents(world)
    # when the family doctor records a consent whose period starts or ends where UTC cannot follow
    response = client.post(
        f"/api/residents/{resident_id}/consents",
        json={"category": "clinical", "recipient_class": "health", field: moment},
        headers=world.token(Role.family_doctor),
    )
    # then it is refused with a code, and no decision is added or ended
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "request.invalid"
    assert response.json()["detail"][0]["type"] == "request.datetime"
    assert consents(world) == before


def test_a_consent_until_a_real_time_is_still_recorded_in_utc(client: TestClient, world: World) -> None:
    resident_id = world.residents["in_given"]
    before = consents(world)
    response = client.post(
        f"/api/residents/{resident_id}/consents",
        json={
            "category": "identity",
            "recipient_class": "social",
            "valid_until": "2027-01-01T08:00:00+08:00",
        },
        headers=world.token(Role.family_doctor),
    )
    assert response.status_code == 201, response.text
    assert response.json()["valid_until"].startswith("2027-01-01T00:00:00")
    assert len(consents(world)) == len(before) + 1
