"""The staff pages: search, profile with sources, review queue, import runs; zh-CN first."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.app import create_app
from yiyang.db import Database
from yiyang.geo.service import import_geography
from yiyang.residents.models import Resident
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file

from ..signed_in import sign_in_as_clinician

SAMPLES = Path(__file__).parents[2] / "docs" / "samples"


@pytest.fixture
def client(sqlite_db: Database) -> TestClient:
    with sqlite_db.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    import_file(sqlite_db, Feed.health, SAMPLES / "health.csv")
    import_file(sqlite_db, Feed.insurance, SAMPLES / "insurance_gb18030.csv")
    client = TestClient(create_app(sqlite_db))
    sign_in_as_clinician(client, sqlite_db)
    return client


def resident_id(client: TestClient, name: str) -> int:
    database = client.app.state.database
    with database.unit_of_work() as session:
        return session.execute(select(Resident.id).where(Resident.name == name)).scalar_one()


def test_search_finds_by_name_and_pinyin(client: TestClient) -> None:
    page = client.get("/residents", params={"q": "王秀英"})
    assert page.status_code == 200 and "王秀英" in page.text and "共 1 人" in page.text
    by_pinyin = client.get("/residents", params={"q": "wang xiu"})
    assert "王秀英" in by_pinyin.text


def test_profile_shows_each_fact_with_its_source_and_masks_identifiers(client: TestClient) -> None:
    page = client.get(f"/residents/{resident_id(client, '王秀英')}")
    assert page.status_code == 200
    assert "档案信息及来源" in page.text and "卫健" in page.text and "医保" in page.text
    assert "11010800100100001" in page.text  # the health record key behind the facts
    assert "110108194803120242" not in page.text  # the ID number is masked
    assert "110108********0242" in page.text
    assert "13911002345" not in page.text


def test_english_on_request(client: TestClient) -> None:
    page = client.get(f"/residents/{resident_id(client, '王秀英')}", params={"lang": "en"})
    assert "Profile facts and their sources" in page.text


def test_unknown_resident_page_is_404(client: TestClient) -> None:
    assert client.get("/residents/999999").status_code == 404
    assert client.get("/residents/0").status_code == 422


def test_review_and_import_pages(client: TestClient) -> None:
    assert client.get("/reviews").status_code == 200
    imports = client.get("/imports")
    assert imports.status_code == 200 and "health.csv" in imports.text
