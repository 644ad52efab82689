"""Rule parameters a timer cannot hold (1e308 hours, infinity, NaN) are a 422 with the params code,
and no override is kept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.alerts.conftest import Scene, build_scene
from yiyang.access import service as access
from yiyang.access.roles import Role
from yiyang.alerts.channels import RecordingGateway
from yiyang.alerts.models import AlertRuleOverride
from yiyang.alerts.rules import RulesInvalid, apply_overrides, compile_rules, default_document
from yiyang.app import create_app
from yiyang.db import Database


@pytest.fixture
def scene(db: Database, gateway: RecordingGateway) -> Scene:
    return build_scene(db, gateway)


@pytest.fixture
def client(db: Database, scene: Scene) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


def sign_in(client: TestClient, db: Database, username: str) -> dict[str, str]:
    with db.unit_of_work() as session:
        access.set_password(session, access.find_user(session, username), "correct-horse-battery")
    body = client.post(
        "/api/auth/login", json={"username": username, "password": "correct-horse-battery", "client": "web"}
    ).json()
    return {"X-CSRF-Token": body["csrf_token"]}


def overrides(db: Database) -> int:
    with db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(AlertRuleOverride))


@pytest.mark.parametrize(
    "params",
    [
        {"hours": 1e308},  # overflows a timedelta
        {"hours": 1e12},  # overflows a timedelta's days
        {"hours": 1e8},  # a timedelta, but now + 11,000 years is no date
        {"hours": "inf"},
        {"minutes": 1e308},
        {"when": [["8480-6", ">=", "NaN"]]},  # a threshold nothing ever crosses
        {"when": [["59408-5", "<=", 10**30]]},  # compiles as a float, but no store holds the integer
        {"when": [["8480-6", ">=", 1e7]]},  # no reading comes near it
        {"when": [["8480-6", ">=", -(10**400)]]},  # past any float
        {"minutes": 10**30},
        {"hours": 10**400},
    ],
)
def test_a_parameter_no_timer_can_hold_is_a_422_and_keeps_nothing(
    client: TestClient, db: Database, scene: Scene, params: dict[str, object]
) -> None:
    # given the resident's contracted family doctor, signed in
    doctor = sign_in(client, db, "doctor1")
    rule = "out_of_bed_long" if "minutes" in params else "bp_urgent" if "when" in params else "no_activity"
    body = {"scope": "resident", "resident_id": scene.resident_id, "rule": rule, "params": params}
    # when the doctor sets a parameter past any clock
    response = client.post("/api/alert-rules/overrides", json=body, headers=doctor)
    # then it is refused with the params code, and nothing is kept
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "alert_rule.invalid"
    assert overrides(db) == 0


@pytest.mark.parametrize("threshold", [10**30, -(10**30), 2**64, 1e300])
def test_a_district_admins_tier_threshold_past_any_reading_is_a_422_and_keeps_nothing(
    client: TestClient, db: Database, threshold: float
) -> None:
    # given a district administrator, signed in
    with db.unit_of_work() as session:
        admin = access.create_user(session, "district1")
        access.grant_role(session, admin, Role.district_admin)
    headers = sign_in(client, db, "district1")
    # when they set the red tier's SpO2 threshold to a number no oximeter reads
    body = {
        "scope": "tier",
        "tier": "red",
        "rule": "spo2_low",
        "params": {"when": [["59408-5", "<=", threshold]]},
    }
    response = client.post("/api/alert-rules/overrides", json=body, headers=headers)
    # then it is refused with the params code, says what is allowed, and nothing is kept
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "alert_rule.invalid"
    assert "1000000" in response.json()["message"]
    assert overrides(db) == 0


@pytest.mark.parametrize(
    ("rule", "params"),
    [
        ("spo2_low", {"minutes": 10**30}),  # a threshold rule has no clock to bound it
        ("no_activity", {"minutes": 10**30}),  # an absence rule counts hours
        ("fall", {"when": [["59408-5", "<=", 10**30]]}),  # an event rule has no thresholds
        ("spo2_low", {"zh": 10**30}),
        ("spo2_low", {"note": {"by": [10**30]}}),  # a field no rule reads
    ],
)
def test_a_huge_whole_number_a_rule_does_not_read_is_a_422_and_keeps_nothing(
    client: TestClient, db: Database, scene: Scene, rule: str, params: dict[str, object]
) -> None:
    # given the family doctor, and a parameter the compiled rule would never look at
    doctor = sign_in(client, db, "doctor1")
    body = {"scope": "resident", "resident_id": scene.resident_id, "rule": rule, "params": params}
    # when it is posted
    response = client.post("/api/alert-rules/overrides", json=body, headers=doctor)
    # then it is refused, naming the field, rather than failing when the row is written
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "alert_rule.invalid"
    assert f"{rule}: {next(iter(params))}" in response.json()["message"]
    assert overrides(db) == 0


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
def test_a_non_finite_parameter_is_a_422_and_keeps_nothing(
    client: TestClient, db: Database, scene: Scene, literal: str
) -> None:
    # given a body whose hours are a JSON extension Python's parser accepts
    doctor = sign_in(client, db, "doctor1")
    raw = (
        f'{{"scope": "resident", "resident_id": {scene.resident_id}, "rule": "no_activity", '
        f'"params": {{"hours": {literal}}}}}'
    )
    response = client.post(
        "/api/alert-rules/overrides", content=raw, headers={**doctor, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("alert_rule.invalid", "request.invalid")
    assert overrides(db) == 0


def test_a_sane_parameter_is_still_kept(client: TestClient, db: Database, scene: Scene) -> None:
    doctor = sign_in(client, db, "doctor1")
    body = {
        "scope": "resident",
        "resident_id": scene.resident_id,
        "rule": "no_activity",
        "params": {"hours": 8},
    }
    response = client.post("/api/alert-rules/overrides", json=body, headers=doctor)
    assert response.status_code == 201, response.text
    assert overrides(db) == 1


@pytest.mark.parametrize("value", [10**30, -(10**30), 10**400, 1_000_000.5, -1e7, "1e9"])
def test_the_compiler_refuses_a_threshold_past_a_million(value: object) -> None:
    document = apply_overrides(
        default_document(), [{"rule": "spo2_low", "params": {"when": [["59408-5", "<=", value]]}}]
    )
    with pytest.raises(RulesInvalid, match="spo2_low: 59408-5"):
        compile_rules(document)


@pytest.mark.parametrize("value", [1_000_000, -1_000_000, 0, "90"])
def test_the_compiler_keeps_a_threshold_within_a_million(value: object) -> None:
    document = apply_overrides(
        default_document(), [{"rule": "spo2_low", "params": {"when": [["59408-5", "<=", value]]}}]
    )
    spo2 = compile_rules(document).by_code["spo2_low"]
    assert spo2.when[0].value == float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e308, 1e8, "x", "12"])
def test_the_compiler_names_a_bad_number_as_a_rules_error(value: object) -> None:
    document = apply_overrides(default_document(), [{"rule": "no_activity", "params": {"hours": value}}])
    if value == "12":
        assert compile_rules(document).by_code["no_activity"].wait.total_seconds() == 12 * 3600
        return
    with pytest.raises(RulesInvalid):
        compile_rules(document)
