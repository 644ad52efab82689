"""FHIR Patient search by a registry value (ID number, health record number, birth date) answers
whether someone has it, so only readers shown the registry field group may search by it; others
get a 403 OperationOutcome, audited. Name search and our own resident id stay open.

The district is tests/access/world.py: one user per role, residents in and out of scope.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import func, select

from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.fhir.mapping import HEALTH_RECORD_SYSTEM, RESIDENT_ID_SYSTEM, RESIDENT_SYSTEM
from yiyang.residents.identity import check_character
from yiyang.residents.models import Feed, LinkMethod, Resident, SourceRecord

from ..access.world import World, build_world

REFUSED = "resident.search.registry"
FIRST17 = "11010819450101002"  # in_given's birth date, 1945-01-01
ID_NUMBER = FIRST17 + check_character(FIRST17)
RECORD_NUMBER = "11010800100100001"
NO_REGISTRY = [Role.volunteer, Role.grid_worker, Role.social_worker, Role.station_staff]
REGISTRY = [Role.family_doctor, Role.civil_affairs_officer, Role.health_officer]
REGISTRY_SEARCHES: list[dict[str, Any]] = [
    {"identifier": f"{RESIDENT_ID_SYSTEM}|{ID_NUMBER}"},
    {"identifier": ID_NUMBER},  # no system: compared with the ID number too
    {"identifier": f"{HEALTH_RECORD_SYSTEM}|{RECORD_NUMBER}"},
    {"birthdate": "1945-01-01"},
    {"birthdate": ["ge1945", "lt1946"], "name": "测试"},
    # comma-separated values (FHIR: OR) are checked as each value alone would be
    {"identifier": f"{RESIDENT_SYSTEM}|999999,{ID_NUMBER}"},
    {"identifier": f"{HEALTH_RECORD_SYSTEM}|nobody,{HEALTH_RECORD_SYSTEM}|{RECORD_NUMBER}"},
    {"birthdate": "1900,1945-01-01"},
]


def build(database: Database) -> World:
    built = build_world(database)
    with database.unit_of_work() as session:
        resident_id = built.residents["in_given"]
        session.get(Resident, resident_id).id_number = ID_NUMBER
        session.add(
            SourceRecord(
                feed=Feed.health, source_key=RECORD_NUMBER, resident_id=resident_id,
                observed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), content_hash="0" * 32,
                payload={"name": "测试0"}, link_method=LinkMethod.new,
            )
        )  # fmt: skip
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


def search(client: TestClient, world: World, role: Role, params: dict[str, Any]) -> Any:
    return client.get("/fhir/Patient", params=params, headers=world.token(role))


def found(response: Any) -> list[int]:
    assert response.status_code == 200, response.text[:300]
    bundle = Bundle.model_validate(response.json())
    return [int(entry.resource.id) for entry in bundle.entry or ()]


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


@pytest.mark.parametrize("params", REGISTRY_SEARCHES, ids=str)
@pytest.mark.parametrize("role", NO_REGISTRY, ids=str)
def test_search_by_a_registry_value_is_refused_without_the_registry_group(
    client: TestClient, world: World, since: int, role: Role, params: dict[str, Any]
) -> None:
    # given a role without the registry field group, the resident in its scope and consenting
    # when it searches Patients by the resident's ID number, record number or birth date
    response = search(client, world, role, params)
    # then it is refused with an OperationOutcome naming the code, and no Patient, no total
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate(response.json())
    issue = outcome.issue[0]
    assert issue.code == "forbidden" and issue.details.coding[0].code == REFUSED
    assert "(" in issue.details.text
    assert "测试" not in response.text and "total" not in response.json()
    # and the refusal is audited as denied, naming the user and the registry group, not the value
    rows = denials(world, since)
    assert len(rows) == 1 and rows[0].user_id == world.users[role.value]
    assert rows[0].field_group == "registry" and rows[0].resource_type == "Patient"
    assert ID_NUMBER not in (rows[0].reason or "") and RECORD_NUMBER not in (rows[0].reason or "")


@pytest.mark.parametrize("params", REGISTRY_SEARCHES, ids=str)
@pytest.mark.parametrize("role", REGISTRY, ids=str)
def test_search_by_a_registry_value_works_with_the_registry_group(
    client: TestClient, world: World, since: int, role: Role, params: dict[str, Any]
) -> None:
    # given a role shown the registry group
    # when it searches by the resident's ID number, record number or birth date
    # then it finds the resident, and nothing is refused
    assert found(search(client, world, role, params)) == [world.residents["in_given"]]
    assert denials(world, since) == []


@pytest.mark.parametrize("role", NO_REGISTRY, ids=str)
def test_search_by_name_or_resident_id_stays_open_without_the_registry_group(
    client: TestClient, world: World, since: int, role: Role
) -> None:
    # given a role without the registry group
    resident_id = world.residents["in_given"]
    # when it searches by name, or by our own resident id
    by_name = search(client, world, role, {"name": "测试0"})
    by_id = search(client, world, role, {"identifier": f"{RESIDENT_SYSTEM}|{resident_id}"})
    # then it finds the resident, whose Patient carries no birth date and no ID number
    assert found(by_name) == found(by_id) == [resident_id]
    patient = by_name.json()["entry"][0]["resource"]
    assert "birthDate" not in patient
    assert {i["system"] for i in patient.get("identifier", [])} <= {RESIDENT_SYSTEM}
    assert denials(world, since) == []


def test_on_both_databases_a_volunteer_cannot_search_by_id_number_or_birth_date(db: Database) -> None:
    # given the district on SQLite and on PostgreSQL, the resident paired with the volunteer
    built = build(db)
    resident_id = built.residents["in_given"]
    with TestClient(create_app(db)) as client:
        # when the volunteer and the family doctor search by the ID number and by the birth date
        answers = {
            role: [search(client, built, role, params) for params in REGISTRY_SEARCHES[:4]]
            for role in (Role.volunteer, Role.family_doctor)
        }
    # then the volunteer is refused each time, audited, and the doctor finds the resident each time
    assert [r.status_code for r in answers[Role.volunteer]] == [403] * 4
    assert {r.json()["issue"][0]["details"]["coding"][0]["code"] for r in answers[Role.volunteer]} == {
        REFUSED
    }
    assert [found(r) for r in answers[Role.family_doctor]] == [[resident_id]] * 4
    assert [row.user_id for row in denials(built)] == [built.users[Role.volunteer.value]] * 4
