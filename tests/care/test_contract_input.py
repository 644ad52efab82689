"""Bad contract input is a 4xx with a code, never a 500: an unknown doctor, dates out of reach."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.care.builders import NOW, World, add_resident, bearer, load, make_world
from yiyang.app import create_app
from yiyang.care import contracts
from yiyang.care.models import CareContract
from yiyang.db import Database
from yiyang.errors import Invalid

TODAY = dt.date(2026, 3, 2)  # NOW in Beijing


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return make_world(sqlite_db)


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    app = create_app(sqlite_db)
    app.state.clock = lambda: NOW
    with TestClient(app) as test_client:
        yield test_client


def contract_count(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(CareContract))


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"doctor_user_id": 999_999}, 404, "care.user.not_found"),
        ({"valid_from": "9999-12-01"}, 422, "care.contract.valid_from"),
        ({"valid_from": "0001-01-01"}, 422, "care.contract.valid_from"),
        ({"valid_from": "2027-03-04"}, 422, "care.contract.valid_from"),  # a year and two days ahead
        ({"valid_from": "2025-02-28"}, 422, "care.contract.valid_from"),  # a year and two days back
    ],
)
def test_a_contract_with_bad_input_is_refused_with_a_code(
    client: TestClient, sqlite_db: Database, world: World, change: dict, status: int, code: str
) -> None:
    # given a resident and a member of the team
    with sqlite_db.unit_of_work() as session:
        rid = add_resident(session, world)
    body = {"resident_id": rid, "team_id": world.team_id, "packages": ["basic"], **change}
    # when the doctor signs with the bad field
    response = client.post("/api/care/contracts", json=body, headers=bearer(sqlite_db, "dr_wang"))
    # then it is refused with its code and a message, and no contract is written
    assert response.status_code == status, response.text
    assert response.json()["code"] == code and response.json()["message"]
    assert contract_count(sqlite_db) == 0


@pytest.mark.parametrize("valid_from", ["9999-12-01", "0001-01-01"])
def test_a_group_starting_out_of_reach_is_refused(
    client: TestClient, sqlite_db: Database, world: World, valid_from: str
) -> None:
    with sqlite_db.unit_of_work() as session:
        rid = add_resident(session, world)
    body = {
        "team_id": world.team_id, "institution_id": world.care_home_id, "resident_ids": [rid],
        "packages": ["elderly"], "valid_from": valid_from,
    }  # fmt: skip
    response = client.post("/api/care/group-contracts", json=body, headers=bearer(sqlite_db, "dr_wang"))
    assert response.status_code == 422 and response.json()["code"] == "care.contract.valid_from"
    assert contract_count(sqlite_db) == 0


def test_contracts_start_within_a_year_of_today_either_way(db: Database) -> None:
    # given a doctor signing on TODAY
    world = make_world(db, panel_limit=5)
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        reach = contracts.CONTRACT_START_REACH
        # then a contract may start as far back as the reach (ahead, it gives the team no scope yet)
        rid = add_resident(session, world)
        contracts.sign_contract(session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"],
                                valid_from=TODAY - reach, months=24, now=NOW)  # fmt: skip
        # and no further either way
        for valid_from in (TODAY - reach - dt.timedelta(days=1), TODAY + reach + dt.timedelta(days=1)):
            with pytest.raises(Invalid) as refused:
                contracts.sign_contract(session, doctor, resident_id=add_resident(session, world),
                                        team_id=world.team_id, packages=["basic"], valid_from=valid_from, now=NOW)  # fmt: skip
            assert refused.value.code == "care.contract.valid_from"


def test_renewing_a_long_contract_early_is_refused_until_its_last_year(db: Database) -> None:
    # given a five-year contract signed today
    world = make_world(db)
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        rid = add_resident(session, world)
        old = contracts.sign_contract(
            session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], months=60, now=NOW
        )
        # when it is renewed at once, then the renewal (starting in five years) is refused
        with pytest.raises(Invalid) as refused:
            contracts.renew_contract(session, doctor, old.id, now=NOW)
        assert refused.value.code == "care.contract.valid_from"
        # and in its last year it renews
        later = NOW + dt.timedelta(days=4 * 365 + 30)
        assert contracts.renew_contract(session, doctor, old.id, now=later).renewed_from_id == old.id
