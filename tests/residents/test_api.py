"""The registry's JSON API: search, profile with provenance, sources, merge and unmerge, reviews."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from yiyang.app import create_app
from yiyang.db import Database
from yiyang.geo.service import import_geography
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file

from ..signed_in import sign_in_as_clinician

SAMPLES = Path(__file__).parents[2] / "docs" / "samples"


@pytest.fixture
def client(db: Database) -> TestClient:
    with db.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    import_file(db, Feed.health, SAMPLES / "health.csv")
    import_file(db, Feed.insurance, SAMPLES / "insurance_gb18030.csv")
    client = TestClient(create_app(db))
    sign_in_as_clinician(client, db, "clerk-7")
    return client


def find(client: TestClient, name: str) -> int:
    page = client.get("/api/residents", params={"q": name}).json()
    assert page["total"] == 1, page
    return page["items"][0]["id"]


def test_profile_names_the_source_of_every_fact(client: TestClient) -> None:
    profile = client.get(f"/api/residents/{find(client, '王秀英')}").json()
    facts = {f["attribute"]: f for f in profile["facts"]}
    assert facts["name"]["feed"] == "health" and facts["name"]["source_key"] == "11010800100100001"
    assert facts["insurance_type"]["feed"] == "insurance"
    assert facts["name"]["observed_at"] and facts["name"]["recorded_at"]
    assert {c["code"] for c in profile["conditions"]} >= {"I10", "E11"}
    assert any(o["code"] == "85354-9" for o in profile["latest_observations"])


def test_search_by_id_number_and_phone(client: TestClient) -> None:
    assert client.get("/api/residents", params={"q": "110108194803120242"}).json()["total"] == 1
    assert client.get("/api/residents", params={"q": "13911002345"}).json()["total"] == 1


def test_merge_and_unmerge_through_the_api(client: TestClient) -> None:
    first, second = find(client, "王秀英"), find(client, "李建国")
    # two residents with different ID numbers cannot be merged
    refused = client.post(
        "/api/residents/merge", json={"survivor_id": first, "merged_id": second, "reason": "x"}
    )
    assert refused.status_code == 409 and refused.json()["code"] == "resident.merge.id_conflict"
    assert client.get(f"/api/residents/{second}").status_code == 200


def test_unknown_and_out_of_range_ids_are_4xx(client: TestClient) -> None:
    missing = client.get("/api/residents/2000000000")
    assert missing.status_code == 404 and missing.json()["code"] == "resident.not_found"
    assert client.get("/api/residents/99999999999999999999").status_code == 422
    assert client.post("/api/merges/5/unmerge").status_code == 404
    assert client.post("/api/link-reviews/5/decision", json={"same_person": True}).status_code == 404


def test_import_runs_are_listed_with_their_rejections(client: TestClient) -> None:
    runs = client.get("/api/import-runs").json()
    assert [r["feed"] for r in runs] == ["insurance", "health"]
    detail = client.get(f"/api/import-runs/{runs[1]['id']}").json()
    assert [r["line"] for r in detail["rejections"]] == [6, 7, 9, 10, 13]


def test_merge_then_unmerge_keeps_history(client: TestClient) -> None:
    survivor, merged = find(client, "王秀英"), find(client, "张淑珍")  # the second has no ID number
    response = client.post(
        "/api/residents/merge", json={"survivor_id": survivor, "merged_id": merged, "reason": "same person"}
    )
    assert response.status_code == 201, response.text
    merge = response.json()
    assert merge["merged_by"] == "clerk-7" and merge["source_record_ids"]
    assert client.get(f"/api/residents/{merged}").json()["code"] == "resident.merged"
    assert len(client.get(f"/api/residents/{survivor}/sources").json()) > len(merge["source_record_ids"])
    undone = client.post(f"/api/merges/{merge['id']}/unmerge").json()
    assert undone["unmerged_at"] is not None
    assert client.get(f"/api/residents/{merged}").status_code == 200
    assert client.post(f"/api/merges/{merge['id']}/unmerge").json()["code"] == "resident.merge.already_undone"
    history = client.get(f"/api/residents/{survivor}/history").json()
    assert {"merge", "unmerge"} <= {h["reason"] for h in history}


@pytest.mark.parametrize("q", ["\x00", "1\x00", "王\x00", "wang\x00"])
def test_a_search_text_with_a_control_character_is_a_422(client: TestClient, q: str) -> None:
    # PostgreSQL cannot compare text holding a NUL (it was a 500), SQLite's LIKE stopped at it
    response = client.get("/api/residents", params={"q": q})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "request.invalid"
    assert response.json()["detail"][0]["loc"] == ["query", "q"]


@pytest.mark.parametrize("q", ["%", "_", "王%", "wang%", "w_ng"])
def test_like_wildcards_in_a_search_text_match_themselves(client: TestClient, q: str) -> None:
    # a "%" or "_" typed into the search box is a character, not "anyone"
    assert client.get("/api/residents", params={"q": q}).json()["total"] == 0


def test_a_profile_s_age_turns_over_at_china_s_midnight(client: TestClient) -> None:
    # given 王秀英 (born 12 March 1948) and the clock at 04:00 on 12 March 2027 in China,
    # still 11 March in UTC
    client.app.state.clock = lambda: dt.datetime(2027, 3, 11, 20, 0, tzinfo=dt.UTC)
    # when her profile is read, then she is 79, not the UTC day's 78
    profile = client.get(f"/api/residents/{find(client, '王秀英')}")
    assert profile.status_code == 200, profile.text
    assert profile.json()["age"] == 79
