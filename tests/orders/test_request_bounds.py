"""A requested time with no UTC moment, or past any sane date, is a 422 with a code, and no order
is placed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.orders.district import NOW, PASSWORD, District
from yiyang.app import create_app
from yiyang.care.orders.models import ServiceOrder
from yiyang.db import Database


@pytest.fixture
def client(db: Database, place: District) -> Iterator[TestClient]:
    app = create_app(db)
    app.state.clock = lambda: NOW
    with TestClient(app) as test_client:
        yield test_client


def officer(client: TestClient) -> dict[str, str]:
    """A civil-affairs officer over the district, who orders for elders."""
    response = client.post("/api/auth/login", json={"username": "officer", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def orders(db: Database) -> int:
    with db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(ServiceOrder))


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59-14:00", "2101-01-01T08:00:00+08:00"]
)
def test_a_requested_time_off_the_calendar_is_a_422_and_places_nothing(
    client: TestClient, db: Database, place: District, moment: str
) -> None:
    # given an elder the officer may order for
    # when the officer asks for a meal at a time UTC cannot follow
    response = client.post(
        f"/api/residents/{place.elder}/service-orders",
        json={"service_code": "meal", "requested_for": moment},
        headers=officer(client),
    )
    # then it is refused with a code, and no order is placed
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "request.invalid"
    assert response.json()["detail"][0]["type"] == "request.datetime"
    assert orders(db) == 0


def test_a_requested_time_in_china_time_is_still_placed(
    client: TestClient, db: Database, place: District
) -> None:
    tomorrow = (NOW + dt.timedelta(days=1)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    response = client.post(
        f"/api/residents/{place.elder}/service-orders",
        json={"service_code": "meal", "requested_for": tomorrow.isoformat()},
        headers=officer(client),
    )
    assert response.status_code == 201, response.text
    assert dt.datetime.fromisoformat(response.json()["requested_for"]) == NOW + dt.timedelta(days=1)
    assert orders(db) == 1
