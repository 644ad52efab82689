"""A tier reason drawn from an alert (``alert.recent``: "近期告警：告警 跌倒（来源：感知设备 #1，…）")
names a device's alert, its id and its day: sensor data (docs/access.md). The tier itself is clinical
and stays; the reason, and what a care plan adds for it, reach only readers who may see sensor data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.careplan import CarePlan as FhirCarePlan
from fhir.resources.R4B.flag import Flag as FhirFlag
from sqlalchemy import select

from tests.access.world import World, build_world
from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.alerts.models import Alert, AlertState
from yiyang.app import create_app
from yiyang.care import referrals
from yiyang.db import Database, utcnow
from yiyang.tiers.service import retier_residents

# What the alert-derived reason and the plan's answer to it would show.
SENSOR_WORDS = ("跌倒", "感知设备", "alert.recent", "alert_review", '"kind":"alert"')


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return world_with_a_fall(sqlite_db)


def world_with_a_fall(database: Database) -> World:
    """The access world, with a fall two days ago for ``in_given`` (her only tier fact): yellow,
    with a proposed plan answering ``alert.recent``."""
    world = build_world(database)
    resident_id = world.residents["in_given"]
    now = utcnow()
    with database.unit_of_work() as session:
        session.add(Alert(
            resident_id=resident_id, kind="fall", rule_kind="event", severity="critical", state=AlertState.open,
            open_key=f"{resident_id}:fall", device_id=None, detail={"event": "fall"}, tier_fact=True,
            raised_at=now - dt.timedelta(days=2), recorded_at=now, last_seen_at=now, chain="fall",
        ))  # fmt: skip
        session.flush()
        retier_residents(session, [resident_id], trigger="alert")
    return world


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def deny_sensor_to_the_health_side(world: World) -> None:
    with world.database.unit_of_work() as session:
        record_consent(
            session, system_actor("test-consent"), world.residents["in_given"], category=DataCategory.sensor,
            recipient_class=RecipientClass.health, purpose=Purpose.care, decision=ConsentDecision.deny,
            now=utcnow() - dt.timedelta(minutes=1),
        )  # fmt: skip


def single_resident_answers(client: TestClient, world: World, headers: dict[str, str]) -> dict[str, str]:
    """Every tier and care-plan answer about ``in_given``, as text, each one allowed (200)."""
    resident_id = world.residents["in_given"]
    urls = [
        f"/api/residents/{resident_id}/tier",
        f"/api/residents/{resident_id}/tier/history",
        f"/api/residents/{resident_id}/tier/fhir",
        f"/api/residents/{resident_id}/care-plans",
    ]
    plans = client.get(urls[-1], headers=headers).json()
    assert len(plans) == 1
    urls += [f"/api/care-plans/{plans[0]['id']}", f"/api/care-plans/{plans[0]['id']}/fhir"]
    answers = {}
    for url in urls:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        answers[url] = response.text.replace(" ", "")
    return answers


def sensor_reads(world: World, user: str) -> list[str]:
    """The allowed audit rows of sensor data for this user about ``in_given``."""
    with world.database.unit_of_work() as session:
        return list(
            session.scalars(
                select(AuditEvent.resource_type).where(
                    AuditEvent.user_id == world.users[user],
                    AuditEvent.resident_id == world.residents["in_given"],
                    AuditEvent.field_group == DataCategory.sensor.value,
                    AuditEvent.outcome == AuditOutcome.allowed,
                )
            )
        )


@pytest.mark.parametrize("reader", ["health_officer", "family_doctor_without_sensor_consent"])
def test_a_reader_refused_sensor_data_sees_the_tier_but_not_the_fall(
    client: TestClient, world: World, reader: str
) -> None:
    # given a resident yellow for a recent fall (her team's nurse sees the alert)
    resident_id = world.residents["in_given"]
    alerts = client.get(f"/api/alerts?resident_id={resident_id}", headers=world.token(Role.nurse)).json()
    assert alerts["total"] == 1
    # and a reader refused her sensor data: a health officer (no sensor category for care) or her
    # family doctor after she denied health x sensor
    if reader == "health_officer":
        role = Role.health_officer
    else:
        role = Role.family_doctor
        deny_sensor_to_the_health_side(world)
    headers = world.token(role)
    assert client.get(f"/api/alerts?resident_id={resident_id}", headers=headers).json()["total"] == 0
    # when the reader asks for her tier, its history, its Flag and her care plans
    answers = single_resident_answers(client, world, headers)
    # then the tier (clinical) is answered, yellow, but nothing names the fall alert
    tier = client.get(f"/api/residents/{resident_id}/tier", headers=headers).json()
    assert tier["tier"] == "yellow" and tier["reasons"] == []
    for url, text in answers.items():
        for word in SENSOR_WORDS:
            assert word not in text, (url, word)
    flag = FhirFlag.model_validate(
        client.get(f"/api/residents/{resident_id}/tier/fhir", headers=headers).json()
    )
    assert flag.code.coding[0].code == "yellow" and not flag.extension
    plan = client.get(f"/api/residents/{resident_id}/care-plans", headers=headers).json()[0]
    assert plan["tier"] == "yellow" and plan["addresses"] == []
    assert [a["code"] for a in plan["activities"]] == ["health_butler", "remote_monitoring"]
    FhirCarePlan.model_validate(client.get(f"/api/care-plans/{plan['id']}/fhir", headers=headers).json())
    # and no sensor read is recorded for the reader, as none was shown
    assert sensor_reads(world, role.value) == []


@pytest.mark.parametrize("reader", ["health_officer", "family_doctor_without_sensor_consent"])
def test_the_tier_list_leaves_out_the_alert_reason_for_a_reader_refused_sensor_data(
    client: TestClient, world: World, reader: str
) -> None:
    # given the same resident and reader
    if reader == "health_officer":
        role = Role.health_officer
    else:
        role = Role.family_doctor
        deny_sensor_to_the_health_side(world)
    # when the reader lists residents by tier
    response = client.get("/api/tiers", headers=world.token(role))
    # then she is listed, yellow, without the reason naming the fall
    assert response.status_code == 200
    items = {item["resident_id"]: item for item in response.json()["items"]}
    listed = items[world.residents["in_given"]]
    assert listed["tier"] == "yellow" and listed["reasons"] == []
    for word in SENSOR_WORDS:
        assert word not in response.text.replace(" ", "")


def test_her_family_doctor_with_her_consent_still_sees_the_fall_and_the_read_is_audited(
    client: TestClient, world: World
) -> None:
    # given the contracted family doctor, whom the resident lets see her sensor data
    headers = world.token(Role.family_doctor)
    resident_id = world.residents["in_given"]
    # when the doctor reads her tier, its Flag and her plan, and lists residents by tier
    tier = client.get(f"/api/residents/{resident_id}/tier", headers=headers).json()
    flag = client.get(f"/api/residents/{resident_id}/tier/fhir", headers=headers).json()
    plan = client.get(f"/api/residents/{resident_id}/care-plans", headers=headers).json()[0]
    listed = client.get("/api/tiers", headers=headers).json()["items"]
    # then the fall is named everywhere, as before
    assert [(r["kind"], r["value"]) for r in tier["reasons"]] == [("alert", "fall")]
    assert "跌倒" in tier["reasons"][0]["zh"]
    assert "跌倒" in flag["extension"][0]["valueString"]
    assert plan["addresses"] == ["alert.recent"] and "alert_review" in [a["code"] for a in plan["activities"]]
    assert [r["value"] for i in listed if i["resident_id"] == resident_id for r in i["reasons"]] == ["fall"]
    # and showing it to her was recorded as a read of sensor data
    assert {"tier", "care_plan"} <= set(sensor_reads(world, Role.family_doctor.value))


def test_a_referral_summary_gives_the_tier_without_the_alert_behind_it(world: World) -> None:
    # given the resident yellow for a recent fall
    with world.database.unit_of_work() as session:
        # when a referral's summary for the receiving organisation is drawn up
        summary = referrals.profile_summary(session, world.residents["in_given"])
    # then it carries the tier, but no sensor-derived reason: the receiver is granted clinical data
    assert summary["tier"]["tier"] == "yellow"
    assert "alert.recent" not in summary["tier"]["reasons"]
