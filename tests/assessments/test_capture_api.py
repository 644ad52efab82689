"""Capture over HTTP: the JSON API and the staff web form."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import func, select

from tests.tiers.builders import capability_answers, health_row, resident_id_of, run, seed_areas
from yiyang.app import create_app
from yiyang.assessments.models import Assessment
from yiyang.db import Database
from yiyang.sources.models import Feed

from ..signed_in import sign_in_as_clinician

BARTHEL_SEVERE = dict.fromkeys(
    (
        "feeding",
        "bathing",
        "grooming",
        "dressing",
        "bowels",
        "bladder",
        "toilet_use",
        "transfers",
        "mobility",
        "stairs",
    ),
    0,
)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Database:
    """HTTP behaviour on the embedded database (the storage paths run on both in test_capture.py);
    a test parametrised with "postgres" gets PostgreSQL."""
    return request.getfixturevalue(
        "pg_db" if getattr(request, "param", "sqlite") == "postgres" else "sqlite_db"
    )


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(database)) as test_client:
        sign_in_as_clinician(test_client, database, "nurse-7")
        yield test_client


@pytest.fixture
def resident_id(database: Database) -> int:
    seed_areas(database)
    return resident_id_of(run(database, Feed.health, [health_row("HR-1")]), "HR-1")


def post(client: TestClient, resident_id: int, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(f"/api/residents/{resident_id}/assessments", json=body)


def stored_count(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.execute(select(func.count()).select_from(Assessment)).scalar_one()


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_assessment_posted_through_the_api_is_stored_and_moves_the_tier(
    client: TestClient, resident_id: int
) -> None:
    # given a resident whose import decided green
    assert client.get(f"/api/residents/{resident_id}/tier").json()["tier"] == "green"
    # when a capability assessment scoring severe disability is posted
    response = post(client, resident_id, {
        "instrument": "gbt42195", "answers": capability_answers("severe"), "assessed_at": "2025-06-20T10:00:00+08:00",
        "assessor": "刘护士",
    })  # fmt: skip
    # then it is stored as scored, with who recorded it and when it is next due
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["total"], body["level"], body["recorded_by"], body["reassess_due_on"]) == (
        35,
        "severe",
        "nurse-7",
        "2025-12-20",
    )
    assert body["source_record_id"] is not None
    # and the resident is red, the reason naming this assessment
    tier = client.get(f"/api/residents/{resident_id}/tier").json()
    assert tier["tier"] == "red"
    assert tier["reasons"][0]["assessment_id"] == body["id"] and f"#{body['id']}" in tier["reasons"][0]["zh"]
    # and the profile's capability level names the assessment as its source
    facts = {f["attribute"]: f for f in client.get(f"/api/residents/{resident_id}").json()["facts"]}
    assert (facts["capability_level"]["value"], facts["capability_level"]["source_key"]) == (
        "severe",
        f"assessment:{body['id']}",
    )


def test_history_lists_assessments_newest_first(client: TestClient, resident_id: int) -> None:
    for day in ("2025-01-10", "2025-06-10", "2025-03-10"):
        assert post(client, resident_id, {"instrument": "barthel", "answers": BARTHEL_SEVERE,
                                          "assessed_at": f"{day}T09:00:00+08:00", "assessor": "刘护士"}).status_code == 201  # fmt: skip
    rows = client.get(f"/api/residents/{resident_id}/assessments").json()
    assert [r["assessed_at"][:10] for r in rows] == ["2025-06-10", "2025-03-10", "2025-01-10"]
    assert client.get(f"/api/residents/{resident_id}/assessments?instrument=ad8").json() == []
    one = client.get(f"/api/assessments/{rows[0]['id']}").json()
    assert one["level"] == "severe" and one["explanation"]


def test_bad_answers_are_refused_with_the_item_and_nothing_is_stored(
    client: TestClient, resident_id: int, database: Database
) -> None:
    response = post(client, resident_id, {"instrument": "barthel", "answers": {**BARTHEL_SEVERE, "feeding": 7},
                                          "assessed_at": "2025-06-01T09:00:00+08:00", "assessor": "刘护士"})  # fmt: skip
    assert response.status_code == 422
    assert (
        response.json()["code"] == "assessment.item.range" and response.json()["detail"]["item"] == "feeding"
    )
    assert stored_count(database) == 0


@pytest.mark.parametrize("answers", [{"feeding": "\ud800"}, {"\ud800": 5}])
def test_a_lone_surrogate_answer_is_a_422_naming_the_item_and_nothing_is_stored(
    client: TestClient, resident_id: int, database: Database, answers: dict[str, Any]
) -> None:
    # given a Barthel form whose feeding answer (or an item code) is a lone surrogate, sent as
    # the JSON escape a client may write (it is no character, so no UTF-8 can carry it back)
    body = {"instrument": "barthel", "answers": {**BARTHEL_SEVERE, **answers},
            "assessed_at": "2025-06-01T09:00:00+08:00", "assessor": "刘护士"}  # fmt: skip
    # when it is posted
    response = client.post(
        f"/api/residents/{resident_id}/assessments",
        content=json.dumps(body, ensure_ascii=True).encode(),
        headers={"Content-Type": "application/json"},
    )
    # then it is refused with the item's code, not a server error, and nothing is stored
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("assessment.item.type", "assessment.item.unknown")
    assert "\\ud800" not in response.json()["message"] and "\ud800" not in response.text
    assert stored_count(database) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"instrument": "barthel", "answers": {}, "assessed_at": "2025-06-01T09:00:00", "assessor": ""},
        {"instrument": "barthel", "answers": {}, "assessed_at": "not a time", "assessor": "x"},
        {"instrument": "barthel", "answers": [], "assessed_at": "2025-06-01T09:00:00", "assessor": "x"},
        {"instrument": "barthel", "answers": {}, "assessed_at": "0001-01-01T00:00:00+14:00", "assessor": "x"},
        {
            "instrument": "barthel",
            "answers": {},
            "assessed_at": "2025-06-01T09:00:00",
            "assessor": "x",
            "extra": 1,
        },
    ],
)
def test_malformed_requests_are_4xx_not_500(
    client: TestClient, resident_id: int, body: dict[str, Any]
) -> None:
    response = post(client, resident_id, body)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("assessor", ["刘\x00护士", "刘护士\x07"])
def test_an_assessor_with_a_control_character_is_a_422_and_nothing_is_stored(
    client: TestClient, resident_id: int, database: Database, assessor: str
) -> None:
    # PostgreSQL text cannot hold a NUL: the write failed as a server error
    response = post(client, resident_id, {"instrument": "barthel", "answers": BARTHEL_SEVERE,
                                          "assessed_at": "2025-06-01T09:00:00+08:00", "assessor": assessor})  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "assessment.assessor.invalid"
    assert stored_count(database) == 0


@pytest.mark.parametrize(
    ("instrument", "answers"),
    [
        ("bp", {"systolic": 10**400, "diastolic": 80}),  # float() of it overflowed
        ("gbt42195", {**capability_answers("mild"), "diagnoses": ["F03\ud800"]}),  # unstorable code
    ],
)
def test_answers_that_crashed_the_scorer_or_the_write_are_422(
    client: TestClient, resident_id: int, database: Database, instrument: str, answers: dict[str, Any]
) -> None:
    body = {"instrument": instrument, "answers": answers, "assessed_at": "2025-06-01T09:00:00+08:00",
            "assessor": "刘护士"}  # fmt: skip
    response = client.post(
        f"/api/residents/{resident_id}/assessments",
        content=json.dumps(body, ensure_ascii=True).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("assessment.item.range", "assessment.item.type")
    assert stored_count(database) == 0


@pytest.mark.parametrize("option", ["answers", "code"])
def test_an_option_named_like_a_parameter_is_a_422(client: TestClient, resident_id: int, option: str) -> None:
    body = {"instrument": "barthel", "answers": BARTHEL_SEVERE, "options": {option: 1},
            "assessed_at": "2025-06-01T09:00:00+08:00", "assessor": "刘护士"}  # fmt: skip
    response = post(client, resident_id, body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "assessment.option.unknown"


def test_unknown_resident_and_assessment_are_404(client: TestClient, resident_id: int) -> None:
    assert post(client, 999, {"instrument": "ad8", "answers": {}, "assessed_at": "2025-06-01T09:00:00",
                              "assessor": "x"}).status_code == 404  # fmt: skip
    assert client.get("/api/assessments/999").status_code == 404
    assert client.get("/api/residents/999/assessments").status_code == 404


def test_fhir_export_of_an_assessment_parses(client: TestClient, resident_id: int) -> None:
    created = post(client, resident_id, {"instrument": "barthel", "answers": BARTHEL_SEVERE,
                                         "assessed_at": "2025-06-01T09:00:00+08:00", "assessor": "刘护士"}).json()  # fmt: skip
    bundle = Bundle.model_validate(client.get(f"/api/assessments/{created['id']}/fhir").json())
    assert [e.resource.get_resource_type() for e in bundle.entry] == [
        "QuestionnaireResponse",
        "Observation",
        "Observation",
    ]


def test_instrument_list_describes_items(client: TestClient) -> None:
    instruments = {i["code"]: i for i in client.get("/api/instruments").json()}
    assert {"gbt42195", "ad8", "morse", "china_par"} <= set(instruments)
    assert instruments["morse"]["options"][0]["code"] == "high_risk_cutoff"


def test_reassessment_lists_over_http(client: TestClient, resident_id: int) -> None:
    never = client.get("/api/capability-reassessments/never").json()
    assert [r["id"] for r in never["items"]] == [resident_id]
    two_years_ago = (dt.date.today() - dt.timedelta(days=730)).isoformat()
    post(client, resident_id, {"instrument": "gbt42195", "answers": capability_answers("mild"),
                               "assessed_at": f"{two_years_ago}T09:00:00+08:00", "assessor": "刘护士"})  # fmt: skip
    due = client.get("/api/capability-reassessments/due").json()
    assert due["total"] == 1 and due["items"][0]["status"] == "overdue"
    assert client.get("/api/capability-reassessments/never").json()["total"] == 0


# -- the web form -------------------------------------------------------------------------------


def test_form_is_built_from_the_instrument_items_chinese_first(client: TestClient, resident_id: int) -> None:
    page = client.get(f"/residents/{resident_id}/assessments/new?instrument=gbt42195")
    assert page.status_code == 200
    html = page.text
    assert "老年人能力评估" in html and "进食" in html and 'name="eating"' in html
    assert '<label for="eating">进食 <span class="hint">eating' in html  # Chinese label first, English after
    assert 'name="care_risk_events.fall"' in html  # events are counted per kind
    chooser = client.get(f"/residents/{resident_id}/assessments/new")
    assert chooser.status_code == 200 and "instrument=morse" in chooser.text


def test_form_post_stores_the_assessment_and_returns_to_the_profile(
    client: TestClient, resident_id: int, database: Database
) -> None:
    form = {
        "assessed_at": "2025-06-01T09:30",
        "assessor": "王医生",
        **{k: str(v) for k, v in BARTHEL_SEVERE.items()},
    }
    response = client.post(
        f"/residents/{resident_id}/assessments/new?instrument=barthel", data=form, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == f"/residents/{resident_id}#tier"
    assert stored_count(database) == 1
    profile = client.get(f"/residents/{resident_id}").text
    assert "tier-red" in profile and "Barthel" in profile


def test_form_with_a_missing_item_is_shown_again_with_the_problem(
    client: TestClient, resident_id: int, database: Database
) -> None:
    form = {
        "assessed_at": "2025-06-01T09:30",
        "assessor": "王医生",
        **{k: str(v) for k, v in BARTHEL_SEVERE.items()},
    }
    del form["stairs"]
    response = client.post(f"/residents/{resident_id}/assessments/new?instrument=barthel", data=form)
    assert response.status_code == 422
    assert "上下楼梯" in response.text or "stairs" in response.text
    assert 'value="王医生"' in response.text  # what was entered is kept
    assert stored_count(database) == 0


def test_form_counts_care_risk_events(client: TestClient, resident_id: int, database: Database) -> None:
    answers = capability_answers("mild")
    form = {"assessed_at": "2025-06-01T09:30", "assessor": "王医生", "care_risk_events.fall": "2",
            **{k: str(v) for k, v in answers.items()}}  # fmt: skip
    assert (
        client.post(
            f"/residents/{resident_id}/assessments/new?instrument=gbt42195", data=form, follow_redirects=False
        ).status_code
        == 303
    )
    with database.unit_of_work() as session:
        assessment = session.execute(select(Assessment)).scalar_one()
    assert assessment.answers["care_risk_events"] == ["fall", "fall"]
    assert assessment.level == "moderate"  # two care-risk events: one level more severe
