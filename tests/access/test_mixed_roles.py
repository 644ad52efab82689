"""A person holding a resident's (or family member's) role and a staff role sees another resident
only as the staff role shows them: the groups come from the grants whose scope covers the resident.

Healthy elders volunteer (时间银行) and staff live in the district: the resident user of ``in_given``
(tests/access/world.py) also volunteers and is paired with ``out_given``, who has an ID number and
permits every sharing. The world's plain volunteer is paired with ``out_given`` too, to compare,
and so is the civil-affairs officer of street S1 (``out_given`` lives in S2), who also volunteers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from yiyang.access import service
from yiyang.access.models import RelationshipKind, ResidentRelationship, User
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.fhir.api import RESIDENT_ID_SYSTEM
from yiyang.residents.identity import check_character
from yiyang.residents.models import Resident

from .world import World, build_world

FIRST17 = "11010819450103002"  # out_given's birth date, 1945-01-03
OTHER_ID_NUMBER = FIRST17 + check_character(FIRST17)
OWN_FIRST17 = "11010819450101003"  # in_given's birth date, 1945-01-01
OWN_ID_NUMBER = OWN_FIRST17 + check_character(OWN_FIRST17)
ALL_GROUPS = ["care_services", "civil_affairs", "clinical", "contact", "living", "registry", "sensor"]


def build(database: Database) -> World:
    world = build_world(database)
    since = utcnow() - dt.timedelta(days=30)
    with database.unit_of_work() as session:
        session.get(Resident, world.residents["out_given"]).id_number = OTHER_ID_NUMBER
        session.get(Resident, world.residents["in_given"]).id_number = OWN_ID_NUMBER
        elder = session.get(User, world.users["resident:in_given"])
        officer = session.get(User, world.users[Role.civil_affairs_officer.value])  # over S1 only
        for person in (elder, officer):
            service.grant_role(session, person, Role.volunteer)
        other = world.residents["out_given"]
        for user_id in (elder.id, officer.id, world.users[Role.volunteer.value]):
            session.add(ResidentRelationship(
                resident_id=other, kind=RelationshipKind.pairing, user_id=user_id, valid_from=since,
                source_type="test", source_id=user_id,
            ))  # fmt: skip
    return world


@pytest.fixture
def world(db: Database) -> World:
    return build(db)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def elder(world: World) -> dict[str, str]:
    return world.headers["resident:in_given"]


def volunteer(world: World) -> dict[str, str]:
    return world.headers[Role.volunteer.value]


def listed(client: TestClient, headers: dict[str, str], **params: str) -> dict[int, dict]:
    response = client.get("/api/residents", params={"limit": "200", **params}, headers=headers)
    assert response.status_code == 200, response.text[:300]
    return {item["id"]: item for item in response.json()["items"]}


def test_profile_of_a_paired_resident_shows_what_a_plain_volunteer_sees(
    client: TestClient, world: World
) -> None:
    # given a resident who also volunteers, paired with another resident
    other = world.residents["out_given"]
    # when both they and a plain volunteer read the other resident's profile
    theirs = client.get(f"/api/residents/{other}", headers=elder(world))
    plain = client.get(f"/api/residents/{other}", headers=volunteer(world))
    # then they see the volunteer's groups, and no registry fact
    assert theirs.status_code == plain.status_code == 200
    assert theirs.json()["field_groups"] == plain.json()["field_groups"] == ["care_services", "contact"]
    attributes = {fact["attribute"] for fact in theirs.json()["facts"]}
    assert not attributes & {"birth_date", "id_number", "insurance_type", "living_arrangement"}


def test_own_record_still_shows_every_group(client: TestClient, world: World) -> None:
    # given the same person, when they read their own record
    response = client.get(f"/api/residents/{world.residents['in_given']}", headers=elder(world))
    # then every group is shown, birth date included
    assert response.status_code == 200
    assert response.json()["field_groups"] == ALL_GROUPS
    assert "birth_date" in {fact["attribute"] for fact in response.json()["facts"]}


def test_list_shows_the_birth_date_only_of_their_own_record(client: TestClient, world: World) -> None:
    # given the same person, when they list the residents they may see
    items = listed(client, elder(world))
    # then the other resident's item has no birth date (as for a plain volunteer), their own has it
    other, own = world.residents["out_given"], world.residents["in_given"]
    assert set(items) == {own, other}
    assert "birth_date" not in items[other]
    assert "birth_date" not in listed(client, volunteer(world))[other]
    assert items[own]["birth_date"] == "1945-01-01"


def test_search_by_id_number_is_refused(client: TestClient, world: World) -> None:
    # given the same person, when they search by the other resident's ID number (and by their own)
    for number in (OTHER_ID_NUMBER, OWN_ID_NUMBER):
        response = client.get("/api/residents", params={"q": number}, headers=elder(world))
        # then it is refused as for a plain volunteer: the search would be an oracle for the number
        assert response.status_code == 403, response.text[:300]
        assert response.json()["code"] == "resident.search.registry"
        assert number not in response.text
    # and a search by name still finds their own record
    assert world.residents["in_given"] in listed(client, elder(world), q="测试0")


def test_fhir_patient_of_the_paired_resident_has_no_registry_values(client: TestClient, world: World) -> None:
    # given the same person, when they read the other resident as a FHIR Patient and search by identifier
    other = world.residents["out_given"]
    patient = client.get(f"/fhir/Patient/{other}", headers=elder(world))
    search = client.get(
        "/fhir/Patient",
        params={"identifier": f"{RESIDENT_ID_SYSTEM}|{OTHER_ID_NUMBER}"},
        headers=elder(world),
    )
    # then the Patient has no birth date or ID identifier, and the search is refused
    assert patient.status_code == 200, patient.text[:300]
    assert "birthDate" not in patient.json()
    systems = {identifier.get("system") for identifier in patient.json().get("identifier", [])}
    assert RESIDENT_ID_SYSTEM not in systems
    assert search.status_code == 403, search.text[:300]


def test_officer_who_volunteers_sees_a_paired_elder_outside_the_area_as_a_volunteer(
    client: TestClient, world: World
) -> None:
    # given a civil-affairs officer over S1 who also volunteers, paired with an elder living in S2
    officer = world.headers[Role.civil_affairs_officer.value]
    other, inside = world.residents["out_given"], world.residents["in_given"]
    # when they read the elder's profile, list residents, and open the staff list page
    profile = client.get(f"/api/residents/{other}", headers=officer)
    items = listed(client, officer)
    # then the elder is shown as to a volunteer, while residents of S1 keep the officer's groups
    assert profile.json()["field_groups"] == ["care_services", "contact"]
    assert "birth_date" not in items[other]
    assert items[inside]["birth_date"] == "1945-01-01"
    # and searching by ID number is refused: it would reach the paired elder too
    response = client.get("/api/residents", params={"q": OTHER_ID_NUMBER}, headers=officer)
    assert response.status_code == 403
    assert response.json()["code"] == "resident.search.registry"
