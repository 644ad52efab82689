"""FHIR access beyond reads of active residents: a transaction Bundle writes only residents in the
sender's scope (existing ones authorized one by one, new ones placed in its area), and a merged
resident's 410 is answered only to a reader who may see the resident.

The district is tests/access/world.py: officers over street S1, residents in S1 and in S2.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yiyang.access import service as access
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.fhir.mapping import COMMUNITY_CODE_URL, HEALTH_RECORD_SYSTEM, RESIDENT_ID_SYSTEM
from yiyang.residents.identity import check_character
from yiyang.residents.models import Feed, LinkMethod, Resident, ResidentStatus, SourceRecord
from yiyang.sources.models import ImportRun

from ..access.world import World, build_world
from ..signed_in import bearer_for

FHIR_JSON = "application/fhir+json"
# Female (the 17th digit is even), born as world.py's residents: in_given 1945-01-01, out_given 1945-01-03.
IN_FIRST17 = "11010819450101002"
OUT_FIRST17 = "11010819450103002"
NEW_FIRST17 = "11010819500607004"
IN_ID_NUMBER = IN_FIRST17 + check_character(IN_FIRST17)
OUT_ID_NUMBER = OUT_FIRST17 + check_character(OUT_FIRST17)
NEW_ID_NUMBER = NEW_FIRST17 + check_character(NEW_FIRST17)
OUT_RECORD_NUMBER = "22020800200200002"
PHONE = "13800000001"


@pytest.fixture
def world(db: Database) -> World:
    """world.py's district, the S1 and S2 residents with ID numbers, phones and a health record,
    and a civil-affairs officer over S2 besides the one over S1."""
    built = build_world(db)
    with db.unit_of_work() as session:
        for key, number in (("in_given", IN_ID_NUMBER), ("out_given", OUT_ID_NUMBER)):
            resident = session.get(Resident, built.residents[key])
            resident.id_number = number
            resident.phone = PHONE
        session.add(
            SourceRecord(
                feed=Feed.health, source_key=OUT_RECORD_NUMBER, resident_id=built.residents["out_given"],
                observed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), content_hash="0" * 32, payload={"name": "测试2"},
                link_method=LinkMethod.new,
            )
        )  # fmt: skip
        officer = access.create_user(session, "officer-s2")
        access.grant_role(session, officer, Role.civil_affairs_officer, area_id=built.areas["S2"])
        built.users["officer-s2"] = officer.id
    built.headers["officer-s2"] = bearer_for(db, built.users["officer-s2"])
    return built


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def patient_bundle(
    name: str,
    *,
    id_number: str | None = None,
    record_number: str | None = None,
    phone: str = "13999999999",
    community: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    identifiers = []
    if id_number:
        identifiers.append({"system": RESIDENT_ID_SYSTEM, "value": id_number})
    if record_number:
        identifiers.append({"system": HEALTH_RECORD_SYSTEM, "value": record_number})
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"use": "official", "text": name}],
        "telecom": [{"system": "phone", "value": phone}],
        **(extra or {}),
    }
    if community:
        patient["address"] = [
            {"text": "某路1号", "extension": [{"url": COMMUNITY_CODE_URL, "valueString": community}]}
        ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": patient,
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }


def post(client: TestClient, bundle: dict[str, Any], headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post("/fhir", json=bundle, headers={**headers, "Content-Type": FHIR_JSON})


def outcome_codes(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [issue["details"]["coding"][0]["code"] for issue in response.json()["issue"]]


def last_audit_id(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar_one()


def audit_after(database: Database, since: int) -> list[AuditEvent]:
    with database.unit_of_work() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.id > since)).scalars())


def name_and_phone(database: Database, resident_id: int) -> tuple[str, str | None]:
    with database.unit_of_work() as session:
        resident = session.get(Resident, resident_id)
        return resident.name, resident.phone


def counts(database: Database) -> tuple[int, int]:
    """(residents, import runs)"""
    with database.unit_of_work() as session:
        return (
            session.execute(select(func.count()).select_from(Resident)).scalar_one(),
            session.execute(select(func.count()).select_from(ImportRun)).scalar_one(),
        )


# -- transactions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bundle",
    [
        patient_bundle("冒名者", id_number=OUT_ID_NUMBER),
        patient_bundle("冒名者", record_number=OUT_RECORD_NUMBER),
        # the ID number names the S2 resident, the community would move them into S1
        patient_bundle("冒名者", id_number=OUT_ID_NUMBER, community="C1"),
    ],
    ids=["id_number", "record_number", "moved_into_s1"],
)
def test_officer_cannot_write_a_resident_outside_their_area(
    client: TestClient, world: World, bundle: dict[str, Any]
) -> None:
    # given the civil-affairs officer over S1 and a resident living in S2
    resident_id = world.residents["out_given"]
    before, stored = last_audit_id(world.database), counts(world.database)
    # when the officer sends a Patient naming that resident's ID number or health record
    response = post(client, bundle, world.token(Role.civil_affairs_officer))
    # then it is refused as out of scope, and the answer names no Patient
    assert response.status_code == 403, response.text
    assert outcome_codes(response) == ["access.scope"]
    assert "Patient/" not in response.text
    # and nothing was written: the resident keeps their name and phone, no import run, no resident
    assert name_and_phone(world.database, resident_id) == ("测试2", PHONE)
    assert counts(world.database) == stored
    # and the refusal is audited against that resident
    rows = audit_after(world.database, before)
    assert any(
        r.resident_id == resident_id and r.outcome == AuditOutcome.denied and r.reason == "access.scope"
        for r in rows
    ), [(r.resident_id, r.outcome, r.resource_type) for r in rows]
    assert not any(r.outcome == AuditOutcome.allowed and r.resource_type == "fhir_transaction" for r in rows)


def test_officer_updates_a_resident_in_their_area_and_the_audit_names_them(
    client: TestClient, world: World
) -> None:
    # given the civil-affairs officer over S1 and a resident living in S1
    resident_id = world.residents["in_given"]
    before = last_audit_id(world.database)
    # when the officer sends a Patient with that resident's ID number, a new name and phone
    response = post(
        client, patient_bundle("新名字", id_number=IN_ID_NUMBER), world.token(Role.civil_affairs_officer)
    )
    # then it is stored on that resident
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["response"]["location"] == f"Patient/{resident_id}"
    assert name_and_phone(world.database, resident_id) == ("新名字", "13999999999")
    # and the audit trail names the resident written
    rows = audit_after(world.database, before)
    assert any(
        r.resident_id == resident_id
        and r.outcome == AuditOutcome.allowed
        and r.resource_type == "fhir_transaction"
        and r.action == "update"
        for r in rows
    ), [(r.resident_id, r.outcome, r.resource_type, r.action) for r in rows]


def test_officer_creates_a_new_resident_in_their_area(client: TestClient, world: World) -> None:
    # given the civil-affairs officer over S1
    before = last_audit_id(world.database)
    # when the officer sends a new person placed in community C1 (under S1)
    response = post(
        client, patient_bundle("新居民", id_number=NEW_ID_NUMBER, community="C1"),
        world.token(Role.civil_affairs_officer),
    )  # fmt: skip
    # then the resident is created and the audit trail names them
    assert response.status_code == 200, response.text
    created = int(response.json()["entry"][0]["response"]["location"].removeprefix("Patient/"))
    assert name_and_phone(world.database, created)[0] == "新居民"
    rows = audit_after(world.database, before)
    assert any(
        r.resident_id == created and r.outcome == AuditOutcome.allowed and r.action == "create" for r in rows
    ), [(r.resident_id, r.outcome, r.resource_type, r.action) for r in rows]


@pytest.mark.parametrize("community", ["C2", None], ids=["in_s2", "unplaced"])
def test_officer_cannot_create_a_resident_outside_their_area(
    client: TestClient, world: World, community: str | None
) -> None:
    # given the civil-affairs officer over S1
    before, stored = last_audit_id(world.database), counts(world.database)
    # when the officer sends a new person placed in S2, or placed nowhere
    response = post(
        client, patient_bundle("新居民", id_number=NEW_ID_NUMBER, community=community),
        world.token(Role.civil_affairs_officer),
    )  # fmt: skip
    # then it is refused and nothing is stored, the refusal audited
    assert response.status_code == 403, response.text
    assert outcome_codes(response) == ["access.scope"]
    assert counts(world.database) == stored
    rows = audit_after(world.database, before)
    assert any(r.outcome == AuditOutcome.denied and r.resource_type == "fhir_transaction" for r in rows)


def test_an_officer_over_the_residents_street_may_write_them(client: TestClient, world: World) -> None:
    # given the civil-affairs officer over S2, whose area holds the S2 resident
    resident_id = world.residents["out_given"]
    # when they send the same Patient the S1 officer was refused
    response = post(client, patient_bundle("冒名者", id_number=OUT_ID_NUMBER), world.headers["officer-s2"])
    # then it is stored on that resident
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["response"]["location"] == f"Patient/{resident_id}"
    assert name_and_phone(world.database, resident_id)[0] == "冒名者"


# -- merged residents --------------------------------------------------------------------------


@pytest.fixture
def merged(world: World) -> int:
    """The S2 resident out_given, merged into out_withdrawn (as a merge leaves the row)."""
    with world.database.unit_of_work() as session:
        resident = session.get(Resident, world.residents["out_given"])
        resident.status = ResidentStatus.merged
        resident.merged_into_id = world.residents["out_withdrawn"]
        resident.id_number = None
    return world.residents["out_given"]


def merged_paths(resident_id: int) -> list[str]:
    return [
        f"/fhir/Patient/{resident_id}",
        f"/fhir/Patient/{resident_id}/$everything",
        f"/fhir/Consent?patient=Patient/{resident_id}",
    ]


@pytest.mark.parametrize("path_index", range(3), ids=["Patient", "$everything", "Consent"])
def test_a_merge_is_not_told_to_a_reader_out_of_scope(
    client: TestClient, world: World, merged: int, path_index: int
) -> None:
    # given a merged resident and the volunteer, who is not paired with them
    before = last_audit_id(world.database)
    # when the volunteer reads the merged resident
    response = client.get(merged_paths(merged)[path_index], headers=world.token(Role.volunteer))
    # then it is the usual refusal, naming neither the merge nor the survivor
    assert response.status_code == 403, response.text
    assert outcome_codes(response) == ["access.scope"]
    assert "Patient/" not in response.text and "merged" not in response.text
    # and the refusal is audited against that resident
    rows = audit_after(world.database, before)
    assert any(r.resident_id == merged and r.outcome == AuditOutcome.denied for r in rows)


@pytest.mark.parametrize("path_index", range(3), ids=["Patient", "$everything", "Consent"])
def test_a_merge_is_told_to_a_reader_in_scope(
    client: TestClient, world: World, merged: int, path_index: int
) -> None:
    # given a merged resident and the civil-affairs officer over their street
    before = last_audit_id(world.database)
    # when the officer reads the merged resident
    response = client.get(merged_paths(merged)[path_index], headers=world.headers["officer-s2"])
    # then it is gone, naming the survivor
    assert response.status_code == 410, response.text
    assert outcome_codes(response) == ["resident.merged"]
    assert f"Patient/{world.residents['out_withdrawn']}" in response.text
    # and the read is audited as allowed
    rows = audit_after(world.database, before)
    assert any(r.resident_id == merged and r.outcome == AuditOutcome.allowed for r in rows)


# -- searches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.family_doctor, Role.volunteer, Role.civil_affairs_officer])
def test_a_search_lists_only_residents_in_scope_with_consent_and_audits_each(
    client: TestClient, world: World, role: Role
) -> None:
    # given the district, where only in_given is in every role's scope with consent in force
    before = last_audit_id(world.database)
    # when the role searches every Patient
    response = client.get("/fhir/Patient", headers=world.token(role))
    # then the searchset lists in_given only
    assert response.status_code == 200, response.text
    listed = [int(e["resource"]["id"]) for e in response.json().get("entry", ())]
    assert listed == [world.residents["in_given"]]
    # and the Patient it hands out is audited as read, as a Patient read is; no one else is
    rows = [r for r in audit_after(world.database, before) if r.resident_id is not None]
    assert [(r.resident_id, r.resource_type, r.outcome) for r in rows] == [
        (world.residents["in_given"], "Patient", AuditOutcome.allowed)
    ]


def test_a_search_with_count_zero_audits_no_one(client: TestClient, world: World) -> None:
    before = last_audit_id(world.database)
    response = client.get("/fhir/Patient", params={"_count": 0}, headers=world.token(Role.family_doctor))
    assert response.status_code == 200 and response.json()["total"] == 1
    assert [r for r in audit_after(world.database, before) if r.resident_id is not None] == []
