"""FHIR Consent with hostile input: a period that is partial or has no moment in 1900..2100, and a
patient reference in other scripts' digits, are refused with an OperationOutcome (never a 500),
and a consent already recorded stays as it was."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.access.consent_models import Consent
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database

from .conftest import FakeClock
from .test_consent import consent_json, fresh_resident
from .world import World, build_world

BAD_PERIODS = [
    ("start", "9999"),
    ("start", "2026-11"),
    ("end", "9999"),
    ("start", "0001-01-01T00:00:00+14:00"),
    ("end", "9999-12-31T23:59:59-05:00"),
    ("start", "1850-01-01T00:00:00Z"),
    ("end", "2150-01-01"),
]


@pytest.fixture
def world(sqlite_db: Database, clock: FakeClock) -> World:
    return build_world(sqlite_db, clock.now)


@pytest.fixture
def app_client(world: World, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(world.database, settings)
    app.state.clock = clock
    with TestClient(app) as client:
        yield client


def with_period(resident_id: int, bound: str, value: str) -> dict[str, Any]:
    resource = consent_json(resident_id)
    resource["provision"]["period"][bound] = value
    return resource


def codes(response: Any) -> list[str]:
    assert response.json()["resourceType"] == "OperationOutcome", response.text
    return [issue["details"]["coding"][0]["code"] for issue in response.json()["issue"]]


def consents_of(world: World, resident_id: int) -> list[tuple[int, Any]]:
    with world.database.unit_of_work() as session:
        rows = session.execute(select(Consent).where(Consent.resident_id == resident_id).order_by(Consent.id))
        return [(row.id, row.revoked_at) for row in rows.scalars()]


def other_digits(number: int) -> str:
    """The id in Arabic-Indic digits, which ``str.isdigit()`` and ``int()`` both accept."""
    return "".join(chr(0x0660 + int(digit)) for digit in str(number))


@pytest.mark.parametrize(("bound", "value"), BAD_PERIODS)
def test_a_new_consent_with_a_period_outside_the_calendar_is_refused(
    app_client: TestClient, world: World, bound: str, value: str
) -> None:
    # given a resident with no decision
    resident_id = fresh_resident(world)
    # when a Consent arrives whose period is a partial date or has no moment in 1900..2100
    response = app_client.post(
        "/fhir/Consent", json=with_period(resident_id, bound, value), headers=world.token(Role.family_doctor)
    )
    # then it is refused as an invalid Consent naming the period, and nothing is recorded
    assert response.status_code == 422
    assert codes(response) == ["fhir.consent.invalid"]
    assert f"provision.period.{bound}" in response.json()["issue"][0]["details"]["text"]
    assert consents_of(world, resident_id) == []


@pytest.mark.parametrize(("bound", "value"), BAD_PERIODS)
def test_an_update_with_a_period_outside_the_calendar_leaves_the_consent_as_it_was(
    app_client: TestClient, world: World, bound: str, value: str
) -> None:
    # given a consent recorded through the facade
    resident_id = fresh_resident(world)
    doctor = world.token(Role.family_doctor)
    created = app_client.post("/fhir/Consent", json=consent_json(resident_id), headers=doctor)
    assert created.status_code == 201, created.text
    before = consents_of(world, resident_id)
    # when it is updated with a period outside the calendar
    response = app_client.put(
        f"/fhir/Consent/{created.json()['id']}", json=with_period(resident_id, bound, value), headers=doctor
    )
    # then the update is refused and the recorded consent is unchanged and still in force
    assert response.status_code == 422
    assert codes(response) == ["fhir.consent.invalid"]
    assert consents_of(world, resident_id) == before
    assert (
        app_client.get(f"/fhir/Consent/{created.json()['id']}", headers=doctor).json()["status"] == "active"
    )


def test_a_full_date_period_is_still_accepted(app_client: TestClient, world: World) -> None:
    resident_id = fresh_resident(world)
    resource = consent_json(resident_id)
    resource["provision"]["period"] = {"start": "2026-11-01", "end": "2027-11-01"}
    response = app_client.post("/fhir/Consent", json=resource, headers=world.token(Role.family_doctor))
    assert response.status_code == 201, response.text
    assert response.json()["provision"]["period"]["start"] == "2026-11-01T00:00:00Z"


@pytest.mark.parametrize("number", ["²", "arabic-indic", "1" * 40])
def test_a_patient_reference_that_is_not_ascii_digits_is_refused(
    app_client: TestClient, world: World, number: str
) -> None:
    # given a resident, and a reference to it in superscript or Arabic-Indic digits, or far too long
    resident_id = fresh_resident(world)
    number = other_digits(resident_id) if number == "arabic-indic" else number
    resource = {**consent_json(resident_id), "patient": {"reference": f"Patient/{number}"}}
    # when posted
    response = app_client.post("/fhir/Consent", json=resource, headers=world.token(Role.family_doctor))
    # then it is refused, and the resident gained no consent
    assert response.status_code == 422
    assert codes(response) == ["fhir.consent.invalid"]
    assert consents_of(world, resident_id) == []


def test_a_consent_transaction_with_such_a_reference_records_nothing(
    app_client: TestClient, world: World
) -> None:
    resident_id = fresh_resident(world)
    good = {"resource": consent_json(resident_id), "request": {"method": "POST", "url": "Consent"}}
    bad = {
        "resource": {
            **consent_json(resident_id),
            "patient": {"reference": f"Patient/{other_digits(resident_id)}"},
        },
        "request": {"method": "POST", "url": "Consent"},
    }
    response = app_client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [good, bad]},
        headers=world.token(Role.family_doctor),
    )
    assert response.status_code == 400
    assert codes(response) == ["fhir.consent.invalid"]
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert consents_of(world, resident_id) == []
