"""The reassessment lists name their residents, so they need identity visible as well as clinical,
and carry a birth date only to roles that see the registry field group (docs/assessments.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.tiers.builders import capability_answers
from tests.tiers.named_lists import (
    BIRTH_DATE,
    HIDDEN_NAME,
    ContractedPair,
    contracted_pair,
    station_staff_serving,
)
from yiyang.app import create_app
from yiyang.assessments.service import AssessmentCapture, record_assessment
from yiyang.db import Database

NEVER, DUE = "/api/capability-reassessments/never", "/api/capability-reassessments/due"


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


@pytest.fixture
def pair(db: Database) -> ContractedPair:
    return contracted_pair(db)


def test_never_assessed_leaves_out_a_resident_who_denied_the_health_side_her_identity(
    client: TestClient, pair: ContractedPair
) -> None:
    # given two contracted residents over 65, never assessed, one of whom denied health x identity x care
    # when the family doctor lists who was never assessed
    response = client.get(NEVER, params={"community_id": pair.area_id}, headers=pair.doctor)
    # then only the other one is listed, with her birth date (a doctor sees the registry group)
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == [pair.shown]
    assert body["items"][0]["birth_date"] == BIRTH_DATE
    assert body["total"] == 1
    assert HIDDEN_NAME not in response.text
    # and a second page of one is empty
    assert client.get(NEVER, params={"limit": 1, "offset": 1}, headers=pair.doctor).json() == {
        "total": 1, "items": [],
    }  # fmt: skip


def test_reassessments_due_leave_her_out(client: TestClient, db: Database, pair: ContractedPair) -> None:
    # given both residents assessed two years ago, so both are overdue for reassessment
    two_years_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=730)
    with db.unit_of_work() as session:
        for resident_id in (pair.shown, pair.hidden):
            capture = AssessmentCapture(
                instrument="gbt42195", answers=capability_answers("mild"), assessed_at=two_years_ago,
                assessor="刘护士",
            )  # fmt: skip
            record_assessment(session, resident_id, capture, recorded_by="test")
    # when the family doctor lists the reassessments due
    response = client.get(DUE, headers=pair.doctor)
    # then only the other one is listed, and counted
    assert response.status_code == 200
    body = response.json()
    assert [item["resident_id"] for item in body["items"]] == [pair.shown]
    assert body["total"] == 1
    assert HIDDEN_NAME not in response.text


def test_never_assessed_carries_no_birth_date_to_a_role_without_the_registry_group(
    client: TestClient, db: Database, pair: ContractedPair
) -> None:
    # given station staff serving both residents, with their clinical data permitted to the station
    # (the deny was for the health side only, so the station sees both names)
    staff = station_staff_serving(db, pair)
    # when the staff list who was never assessed
    response = client.get(NEVER, headers=staff)
    # then both are listed, by name and age band, but without a birth date (registry group)
    assert response.status_code == 200
    body = response.json()
    assert sorted(item["id"] for item in body["items"]) == sorted([pair.shown, pair.hidden])
    assert body["total"] == 2
    assert all(item["birth_date"] is None for item in body["items"])
    assert BIRTH_DATE not in response.text
