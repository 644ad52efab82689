"""The "my work" page counts all of the person's open work, not only the rows it lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.care.builders import NOW, World, add_resident, bearer, load, make_world
from yiyang.app import create_app
from yiyang.care import contracts, overdue, service
from yiyang.care.models import WorkKind
from yiyang.db import Database


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return make_world(sqlite_db)


@pytest.fixture
def client(sqlite_db: Database, world: World) -> Iterator[TestClient]:
    app = create_app(sqlite_db)
    app.state.clock = lambda: NOW
    with TestClient(app) as test_client:
        yield test_client


def test_my_work_counts_beyond_the_rows_it_lists(
    client: TestClient, sqlite_db: Database, world: World
) -> None:
    # given a team with 230 open visits: 30 overdue, 200 due (more than the page lists)
    today = NOW.date()
    with sqlite_db.unit_of_work() as session:
        rid = add_resident(session, world)
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["rehab"], now=NOW)  # fmt: skip
        for n in range(230):
            due_by = today - dt.timedelta(days=1) if n < 30 else today + dt.timedelta(days=5)
            service.create_work_item(
                session, resident_id=rid, kind=WorkKind.home_visit, programme="rehab", rule="package.rehab.monthly",
                due_from=due_by - dt.timedelta(days=7), due_by=due_by, now=NOW, by="test",
                owner_organisation_id=world.team_id,
            )  # fmt: skip
        doctor = load(session, world.doctor_id)
        assert len(overdue.my_work(session, doctor, now=NOW)) == 200
        assert overdue.my_work_counts(session, doctor, now=NOW) == {"overdue": 30, "due": 200}
    # when the doctor opens the page, then it says how much there is, not how much it lists
    html = client.get("/care/my-work?lang=en", headers=bearer(sqlite_db, "dr_wang")).text
    assert "230 open" in html and "(200)" in html and "(30)" in html
