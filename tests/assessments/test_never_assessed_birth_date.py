"""``GET /api/capability-reassessments/never`` withholds the birth date from readers without the
registry field group; its age filter and its order must not give it back. Such a reader gets the
list of the default age (65) in resident order, and another ``min_age`` is refused as a search by
birth date (``resident.search.registry``, audited), as the registry refuses it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.tiers.named_lists import ContractedPair, contracted_pair, station_staff_serving
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.residents.models import Resident

NEVER = "/api/capability-reassessments/never"
SEARCH_REFUSED = "resident.search.registry"


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db)) as test_client:
        yield test_client


@pytest.fixture
def pair(sqlite_db: Database) -> ContractedPair:
    """The contracted pair, born so that birth-date order is the reverse of resident order: the
    lower id was born later (1950), the higher earlier (1940)."""
    pair = contracted_pair(sqlite_db)
    first, second = sorted((pair.shown, pair.hidden))
    with sqlite_db.unit_of_work() as session:
        for resident_id, born in ((first, dt.date(1950, 6, 1)), (second, dt.date(1940, 6, 1))):
            resident = session.get(Resident, resident_id)
            assert resident is not None
            resident.birth_date = born
    return pair


def denials(database: Database) -> list[str | None]:
    with database.unit_of_work() as session:
        return list(
            session.scalars(
                select(AuditEvent.reason).where(
                    AuditEvent.outcome == AuditOutcome.denied, AuditEvent.resource_type == "never_assessed"
                )
            )
        )


def test_station_staff_may_not_search_by_age(
    client: TestClient, sqlite_db: Database, pair: ContractedPair
) -> None:
    # given station staff serving both residents (no registry group: birth dates withheld)
    staff = station_staff_serving(sqlite_db, pair)
    # when they list those never assessed at another age than the default, from 0 to 120
    refused = [client.get(NEVER, params={"min_age": age}, headers=staff) for age in (0, 70, 80, 120)]
    # then each is refused as a search by birth date, and audited
    assert {r.status_code for r in refused} == {403}
    assert {r.json()["code"] for r in refused} == {SEARCH_REFUSED}
    assert denials(sqlite_db) == [f"{SEARCH_REFUSED}: birth_date"] * 4


def test_station_staff_get_the_default_list_in_resident_order(
    client: TestClient, sqlite_db: Database, pair: ContractedPair
) -> None:
    staff = station_staff_serving(sqlite_db, pair)
    # when they list those never assessed at the default age, in full or a page at a time
    listed = client.get(NEVER, headers=staff)
    also = client.get(NEVER, params={"min_age": 65}, headers=staff)
    pages = [client.get(NEVER, params={"limit": 1, "offset": n}, headers=staff).json() for n in (0, 1)]
    # then both are listed by resident id, not by birth date, and with no birth date
    assert listed.status_code == 200 and also.status_code == 200
    ids = [item["id"] for item in listed.json()["items"]]
    assert ids == sorted((pair.shown, pair.hidden))
    assert [item["id"] for item in also.json()["items"]] == ids
    assert [page["items"][0]["id"] for page in pages] == ids
    assert all(item["birth_date"] is None for item in listed.json()["items"])


def test_a_reader_with_the_registry_group_keeps_the_age_filter_and_the_birth_date_order(
    client: TestClient, pair: ContractedPair
) -> None:
    # given the family doctor (registry group), who sees only the resident who did not deny identity
    # when she lists from 80 up and from 65 up
    older = client.get(NEVER, params={"min_age": 80}, headers=pair.doctor)
    all_ages = client.get(NEVER, params={"min_age": 65}, headers=pair.doctor)
    # then the filter applies and birth dates are shown
    assert older.status_code == 200 and all_ages.status_code == 200
    born = {item["id"]: item["birth_date"] for item in all_ages.json()["items"]}
    assert born == {pair.shown: born[pair.shown]} and born[pair.shown] is not None
    expected = [pair.shown] if born[pair.shown] == "1940-06-01" else []
    assert [item["id"] for item in older.json()["items"]] == expected
