"""A binding period with a time that has no UTC moment, or lies past any sane date, is a 422 with a
code, and no binding is made."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yiyang.access import service as access
from yiyang.access.actor import CredentialKind
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.devices.models import DeviceBinding
from yiyang.residents.models import Resident


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


@pytest.fixture
def admin(db: Database) -> dict[str, str]:
    with db.unit_of_work() as session:
        user = access.create_user(session, "admin1", password="correct-horse-battery")
        access.grant_role(session, user, Role.district_admin)
        issued = access.issue_credential(
            session, user, CredentialKind.bearer, dt.timedelta(hours=1), utcnow()
        )
    return {"Authorization": f"Bearer {issued.secret}"}


@pytest.fixture
def scene(client: TestClient, admin: dict[str, str], db: Database) -> tuple[int, int]:
    """A radar and a resident it could watch over."""
    with db.unit_of_work() as session:
        resident = Resident(name="赵淑珍", name_pinyin="zhao shu zhen", sex="F")
        session.add(resident)
        session.flush()
        resident_id = resident.id
    device = client.post("/api/devices", json={"uid": "RAD-1", "kind": "radar"}, headers=admin).json()
    return device["id"], resident_id


def bindings(db: Database) -> int:
    with db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(DeviceBinding))


@pytest.mark.parametrize("field", ["valid_from", "valid_to"])
@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "2101-01-01T00:00:00Z",
    ],
)
def test_a_binding_time_off_the_calendar_is_a_422_and_binds_nothing(
    client: TestClient, admin: dict[str, str], db: Database, scene: tuple[int, int], field: str, moment: str
) -> None:
    # given a registered radar and a resident
    device_id, resident_id = scene
    body = {"resident_id": resident_id, "valid_from": "2026-11-01T00:00:00+08:00", field: moment}
    # when the administrator binds them over a period UTC cannot follow
    response = client.post(f"/api/devices/{device_id}/bindings", json=body, headers=admin)
    # then it is refused with a code, and nothing is bound
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "request.invalid"
    assert response.json()["detail"][0]["type"] == "request.datetime"
    assert bindings(db) == 0


def test_ending_a_binding_off_the_calendar_is_a_422_and_ends_nothing(
    client: TestClient, admin: dict[str, str], db: Database, scene: tuple[int, int]
) -> None:
    device_id, resident_id = scene
    body = {"resident_id": resident_id, "valid_from": "2026-11-01T00:00:00+08:00"}
    binding = client.post(f"/api/devices/{device_id}/bindings", json=body, headers=admin).json()
    response = client.post(
        f"/api/devices/{device_id}/bindings/{binding['id']}/end",
        json={"valid_to": "9999-12-31T23:59:59-05:00"},
        headers=admin,
    )
    assert response.status_code == 422, response.text
    with db.unit_of_work() as session:
        assert session.get(DeviceBinding, binding["id"]).valid_to is None


def test_a_binding_from_a_real_time_is_still_made_in_utc(
    client: TestClient, admin: dict[str, str], db: Database, scene: tuple[int, int]
) -> None:
    device_id, resident_id = scene
    body = {"resident_id": resident_id, "valid_from": "2026-11-01T08:00:00+08:00"}
    created = client.post(f"/api/devices/{device_id}/bindings", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["valid_from"].startswith("2026-11-01T00:00:00")
    assert bindings(db) == 1
