"""The tier list and the /tiers page name their residents, so they need identity visible as well
as clinical (docs/tiers.md, docs/care.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.tiers.builders import COMMUNITY
from tests.tiers.named_lists import BIRTH_DATE, HIDDEN_NAME, SHOWN_NAME, ContractedPair, contracted_pair
from yiyang.app import create_app
from yiyang.db import Database


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


@pytest.fixture
def pair(db: Database) -> ContractedPair:
    return contracted_pair(db)


def test_tier_list_leaves_out_a_resident_who_denied_the_health_side_her_identity(
    client: TestClient, pair: ContractedPair
) -> None:
    # given two contracted residents, one of whom denied health x identity x care
    # (the doctor still sees her tier alone, but not her profile)
    assert client.get(f"/api/residents/{pair.hidden}/tier", headers=pair.doctor).status_code == 200
    assert client.get(f"/api/residents/{pair.hidden}", headers=pair.doctor).status_code == 403
    # when the family doctor lists the community's residents by tier
    response = client.get("/api/tiers", params={"community_id": pair.area_id}, headers=pair.doctor)
    # then only the other one is listed, by name, and the total counts only her
    assert response.status_code == 200
    body = response.json()
    assert [item["resident_id"] for item in body["items"]] == [pair.shown]
    assert body["items"][0]["name"] == SHOWN_NAME
    assert body["total"] == 1
    assert HIDDEN_NAME not in response.text


def test_tier_list_pages_count_only_what_is_listed(client: TestClient, pair: ContractedPair) -> None:
    # given the same two residents
    # when the doctor asks for the second page of one
    response = client.get("/api/tiers", params={"limit": 1, "offset": 1}, headers=pair.doctor)
    # then there is no second page: the total is the one resident listed
    assert response.json() == {"total": 1, "items": []}


def test_tiers_page_of_the_community_leaves_her_out(client: TestClient, pair: ContractedPair) -> None:
    # given the same two residents
    # when the doctor opens the community's residents by tier
    page = client.get(f"/tiers?community={COMMUNITY}", headers=pair.doctor)
    # then the other one is listed and she is not, on one page
    assert page.status_code == 200
    assert SHOWN_NAME in page.text and f'href="/residents/{pair.shown}?' in page.text
    assert HIDDEN_NAME not in page.text and f'href="/residents/{pair.hidden}?' not in page.text
    assert "1 / 1" in page.text


def test_tiers_page_counts_ages_on_the_china_date_of_the_clock(
    client: TestClient, pair: ContractedPair
) -> None:
    # given the clock at 04:00 on her 82nd birthday in China, still the day before in UTC
    client.app.state.clock = lambda: dt.datetime(2027, 3, 11, 20, 0, tzinfo=dt.UTC)
    assert BIRTH_DATE == "1945-03-12"
    # when the doctor opens the community's residents by tier
    page = client.get(f"/tiers?community={COMMUNITY}", headers=pair.doctor)
    # then her age is the China day's, not the server's
    assert page.status_code == 200 and SHOWN_NAME in page.text
    assert "<td>82</td>" in page.text
