"""Who may record or withdraw a resident's consent: the resident, a family member acting for them,
or staff entering the signed paper form; never a volunteer, and never through an emergency opening.

Scenes from ``tests/access/test_mixed_roles.py`` (``build``): the resident user of ``in_given``
also volunteers and is paired with ``out_given``, as is the world's plain volunteer.
``out_withdrawn`` has no contract with anyone and denies everything.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.access.consent_models import Consent
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database

from .test_mixed_roles import build
from .world import World

PERMIT_SOCIAL = {"category": "clinical", "recipient_class": "social", "decision": "permit"}
DENY_HEALTH = {"category": "identity", "recipient_class": "health", "decision": "deny"}


@pytest.fixture
def world(db: Database) -> World:
    return build(db)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def record(client: TestClient, headers: dict[str, str], resident_id: int, body: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(f"/api/residents/{resident_id}/consents", json=body, headers=headers)


def last_denial(world: World, user_key: str) -> AuditEvent | None:
    with world.database.unit_of_work() as session:
        return session.scalars(
            select(AuditEvent)
            .where(AuditEvent.user_id == world.users[user_key], AuditEvent.outcome == AuditOutcome.denied)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).one_or_none()


def consents_of(world: World, resident_id: int) -> int:
    with world.database.unit_of_work() as session:
        return len(session.scalars(select(Consent.id).where(Consent.resident_id == resident_id)).all())


def test_a_volunteer_may_not_record_a_deny_cutting_off_the_care_team(
    client: TestClient, world: World
) -> None:
    rid = world.residents["in_given"]
    doctor = world.headers[Role.family_doctor.value]
    before = consents_of(world, rid)
    # when the paired volunteer records a deny for the family-doctor team
    response = record(client, world.headers[Role.volunteer.value], rid, DENY_HEALTH)
    # then refused and audited as refused, and the team still reads the resident
    assert response.status_code == 403, response.text
    assert last_denial(world, Role.volunteer.value) is not None
    assert consents_of(world, rid) == before
    assert client.get(f"/api/residents/{rid}", headers=doctor).status_code == 200


def test_a_resident_who_volunteers_may_not_record_for_their_paired_elder(
    client: TestClient, world: World
) -> None:
    other = world.residents["out_given"]
    before = consents_of(world, other)
    response = record(client, world.headers["resident:in_given"], other, PERMIT_SOCIAL)
    assert response.status_code == 403, response.text
    assert last_denial(world, "resident:in_given") is not None
    assert consents_of(world, other) == before


def test_a_volunteer_may_not_withdraw_a_residents_decision(client: TestClient, world: World) -> None:
    rid = world.residents["in_given"]
    made = record(client, world.headers["resident:in_given"], rid, PERMIT_SOCIAL)
    assert made.status_code == 201, made.text
    response = client.post(
        f"/api/consents/{made.json()['id']}/revoke", headers=world.headers[Role.volunteer.value]
    )
    assert response.status_code == 403, response.text
    assert last_denial(world, Role.volunteer.value) is not None


def test_the_resident_family_and_staff_still_record(client: TestClient, world: World) -> None:
    rid = world.residents["in_given"]
    own = record(client, world.headers["resident:in_given"], rid, PERMIT_SOCIAL)
    family = record(client, world.headers[Role.family_member.value], rid, PERMIT_SOCIAL)
    staff = record(client, world.headers[Role.family_doctor.value], rid, PERMIT_SOCIAL)
    assert [r.status_code for r in (own, family, staff)] == [201, 201, 201], staff.text
    assert [r.json()["source"] for r in (own, family, staff)] == ["resident", "family_member", "paper_form"]
    revoked = client.post(
        f"/api/consents/{staff.json()['id']}/revoke", headers=world.headers[Role.nurse.value]
    )
    assert revoked.status_code == 200, revoked.text


def test_break_the_glass_makes_no_lasting_consent_change(client: TestClient, world: World) -> None:
    other = world.residents["out_withdrawn"]  # no contract, and denied everything
    doctor = world.headers[Role.family_doctor.value]
    opened = client.post(
        f"/api/residents/{other}/break-glass", json={"reason": "急救现场需要查看病史资料"}, headers=doctor
    )
    assert opened.status_code == 201, opened.text
    assert client.get(f"/api/residents/{other}", headers=doctor).status_code == 200  # the glass is open
    body = {"category": "clinical", "recipient_class": "civil_affairs", "decision": "permit"}
    assert record(client, doctor, other, body).status_code == 403
    with world.database.unit_of_work() as session:
        deny_id = session.scalars(
            select(Consent.id).where(Consent.resident_id == other, Consent.revoked_at.is_(None)).limit(1)
        ).one()
    assert client.post(f"/api/consents/{deny_id}/revoke", headers=doctor).status_code == 403


def test_break_the_glass_makes_no_consent_change_over_fhir(client: TestClient, world: World) -> None:
    other = world.residents["out_withdrawn"]
    doctor = world.headers[Role.family_doctor.value]
    opened = client.post(
        f"/api/residents/{other}/break-glass", json={"reason": "急救现场需要查看病史资料"}, headers=doctor
    )
    assert opened.status_code == 201, opened.text
    base = "https://yiyang.example.org/fhir/CodeSystem"
    resource = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{other}"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {
                        "identifier": {"system": f"{base}/consent-recipient-class", "value": "social"}
                    },
                }
            ],
            "purpose": [{"system": f"{base}/consent-purpose", "code": "care"}],
            "code": [{"coding": [{"system": f"{base}/consent-data-category", "code": "identity"}]}],
        },
    }
    before = consents_of(world, other)
    response = client.post("/fhir/Consent", json=resource, headers=doctor)
    assert response.status_code == 403, response.text
    assert consents_of(world, other) == before
