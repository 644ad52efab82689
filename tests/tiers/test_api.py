"""The tier API and staff pages over HTTP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.careplan import CarePlan as FhirCarePlan
from fhir.resources.R4B.flag import Flag as FhirFlag

from tests.tiers.builders import COMMUNITY, OTHER_COMMUNITY, STREET, civil_row, health_row, run, seed_areas
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.sources.models import Feed
from yiyang.sources.records import ConditionFact
from yiyang.tiers.service import TierMix
from yiyang.web.tier_pages import tier_mix_svg

from ..signed_in import sign_in_as_clinician


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db)) as test_client:
        sign_in_as_clinician(test_client, sqlite_db)
        yield test_client


@pytest.fixture
def residents(sqlite_db: Database, client: TestClient) -> dict[str, int]:
    """A red, a yellow and a green resident, tiered by the recompute route."""
    seed_areas(sqlite_db)
    health = run(sqlite_db, Feed.health, [
        health_row("HR-Y", "002", conditions=[ConditionFact("I10", "高血压")]),
        health_row("HR-G", "014", name="李建国", sex="M", community_code=OTHER_COMMUNITY),
    ])  # fmt: skip
    civil = run(sqlite_db, Feed.civil, [civil_row("MZ-R", "022", "total", name="赵玉梅")])
    ids = {
        "yellow": health.resident_ids["HR-Y"],
        "green": health.resident_ids["HR-G"],
        "red": civil.resident_ids["MZ-R"],
    }
    for resident_id in ids.values():
        assert client.post(f"/api/residents/{resident_id}/tier/recompute").status_code == 200
    return ids


def test_tier_read_names_its_reasons_and_exports_as_a_flag(
    client: TestClient, residents: dict[str, int]
) -> None:
    body = client.get(f"/api/residents/{residents['red']}/tier").json()
    assert (body["tier"], body["tier_zh"]) == ("red", "红色（失能失智）")
    assert body["reasons"][0]["source_key"] == "MZ-R" and "完全失能" in body["reasons"][0]["zh"]
    flag = FhirFlag.model_validate(client.get(f"/api/residents/{residents['red']}/tier/fhir").json())
    assert flag.code.coding[0].code == "red" and "MZ-R" in flag.extension[0].valueString
    history = client.get(f"/api/residents/{residents['red']}/tier/history").json()
    # the civil-affairs import decided it (the app re-tiers the residents an import touched)
    assert [(h["old_tier"], h["new_tier"], h["trigger"]) for h in history] == [(None, "red", "import")]


def test_imported_resident_is_decided_and_unknown_resident_is_404(
    client: TestClient, sqlite_db: Database
) -> None:
    seed_areas(sqlite_db)
    rid = run(sqlite_db, Feed.health, [health_row("HR-1")]).resident_ids["HR-1"]
    assert client.get(f"/api/residents/{rid}/tier").json()["tier"] == "green"
    assert client.get("/api/residents/999/tier").status_code == 404
    assert client.post("/api/residents/999/tier/recompute").status_code == 404


def test_lists_by_tier_and_community(
    client: TestClient, residents: dict[str, int], sqlite_db: Database
) -> None:
    everyone = client.get("/api/tiers").json()
    assert [i["tier"] for i in everyone["items"]] == ["red", "yellow", "green"]
    red = client.get("/api/tiers?tier=red").json()
    assert red["total"] == 1 and red["items"][0]["resident_id"] == residents["red"]
    mix = client.get("/api/tiers/mix").json()
    assert [(m["code"], m["red"], m["yellow"], m["green"], m["total"]) for m in mix] == [(STREET, 1, 1, 1, 3)]
    assert client.get("/api/tiers?tier=purple").status_code == 422


def test_rules_in_force_are_listed(client: TestClient) -> None:
    rules = client.get("/api/tiers/rules").json()
    assert rules[0]["code"] == "capability.disabled" and rules[0]["tier"] == "red"


def test_care_plan_read_fhir_and_activation(client: TestClient, residents: dict[str, int]) -> None:
    plans = client.get(f"/api/residents/{residents['yellow']}/care-plans").json()
    assert len(plans) == 1 and plans[0]["status"] == "proposed" and plans[0]["tier"] == "yellow"
    assert "hypertension_follow_up" in [a["code"] for a in plans[0]["activities"]]
    plan_id = plans[0]["id"]
    resource = FhirCarePlan.model_validate(client.get(f"/api/care-plans/{plan_id}/fhir").json())
    assert (resource.status, resource.intent) == ("draft", "proposal")
    activated = client.post(f"/api/care-plans/{plan_id}/activate", json={"by": "家庭医生A"})
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    # the acceptor is the signed-in clinician, not the name in the body
    assert activated.json()["status_changed_by"] == "clinician"
    assert client.post(f"/api/care-plans/{plan_id}/activate", json={"by": "家庭医生A"}).status_code == 409
    assert client.get("/api/care-plans/999").status_code == 404


# -- pages --------------------------------------------------------------------------------------


def test_profile_page_shows_the_tier_and_its_reasons(client: TestClient, residents: dict[str, int]) -> None:
    html = client.get(f"/residents/{residents['yellow']}").text
    assert 'id="tier"' in html and "tier-yellow" in html
    assert "高血压：诊断 I10" in html and "HR-Y" in html
    assert "健康管家" in html  # the proposed plan
    english = client.get(f"/residents/{residents['yellow']}?lang=en").text
    assert "hypertension: diagnosis I10" in english


def test_tiers_page_charts_the_district_and_lists_a_community(
    client: TestClient, residents: dict[str, int]
) -> None:
    district = client.get("/tiers")
    assert district.status_code == 200 and "<svg" in district.text and "万寿路街道" in district.text
    street = client.get(f"/tiers?street={STREET}")
    assert "甲社区" in street.text and "乙社区" in street.text
    listing = client.get(f"/tiers?community={COMMUNITY}&tier=red")
    assert listing.status_code == 200 and "赵玉梅" in listing.text and "李建国" not in listing.text
    assert "完全失能" in listing.text
    assert client.get("/tiers?community=999999999999").status_code == 404
    chart = client.get("/tiers/chart.svg")
    assert chart.headers["content-type"].startswith("image/svg+xml")
    ET.fromstring(chart.text)  # well-formed


def test_chart_escapes_area_names_and_writes_shares() -> None:
    svg = tier_mix_svg([TierMix(1, "x", "<b>&社区", red=1, yellow=1, green=2), TierMix(None, None, None)])
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "<b>&社区" in texts and "未分配社区" in texts
    assert "50%" in texts and "25%" in texts


def test_resident_imported_without_the_tier_reaction_is_undecided(
    client: TestClient, sqlite_db: Database
) -> None:
    from yiyang.events import unsubscribe_all

    seed_areas(sqlite_db)
    unsubscribe_all()  # an import run by a process that does not wire the tier engine (a bare bench)
    rid = run(sqlite_db, Feed.health, [health_row("HR-2")]).resident_ids["HR-2"]
    response = client.get(f"/api/residents/{rid}/tier")
    assert response.status_code == 404 and response.json()["code"] == "tier.not_decided"
