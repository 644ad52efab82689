"""The residents list minimises like the profile: a birth date only for readers shown the registry
field group; searching by ID number only for them too (a search is an oracle for the number).

The district is tests/access/world.py: one user per role, residents in and out of scope.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.residents.identity import check_character
from yiyang.residents.models import Resident

from ..access.world import World, build_world

REFUSED = "resident.search.registry"
FIRST17 = "11010819450101002"  # in_given's birth date, 1945-01-01
ID_NUMBER = FIRST17 + check_character(FIRST17)
NO_REGISTRY = [Role.volunteer, Role.grid_worker, Role.social_worker, Role.station_staff]
REGISTRY = [Role.family_doctor, Role.civil_affairs_officer, Role.health_officer]


def build(database: Database) -> World:
    built = build_world(database)
    with database.unit_of_work() as session:
        session.get(Resident, built.residents["in_given"]).id_number = ID_NUMBER
    return built


@pytest.fixture(scope="module")
def world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One district for the module on SQLite; searches leave only audit rows behind."""
    folder = tmp_path_factory.mktemp("district")
    shutil.copy(sqlite_template, folder / "yiyang.db")
    database = Database(f"sqlite:///{folder / 'yiyang.db'}")
    yield build(database)
    database.dispose()


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


@pytest.fixture
def since(world: World) -> int:
    """The newest audit row before the test: its denials are the ones after it."""
    with world.database.unit_of_work() as session:
        return session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar_one()


def listed(client: TestClient, world: World, role: Role, **params: str) -> dict[int, dict]:
    response = client.get("/api/residents", params={"limit": "200", **params}, headers=world.token(role))
    assert response.status_code == 200, response.text[:300]
    return {item["id"]: item for item in response.json()["items"]}


def denials(world: World, since: int = 0) -> list[AuditEvent]:
    with world.database.unit_of_work() as session:
        return list(
            session.execute(
                select(AuditEvent).where(
                    AuditEvent.id > since,
                    AuditEvent.outcome == AuditOutcome.denied,
                    AuditEvent.reason.startswith(REFUSED),
                )
            ).scalars()
        )


@pytest.mark.parametrize("role", NO_REGISTRY, ids=str)
def test_list_leaves_the_birth_date_out_without_the_registry_group(
    client: TestClient, world: World, role: Role
) -> None:
    # given a role without the registry field group, and a resident in its scope who consented
    resident_id = world.residents["in_given"]
    # when it lists residents
    items = listed(client, world, role)
    # then the resident is listed, without a birth date, as its profile shows none
    assert resident_id in items and items[resident_id]["name"]
    assert "birth_date" not in items[resident_id]
    profile = client.get(f"/api/residents/{resident_id}", headers=world.token(role)).json()
    assert "registry" not in profile["field_groups"]
    assert "birth_date" not in {fact["attribute"] for fact in profile["facts"]}


@pytest.mark.parametrize("role", REGISTRY, ids=str)
def test_list_carries_the_birth_date_with_the_registry_group(
    client: TestClient, world: World, role: Role
) -> None:
    # given a role shown the registry field group
    resident_id = world.residents["in_given"]
    # when it lists residents
    items = listed(client, world, role)
    # then the birth date is there
    assert items[resident_id]["birth_date"] == "1945-01-01"


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_list_item_shows_a_birth_date_exactly_when_the_profile_does(
    client: TestClient, world: World, role: Role
) -> None:
    # given any role and every resident it may list
    for resident_id, item in listed(client, world, role).items():
        # when its profile of the same resident is read
        profile = client.get(f"/api/residents/{resident_id}", headers=world.token(role)).json()
        # then the list and the profile agree on the registry group
        assert ("birth_date" in item) == ("registry" in profile["field_groups"]), (role, resident_id)


@pytest.mark.parametrize("role", NO_REGISTRY, ids=str)
def test_search_by_id_number_is_refused_without_the_registry_group(
    client: TestClient, world: World, since: int, role: Role
) -> None:
    # given a role without the registry group, and a resident in its scope whose ID number is known
    # when it searches the list by that ID number
    response = client.get("/api/residents", params={"q": ID_NUMBER}, headers=world.token(role))
    # then it is refused with a code and a message, and learns nothing of whether anyone matched
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == REFUSED and "(" in body["message"]
    assert "items" not in body and "total" not in body
    # and the refusal is audited as denied, without the number
    rows = denials(world, since)
    assert len(rows) == 1 and rows[0].user_id == world.users[role.value]
    assert rows[0].field_group == "registry" and ID_NUMBER not in (rows[0].reason or "")


def test_search_by_name_stays_open_without_the_registry_group(
    client: TestClient, world: World, since: int
) -> None:
    # given a volunteer paired with the resident
    # when it searches by the resident's name
    items = listed(client, world, Role.volunteer, q="测试0")
    # then the resident is found (without a birth date), and nothing was refused
    assert list(items) == [world.residents["in_given"]]
    assert "birth_date" not in items[world.residents["in_given"]]
    assert denials(world, since) == []


@pytest.mark.parametrize("role", REGISTRY, ids=str)
def test_search_by_id_number_still_finds_the_resident_with_the_registry_group(
    client: TestClient, world: World, since: int, role: Role
) -> None:
    # given a role shown the registry group
    # when it searches by the resident's ID number (spaces and all)
    items = listed(client, world, role, q=f"{ID_NUMBER[:6]} {ID_NUMBER[6:]}")
    # then it finds the resident
    assert list(items) == [world.residents["in_given"]]
    assert denials(world, since) == []


def test_staff_page_leaves_birth_dates_out_and_refuses_id_number_search(
    client: TestClient, world: World, since: int
) -> None:
    # given a grid worker and a family doctor, both with the resident in scope
    worker, doctor = world.token(Role.grid_worker), world.token(Role.family_doctor)
    # when each opens the staff residents page
    worker_page = client.get("/residents", headers=worker)
    doctor_page = client.get("/residents", headers=doctor)
    # then only the family doctor's shows birth dates
    assert worker_page.status_code == doctor_page.status_code == 200
    assert f'href="/residents/{world.residents["in_given"]}?' in worker_page.text
    assert "1945-01-01" not in worker_page.text and "1945-01-01" in doctor_page.text
    # and searching the page by ID number is refused to the grid worker (audited), not the doctor
    refused = client.get("/residents", params={"q": ID_NUMBER}, headers=worker)
    assert refused.status_code == 403 and "测试" not in refused.text
    assert len(denials(world, since)) == 1
    found = client.get("/residents", params={"q": ID_NUMBER}, headers=doctor)
    assert found.status_code == 200 and f'href="/residents/{world.residents["in_given"]}?' in found.text


def test_on_both_databases_a_volunteer_lists_no_birth_date_nor_searches_by_id_number(db: Database) -> None:
    # given the district on SQLite and on PostgreSQL, the resident paired with the volunteer
    built = build(db)
    resident_id = built.residents["in_given"]
    with TestClient(create_app(db)) as client:
        # when the volunteer and the family doctor list residents and search by the ID number
        volunteer = listed(client, built, Role.volunteer)
        doctor = listed(client, built, Role.family_doctor)
        refused = client.get("/api/residents", params={"q": ID_NUMBER}, headers=built.token(Role.volunteer))
        by_number = listed(client, built, Role.family_doctor, q=ID_NUMBER)
    # then only the doctor sees the birth date and finds the resident by number
    assert "birth_date" not in volunteer[resident_id] and doctor[resident_id]["birth_date"] == "1945-01-01"
    assert refused.status_code == 403 and refused.json()["code"] == REFUSED
    assert list(by_number) == [resident_id]
    # and the volunteer's refusal is kept in the audit trail
    assert [row.user_id for row in denials(built)] == [built.users[Role.volunteer.value]]
