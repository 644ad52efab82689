"""Consent: recorded, revoked and expiring with effect on the very next request; its history;
the defaults where no decision exists; FHIR Consent export and import; refusals audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent as FhirConsent
from sqlalchemy import select

from yiyang.access import policy
from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.consent_models import Consent
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database
from yiyang.errors import Forbidden

from .conftest import FakeClock
from .world import World, build_world

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def world(sqlite_db: Database, clock: FakeClock) -> World:
    return build_world(sqlite_db, clock.now)


@pytest.fixture
def app_client(world: World, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(world.database, settings)
    app.state.clock = clock
    with TestClient(app) as client:
        yield client


def fresh_resident(world: World) -> int:
    """A resident in G1 with every relationship but no consent decision at all."""
    from yiyang.access.models import RelationshipKind, ResidentRelationship
    from yiyang.residents.models import Resident

    with world.database.unit_of_work() as session:
        resident = Resident(
            name="新居民", name_pinyin="xin ju min", community_id=None, grid_id=world.areas["G1"]
        )
        session.add(resident)
        session.flush()
        since = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        session.add_all([
            ResidentRelationship(resident_id=resident.id, kind=RelationshipKind.contract, organisation_id=world.teams["T1"],
                                 valid_from=since, source_type="test", source_id=1),
            ResidentRelationship(resident_id=resident.id, kind=RelationshipKind.pairing,
                                 user_id=world.users["volunteer"], valid_from=since, source_type="test", source_id=2),
        ])  # fmt: skip
        return resident.id


def test_defaults_imply_the_contracted_team_but_not_volunteers(app_client: TestClient, world: World) -> None:
    # given a resident who recorded no decision at all
    resident_id = fresh_resident(world)
    # then the contracted family doctor sees the clinical record (implied by the contract)
    assert (
        app_client.get(
            f"/api/residents/{resident_id}/tier/history", headers=world.token(Role.family_doctor)
        ).status_code
        == 200
    )
    # and the paired volunteer sees nothing until the resident consents
    refused = app_client.get(f"/api/residents/{resident_id}", headers=world.token(Role.volunteer))
    assert refused.status_code == 403 and refused.json()["code"] == "access.consent"


def test_revocation_takes_effect_on_the_next_request(app_client: TestClient, world: World) -> None:
    resident_id = fresh_resident(world)
    volunteer = world.token(Role.volunteer)
    # given staff entering the resident's paper form: identity shared with volunteers for care
    recorded = app_client.post(
        f"/api/residents/{resident_id}/consents",
        json={
            "category": "identity",
            "recipient_class": "social",
            "purpose": "care",
            "note": "form 2026-117",
        },
        headers=world.token(Role.family_doctor),
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["source"] == "paper_form"
    profile = app_client.get(f"/api/residents/{resident_id}", headers=volunteer)
    assert profile.status_code == 200
    # a volunteer sees name, address and phone, never the ID number or the clinical record
    assert set(profile.json()["field_groups"]) == {"contact"}
    assert {f["attribute"] for f in profile.json()["facts"]} <= {
        "name",
        "sex",
        "phone",
        "address",
        "community_code",
        "grid_code",
    }
    assert profile.json()["conditions"] == []
    # when the consent is revoked
    revoked = app_client.post(
        f"/api/consents/{recorded.json()['id']}/revoke", headers=world.token(Role.family_doctor)
    )
    assert revoked.status_code == 200 and revoked.json()["ended_reason"] == "revoked"
    # then the very next request is refused, and audited as refused
    refused = app_client.get(f"/api/residents/{resident_id}", headers=volunteer)
    assert refused.status_code == 403 and refused.json()["code"] == "access.consent"
    with world.database.unit_of_work() as session:
        last = session.execute(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).scalar_one()
        assert (last.outcome, last.resident_id, last.reason) == (
            AuditOutcome.denied,
            resident_id,
            "access.consent",
        )
    # and the history keeps both the grant and its revocation
    history = app_client.get(
        f"/api/residents/{resident_id}/consents", headers=world.token(Role.family_doctor)
    ).json()
    assert [(h["decision"], h["ended_reason"]) for h in history] == [("permit", "revoked")]
    assert (
        app_client.post(
            f"/api/consents/{recorded.json()['id']}/revoke", headers=world.token(Role.family_doctor)
        ).status_code
        == 409
    )


def test_expiry_takes_effect_without_anyone_acting(
    app_client: TestClient, world: World, clock: FakeClock
) -> None:
    resident_id = fresh_resident(world)
    until = clock.now + dt.timedelta(hours=1)
    # given the resident's family member consenting for one hour
    recorded = app_client.post(
        f"/api/residents/{resident_id}/consents",
        json={"category": "identity", "recipient_class": "social", "valid_until": until.isoformat()},
        headers=world.token(Role.family_doctor),
    )
    assert recorded.status_code == 201
    assert (
        app_client.get(f"/api/residents/{resident_id}", headers=world.token(Role.volunteer)).status_code
        == 200
    )
    # when the hour has passed
    clock.advance(hours=1)
    # then the volunteer is refused
    assert (
        app_client.get(f"/api/residents/{resident_id}", headers=world.token(Role.volunteer)).status_code
        == 403
    )


def test_a_deny_overrides_what_the_contract_implies(app_client: TestClient, world: World) -> None:
    resident_id = world.residents["in_given"]
    own = world.token(Role.resident, "in_given")
    assert (
        app_client.get(
            f"/api/residents/{resident_id}/care-plans", headers=world.token(Role.nurse)
        ).status_code
        == 200
    )
    # the resident signs in and refuses to share clinical data with health organisations
    denied = app_client.post(
        f"/api/residents/{resident_id}/consents",
        json={"category": "clinical", "recipient_class": "health", "decision": "deny"}, headers=own,
    )  # fmt: skip
    assert denied.status_code == 201 and denied.json()["source"] == "resident"
    assert (
        app_client.get(
            f"/api/residents/{resident_id}/care-plans", headers=world.token(Role.nurse)
        ).status_code
        == 403
    )
    # the earlier permit is kept, ended as superseded
    history = app_client.get(f"/api/residents/{resident_id}/consents", headers=own).json()
    clinical = [
        (h["decision"], h["ended_reason"])
        for h in history
        if h["category"] == "clinical" and h["recipient_class"] == "health" and h["purpose"] == "care"
    ]
    assert clinical == [("permit", "superseded"), ("deny", None)]
    # and the resident still sees their own record
    assert app_client.get(f"/api/residents/{resident_id}/care-plans", headers=own).status_code == 200


def test_only_someone_with_the_resident_in_scope_records_consent(
    app_client: TestClient, world: World
) -> None:
    outsider = app_client.post(
        f"/api/residents/{world.residents['out_given']}/consents",
        json={"category": "identity", "recipient_class": "social"}, headers=world.token(Role.family_member),
    )  # fmt: skip
    assert outsider.status_code == 403
    family = app_client.post(
        f"/api/residents/{world.residents['in_given']}/consents",
        json={"category": "sensor", "recipient_class": "civil_affairs"}, headers=world.token(Role.family_member),
    )  # fmt: skip
    assert family.status_code == 201 and family.json()["source"] == "family_member"


def test_defaults_are_configurable(world: World, settings: Settings, clock: FakeClock) -> None:
    # given a deployment where volunteers' identity access for care is implied
    settings = settings.model_copy(update={"consent_implied": "health:*:*,social:identity:care"})
    app = create_app(world.database, settings)
    app.state.clock = clock
    try:
        with TestClient(app) as client:
            resident_id = fresh_resident(world)
            assert (
                client.get(f"/api/residents/{resident_id}", headers=world.token(Role.volunteer)).status_code
                == 200
            )
    finally:
        policy.configure(Settings(data_dir=settings.data_dir))
    assert (
        RecipientClass.social,
        DataCategory.identity,
        Purpose.care,
    ) not in policy.current_settings().implied_consent


# --- FHIR --------------------------------------------------------------------------------------


def consent_json(resident_id: int, *, category: str = "identity", recipient: str = "social", status: str = "active",
                 decision: str = "permit") -> dict[str, Any]:  # fmt: skip
    base = "https://yiyang.example.org/fhir/CodeSystem"
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{resident_id}"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {
            "type": decision,
            "period": {"start": "2026-11-01T00:00:00Z", "end": "2027-11-01T00:00:00Z"},
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                       "reference": {"identifier": {"system": f"{base}/consent-recipient-class", "value": recipient}}}],
            "purpose": [{"system": f"{base}/consent-purpose", "code": "care"}],
            "code": [{"coding": [{"system": f"{base}/consent-data-category", "code": category}]}],
        },
    }  # fmt: skip


def test_fhir_consent_export_is_valid_r4_and_round_trips(app_client: TestClient, world: World) -> None:
    resident_id = fresh_resident(world)
    doctor = world.token(Role.family_doctor)
    # import: a Consent created through the facade
    created = app_client.post("/fhir/Consent", json=consent_json(resident_id), headers=doctor)
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith(FHIR_JSON)
    body = created.json()
    FhirConsent.model_validate(body)
    assert body["status"] == "active" and body["provision"]["type"] == "permit"
    assert body["provision"]["period"]["end"].startswith("2027-11-01")
    # it has effect: the volunteer now sees the resident
    assert (
        app_client.get(f"/api/residents/{resident_id}", headers=world.token(Role.volunteer)).status_code
        == 200
    )
    # export: the search lists it, valid as a Bundle
    search = app_client.get(
        "/fhir/Consent", params={"patient": f"Patient/{resident_id}"}, headers=doctor
    ).json()
    Bundle.model_validate(search)
    assert [e["resource"]["id"] for e in search["entry"]] == [body["id"]]
    exported = search["entry"][0]["resource"]
    assert exported["provision"]["actor"][0]["reference"]["identifier"]["value"] == "social"
    # update: PUT with status inactive withdraws it, with effect on the next request
    withdrawn = app_client.put(
        f"/fhir/Consent/{body['id']}", json={**exported, "status": "inactive"}, headers=doctor
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "inactive"
    assert (
        app_client.get(f"/api/residents/{resident_id}", headers=world.token(Role.volunteer)).status_code
        == 403
    )
    # read
    assert app_client.get(f"/fhir/Consent/{body['id']}", headers=doctor).json()["status"] == "inactive"


def test_fhir_transaction_of_consents_is_all_or_nothing(app_client: TestClient, world: World) -> None:
    resident_id = fresh_resident(world)
    doctor = world.token(Role.family_doctor)
    good = {"resource": consent_json(resident_id), "request": {"method": "POST", "url": "Consent"}}
    bad = {
        "resource": consent_json(resident_id, category="nonsense"),
        "request": {"method": "POST", "url": "Consent"},
    }
    refused = app_client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [good, bad]}, headers=doctor
    )
    assert refused.status_code == 400 and refused.json()["resourceType"] == "OperationOutcome"
    assert refused.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    with world.database.unit_of_work() as session:
        assert session.execute(select(Consent).where(Consent.resident_id == resident_id)).first() is None
    second = {
        "resource": consent_json(resident_id, category="care_services"),
        "request": {"method": "POST", "url": "Consent"},
    }
    done = app_client.post(
        "/fhir",
        json={"resourceType": "Bundle", "type": "transaction", "entry": [good, second]},
        headers=doctor,
    )
    assert done.status_code == 200, done.text
    assert [e["response"]["location"].split("/")[0] for e in done.json()["entry"]] == ["Consent", "Consent"]


def test_fhir_consent_refuses_what_it_cannot_honour(app_client: TestClient, world: World) -> None:
    resident_id = fresh_resident(world)
    doctor = world.token(Role.family_doctor)
    for broken in (
        {"resourceType": "Patient"},
        {**consent_json(resident_id), "patient": {"reference": "Group/1"}},
        consent_json(resident_id, recipient="own"),
        consent_json(resident_id, status="inactive"),
    ):
        response = app_client.post("/fhir/Consent", json=broken, headers=doctor)
        assert 400 <= response.status_code < 500 and response.json()["resourceType"] == "OperationOutcome"
    outsider = app_client.post(
        "/fhir/Consent", json=consent_json(world.residents["out_given"]), headers=doctor
    )
    assert outsider.status_code == 403


# --- refusals are audited though the work rolls back --------------------------------------------


def test_a_refusal_is_audited_though_the_unit_of_work_rolls_back(db: Database) -> None:
    # given a resident out of a grid worker's grid, on SQLite and on PostgreSQL
    world = build_world(db)
    worker = Actor(
        user_id=world.users["grid_worker"], username="grid_worker",
        grants=(RoleGrant(Role.grid_worker, area_id=world.areas["G1"]),),
    )  # fmt: skip
    target = world.residents["out_given"]
    # when the worker's access is refused after the same work read another resident
    with pytest.raises(Forbidden), db.unit_of_work() as session:
        policy.authorize(
            session, worker, world.residents["in_given"], category=DataCategory.identity, what="profile"
        )
        policy.authorize(session, worker, target, category=DataCategory.identity, what="profile")
    # then the refused attempt is on the trail, the allowed one rolled back with its work
    with db.unit_of_work() as session:
        rows = session.execute(
            select(AuditEvent.resident_id, AuditEvent.outcome, AuditEvent.reason).where(
                AuditEvent.user_id == worker.user_id
            )
        ).all()
    assert rows == [(target, AuditOutcome.denied, "access.scope")]
    from yiyang.access.audit import verify_chain

    with db.unit_of_work() as session:
        assert verify_chain(session).ok


def test_consent_follows_a_merge_and_comes_back_on_unmerge(world: World, reactions: None) -> None:
    from types import SimpleNamespace

    from yiyang import events

    survivor, merged = world.residents["out_given"], world.residents["out_withdrawn"]
    merge = SimpleNamespace(
        survivor_id=survivor, merged_id=merged, moved={}, merged_at=dt.datetime.now(dt.UTC)
    )
    with world.database.unit_of_work() as session:
        before = session.execute(select(Consent.id).where(Consent.resident_id == merged)).scalars().all()
        # when the registry merges the two records (the event its merge publishes)
        events.publish(session, events.ResidentsMerged(merge))
        # then the decisions follow the person, and the survivor's withdrawals still hold (deny wins)
        assert session.execute(select(Consent.id).where(Consent.resident_id == merged)).first() is None
        assert merge.moved["consent_ids"] == list(before)
    # and an unmerge takes them back
    with world.database.unit_of_work() as session:
        events.publish(session, events.ResidentsUnmerged(merge))
        back = session.execute(select(Consent.id).where(Consent.resident_id == merged)).scalars().all()
    assert sorted(back) == sorted(before)
