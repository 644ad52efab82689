"""A visit date outside the calendar the schedules can reach is a 422 with a code, and closes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.care.builders import NOW, World, add_resident, bearer, make_world
from yiyang.app import create_app
from yiyang.care.day import run_care_day
from yiyang.care.models import WorkItem, WorkStatus
from yiyang.db import Database


@pytest.fixture
def world(db: Database) -> World:
    return make_world(db)


@pytest.fixture
def client(db: Database, world: World) -> Iterator[TestClient]:
    app = create_app(db)
    app.state.clock = lambda: NOW
    with TestClient(app) as test_client:
        yield test_client


def open_items(client: TestClient, db: Database, world: World) -> tuple[dict[str, str], dict[str, int]]:
    """A 75-year-old with hypertension under the basic and chronic packages: a follow-up and a health check."""
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
    doctor = bearer(db, "dr_wang")
    body = {"resident_id": rid, "team_id": world.team_id, "packages": ["basic", "chronic"]}
    assert client.post("/api/care/contracts", json=body, headers=doctor).status_code == 201
    run_care_day(db, NOW)
    mine = client.get("/api/care/work-items/mine", headers=doctor).json()
    return doctor, {item["programme"]: item["id"] for item in mine}


def counts(db: Database) -> tuple[int, int]:
    with db.unit_of_work() as session:
        total = session.scalar(select(func.count()).select_from(WorkItem))
        done = session.scalar(
            select(func.count()).select_from(WorkItem).where(WorkItem.status == WorkStatus.done)
        )
    return total, done


@pytest.mark.parametrize("programme", ["hypertension", "elderly_check"])
@pytest.mark.parametrize("visited_on", ["9999-12-31", "0001-01-01", "2101-01-01", "1899-12-31"])
def test_a_visit_date_off_the_calendar_is_a_422_and_closes_nothing(
    client: TestClient, db: Database, world: World, programme: str, visited_on: str
) -> None:
    # given an open follow-up and an open health check
    doctor, items = open_items(client, db, world)
    before = counts(db)
    # when the doctor records a visit on a day no schedule can count from
    response = client.post(
        f"/api/care/work-items/{items[programme]}/outcome",
        json={"visited_on": visited_on, "systolic": 158, "diastolic": 96},
        headers=doctor,
    )
    # then it is refused with a code, and no item is closed or scheduled
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "request.invalid"
    assert response.json()["detail"][0]["type"] == "request.date"
    assert counts(db) == before == (2, 0)


def test_a_visit_on_a_real_day_still_closes_and_schedules(
    client: TestClient, db: Database, world: World
) -> None:
    doctor, items = open_items(client, db, world)
    done = client.post(
        f"/api/care/work-items/{items['elderly_check']}/outcome",
        json={"visited_on": "2026-03-01"},
        headers=doctor,
    )
    assert done.status_code == 200, done.text
    assert done.json()["next_items"][0]["due_from"] == "2027-01-01"
    assert counts(db) == (3, 1)


@pytest.mark.parametrize("programme", ["hypertension", "elderly_check"])
def test_a_visit_dated_after_today_is_a_422_and_closes_nothing(
    client: TestClient, db: Database, world: World, programme: str
) -> None:
    # given an open follow-up and an open health check on 2 March 2026 (Beijing)
    doctor, items = open_items(client, db, world)
    before = counts(db)
    # when the doctor mistypes the visit's year, then it is refused with a code
    response = client.post(
        f"/api/care/work-items/{items[programme]}/outcome",
        json={"visited_on": "2062-03-02", "systolic": 128, "diastolic": 76},
        headers=doctor,
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "care.outcome.visited_on"
    assert response.json()["detail"]["latest"] == "2026-03-02"
    # and nothing is closed or scheduled years ahead
    assert counts(db) == before == (2, 0)


def test_a_visit_dated_today_in_beijing_is_accepted(client: TestClient, db: Database, world: World) -> None:
    # the clock reads 01:00 UTC: already 2 March in Beijing, where the visit was made
    doctor, items = open_items(client, db, world)
    done = client.post(
        f"/api/care/work-items/{items['hypertension']}/outcome",
        json={"visited_on": "2026-03-02", "systolic": 128, "diastolic": 76},
        headers=doctor,
    )
    assert done.status_code == 200, done.text
    assert done.json()["next_items"][0]["due_by"] == "2026-05-31"
