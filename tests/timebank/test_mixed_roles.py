"""Staff act on pairings in their staff roles only; a volunteer's own grant counts only for their
own pairing.

The civil-affairs officer of street S1 (tests/access/world.py) also volunteers (时间银行) and is
paired with ``out_given``, who lives in S2 and permits every sharing: the officer's volunteer
grant reaches that elder, the officer's own role does not. That pairing must not let the officer
arrange or end other volunteers' pairings with the elder, nor list, on their hours page, a paired
elder whom volunteers may not see because the officer's role sees them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.access.world import World, build_world
from yiyang.access import service as access
from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import AuditEvent, RelationshipKind, ResidentRelationship, User
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.residents.models import Resident
from yiyang.timebank.models import VolunteerPairing, VolunteerProfile
from yiyang.timebank.service import PAIRING_SOURCE

OFFICER = Role.civil_affairs_officer.value
VOLUNTEER = Role.volunteer.value


def paired(session: Session, volunteer_user_id: int, resident_id: int, since: dt.datetime) -> int:
    """A pairing as ``timebank.pair`` writes it: the pairing and its relationship."""
    pairing = VolunteerPairing(volunteer_user_id=volunteer_user_id, resident_id=resident_id, started_at=since)
    session.add(pairing)
    session.flush()
    session.add(ResidentRelationship(
        resident_id=resident_id, kind=RelationshipKind.pairing, user_id=volunteer_user_id, valid_from=since,
        source_type=PAIRING_SOURCE, source_id=pairing.id, created_at=since,
    ))  # fmt: skip
    session.flush()
    return pairing.id


@pytest.fixture
def world(db: Database) -> World:
    world = build_world(db)
    since = utcnow() - dt.timedelta(days=30)
    with db.unit_of_work() as session:
        officer = session.get(User, world.users[OFFICER])
        assert officer is not None
        access.grant_role(session, officer, Role.volunteer)
        paired(session, officer.id, world.residents["out_given"], since)
        for user_id in (world.users[VOLUNTEER], officer.id):
            session.add(VolunteerProfile(
                user_id=user_id, area_id=world.areas["S2"], skills=[], availability=[], active=True,
                created_at=since, updated_at=since,
            ))  # fmt: skip
    return world


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def pairings_with(world: World, resident_id: int, volunteer_user_id: int) -> list[VolunteerPairing]:
    with world.database.unit_of_work() as session:
        return list(
            session.scalars(
                select(VolunteerPairing).where(
                    VolunteerPairing.resident_id == resident_id,
                    VolunteerPairing.volunteer_user_id == volunteer_user_id,
                )
            )
        )


def officer_pairing(world: World) -> int:
    """The officer's own pairing, as a volunteer, with the elder in S2."""
    [pairing] = pairings_with(world, world.residents["out_given"], world.users[OFFICER])
    return pairing.id


def last_pairing_audit(world: World, resident_id: int) -> AuditEvent:
    with world.database.unit_of_work() as session:
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.resident_id == resident_id, AuditEvent.resource_type == "volunteer_pairing")
            .order_by(AuditEvent.id.desc())
        ).first()
        assert event is not None
        session.expunge(event)
        return event


def test_an_officer_who_volunteers_cannot_pair_others_with_an_elder_outside_their_area(
    client: TestClient, world: World
) -> None:
    # given the officer over S1, paired as a volunteer with an elder in S2
    elder, volunteer = world.residents["out_given"], world.users[VOLUNTEER]
    # when the officer pairs another volunteer with that elder
    response = client.post(
        "/api/timebank/pairings", json={"volunteer_user_id": volunteer, "resident_id": elder},
        headers=world.headers[OFFICER],
    )  # fmt: skip
    # then it is refused as outside the officer's scope, nothing is written, and it is audited
    assert response.status_code == 403, response.text[:300]
    assert response.json()["code"] == "access.scope"
    assert pairings_with(world, elder, volunteer) == []
    with world.database.unit_of_work() as session:
        assert (
            session.scalars(
                select(ResidentRelationship).where(
                    ResidentRelationship.resident_id == elder, ResidentRelationship.user_id == volunteer
                )
            ).all()
            == []
        )
    event = last_pairing_audit(world, elder)
    assert (event.outcome, event.reason, event.action, event.role) == (
        "denied", "access.scope", "create", OFFICER,
    )  # fmt: skip


def test_the_officer_still_pairs_volunteers_with_elders_in_their_area(
    client: TestClient, world: World
) -> None:
    # given an elder in S1, when the same officer pairs the volunteer with them
    elder, volunteer = world.residents["in_given"], world.users[VOLUNTEER]
    response = client.post(
        "/api/timebank/pairings", json={"volunteer_user_id": volunteer, "resident_id": elder},
        headers=world.headers[OFFICER],
    )  # fmt: skip
    # then the pairing is made, on the officer's grant
    assert response.status_code == 201, response.text[:300]
    assert [p.id for p in pairings_with(world, elder, volunteer)] == [response.json()["id"]]
    event = last_pairing_audit(world, elder)
    assert (event.outcome, event.action, event.role) == ("allowed", "create", OFFICER)


def test_an_officer_who_volunteers_cannot_end_another_volunteers_pairing_outside_their_area(
    client: TestClient, world: World
) -> None:
    # given the plain volunteer also paired with the elder in S2
    elder, volunteer = world.residents["out_given"], world.users[VOLUNTEER]
    with world.database.unit_of_work() as session:
        pairing_id = paired(session, volunteer, elder, utcnow() - dt.timedelta(days=7))
    # when the officer (paired with the same elder as a volunteer) ends that pairing
    response = client.post(
        f"/api/timebank/pairings/{pairing_id}/end", json={"reason": "probe"}, headers=world.headers[OFFICER]
    )
    # then it is refused, the pairing and its relationship stay in force, and it is audited
    assert response.status_code == 403, response.text[:300]
    assert response.json()["code"] == "access.scope"
    [pairing] = pairings_with(world, elder, volunteer)
    assert pairing.ended_at is None and pairing.end_reason is None
    with world.database.unit_of_work() as session:
        relationship = session.scalars(
            select(ResidentRelationship).where(
                ResidentRelationship.source_type == PAIRING_SOURCE,
                ResidentRelationship.source_id == pairing_id,
            )
        ).one()
        assert relationship.ended_at is None
    event = last_pairing_audit(world, elder)
    assert (event.outcome, event.reason, event.action, event.role) == (
        "denied", "access.scope", "update", OFFICER,
    )  # fmt: skip


def test_an_officer_who_volunteers_may_end_their_own_pairing(client: TestClient, world: World) -> None:
    # given the officer's own pairing with the elder in S2
    elder, pairing_id = world.residents["out_given"], officer_pairing(world)
    # when the officer ends it
    response = client.post(
        f"/api/timebank/pairings/{pairing_id}/end", json={"reason": "搬家"}, headers=world.headers[OFFICER]
    )
    # then it ends, on their volunteer grant (the pairing is theirs)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["ended_at"] is not None
    event = last_pairing_audit(world, elder)
    assert (event.outcome, event.action, event.role) == ("allowed", "update", VOLUNTEER)


def test_a_volunteer_ends_their_own_pairing_but_not_anothers(client: TestClient, world: World) -> None:
    # given the plain volunteer's own pairing with the elder in S2, and the officer's
    elder, volunteer = world.residents["out_given"], world.users[VOLUNTEER]
    with world.database.unit_of_work() as session:
        own = paired(session, volunteer, elder, utcnow() - dt.timedelta(days=7))
    # when the volunteer ends the officer's pairing
    others = client.post(
        f"/api/timebank/pairings/{officer_pairing(world)}/end", json={}, headers=world.headers[VOLUNTEER]
    )
    # then it is refused (only staff end others' pairings), audited, and the pairing stays
    assert others.status_code == 403, others.text[:300]
    assert others.json()["code"] == "timebank.pairing.forbidden"
    assert [p.ended_at for p in pairings_with(world, elder, world.users[OFFICER])] == [None]
    event = last_pairing_audit(world, elder)
    assert (event.outcome, event.reason, event.action) == ("denied", "timebank.pairing.forbidden", "update")
    # and when the volunteer ends their own, it ends
    response = client.post(f"/api/timebank/pairings/{own}/end", json={}, headers=world.headers[VOLUNTEER])
    assert response.status_code == 200, response.text[:300]
    assert response.json()["ended_at"] is not None


def test_a_volunteer_cannot_arrange_a_pairing(client: TestClient, world: World) -> None:
    # given a volunteer with no staff role, when they pair themselves with an elder they serve
    elder = world.residents["in_given"]
    response = client.post(
        "/api/timebank/pairings", json={"volunteer_user_id": world.users[VOLUNTEER], "resident_id": elder},
        headers=world.headers[VOLUNTEER],
    )  # fmt: skip
    # then it is refused, nothing is written, and the attempt is audited as denied
    assert response.status_code == 403, response.text[:300]
    assert response.json()["code"] == "timebank.pairing.forbidden"
    assert pairings_with(world, elder, world.users[VOLUNTEER]) == []
    event = last_pairing_audit(world, elder)
    assert (event.outcome, event.reason, event.action) == ("denied", "timebank.pairing.forbidden", "create")


def test_hours_list_a_paired_elder_only_as_a_volunteer_may_see_them(client: TestClient, world: World) -> None:
    # given the officer also paired with an elder in S1 who refuses volunteers their care services
    # (the officer's own role still sees that elder: the civil-affairs class is permitted)
    inside, outside = world.residents["in_given"], world.residents["out_given"]
    now = utcnow()
    with world.database.unit_of_work() as session:
        paired(session, world.users[OFFICER], inside, now - dt.timedelta(days=7))
        record_consent(
            session, system_actor("test"), inside, category=DataCategory.care_services,
            recipient_class=RecipientClass.social, purpose=Purpose.care, decision=ConsentDecision.deny,
            now=now - dt.timedelta(minutes=1),
        )  # fmt: skip
    # when the officer reads their hours
    response = client.get("/api/timebank/me", headers=world.headers[OFFICER])
    # then the pairings listed are those a volunteer may see: consent to volunteers decides
    assert response.status_code == 200, response.text[:300]
    assert [p["resident_id"] for p in response.json()["pairings"]] == [outside]
    # and the hours page names the same elders only
    with world.database.unit_of_work() as session:
        names = {rid: session.get_one(Resident, rid).name for rid in (inside, outside)}
    page = client.get("/timebank/me", headers=world.headers[OFFICER])
    assert page.status_code == 200
    assert names[outside] in page.text and names[inside] not in page.text


def test_a_volunteer_ends_their_own_pairing_after_the_elder_withdrew_consent(
    client: TestClient, world: World
) -> None:
    # given a volunteer paired with an elder who then refuses volunteers their care services
    elder, volunteer = world.residents["in_given"], world.users[VOLUNTEER]
    now = utcnow()
    with world.database.unit_of_work() as session:
        own = paired(session, volunteer, elder, now - dt.timedelta(days=7))
        record_consent(
            session, system_actor("test"), elder, category=DataCategory.care_services,
            recipient_class=RecipientClass.social, purpose=Purpose.care, decision=ConsentDecision.deny,
            now=now - dt.timedelta(minutes=1),
        )  # fmt: skip
    # when the volunteer ends the pairing
    response = client.post(f"/api/timebank/pairings/{own}/end", json={}, headers=world.headers[VOLUNTEER])
    # then it ends with its relationship (nothing is left in force to come back with a new consent),
    # audited on the volunteer's grant
    assert response.status_code == 200, response.text[:300]
    with world.database.unit_of_work() as session:
        row = session.scalars(
            select(ResidentRelationship).where(
                ResidentRelationship.source_type == PAIRING_SOURCE, ResidentRelationship.source_id == own
            )
        ).one()
        assert row.ended_at is not None
    event = last_pairing_audit(world, elder)
    assert (event.outcome, event.action, event.role) == ("allowed", "update", VOLUNTEER)
    # and ending it again is a conflict
    again = client.post(f"/api/timebank/pairings/{own}/end", json={}, headers=world.headers[VOLUNTEER])
    assert again.status_code == 409 and again.json()["code"] == "timebank.pairing.ended"
