"""Revealing a field and reading the audit trail are decided by the grants that may do it: a
resident or officer who also volunteers reveals nothing of a paired elder, and reads no audit
events about residents only the volunteer role reaches; an administrator over one street reads
the trail of that street's residents only, never events naming no resident.

The scene is ``build`` of test_mixed_roles: ``resident:in_given`` and the civil-affairs officer of
S1 also volunteer and are paired with ``out_given`` (S2); the administrator is over S1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.access.actor import system_actor
from yiyang.access.audit import record_access
from yiyang.access.models import AuditEvent
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database

from .test_mixed_roles import OTHER_ID_NUMBER, OWN_ID_NUMBER, build
from .world import World

OFFICER = Role.civil_affairs_officer.value
ADMIN = Role.district_admin.value


@pytest.fixture
def world(db: Database) -> World:
    return build(db)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def reveal(client: TestClient, headers: dict[str, str], resident_id: int, field: str = "id_number"):
    return client.post(
        f"/api/residents/{resident_id}/reveal",
        json={"field": field, "reason": "核对身份信息"},
        headers=headers,
    )


def reveal_rows(world: World, resident_id: int) -> list[AuditEvent]:
    with world.database.unit_of_work() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.resident_id == resident_id, AuditEvent.action == "reveal")
        ).all()
        session.expunge_all()
        return list(rows)


def test_resident_who_volunteers_may_not_reveal_a_paired_elders_id_number(
    client: TestClient, world: World
) -> None:
    other = world.residents["out_given"]
    response = reveal(client, world.headers["resident:in_given"], other)
    assert response.status_code == 403, response.text
    assert OTHER_ID_NUMBER not in response.text
    assert all(row.outcome == "denied" for row in reveal_rows(world, other))


def test_resident_who_volunteers_still_reveals_their_own_id_number(client: TestClient, world: World) -> None:
    own = world.residents["in_given"]
    response = reveal(client, world.headers["resident:in_given"], own)
    assert response.status_code == 200, response.text
    assert response.json()["value"] == OWN_ID_NUMBER
    allowed = [row for row in reveal_rows(world, own) if row.outcome == "allowed"]
    assert allowed and all(row.role == Role.resident.value for row in allowed)


def test_officer_who_volunteers_may_not_reveal_an_elder_outside_the_area(
    client: TestClient, world: World
) -> None:
    other = world.residents["out_given"]  # S2; the officer is over S1
    response = reveal(client, world.headers[OFFICER], other)
    assert response.status_code == 403, response.text
    assert OTHER_ID_NUMBER not in response.text
    assert not [row for row in reveal_rows(world, other) if row.outcome == "allowed"]


def test_officer_reveals_within_the_area_audited_as_the_officer(client: TestClient, world: World) -> None:
    own = world.residents["in_given"]  # S1
    response = reveal(client, world.headers[OFFICER], own)
    assert response.status_code == 200, response.text
    assert response.json()["value"] == OWN_ID_NUMBER
    allowed = [row for row in reveal_rows(world, own) if row.outcome == "allowed"]
    assert allowed and all(row.role == OFFICER for row in allowed)


def audit_total(client: TestClient, headers: dict[str, str], **params: object) -> int:
    response = client.get("/api/audit/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["total"]


def exported_resident_ids(client: TestClient, headers: dict[str, str]) -> set[str]:
    response = client.get("/api/audit/events.csv", headers=headers)
    assert response.status_code == 200, response.text
    lines = response.content.decode("utf-8-sig").splitlines()[1:]
    return {line.split(",")[6] for line in lines}


@pytest.fixture
def trail(client: TestClient, world: World) -> World:
    """Events about out_given (S2), about in_given (S1), and one naming no resident."""
    readers = {"out_given": Role.volunteer.value, "in_given": Role.family_doctor.value}
    for name, reader in readers.items():
        response = client.get(f"/api/residents/{world.residents[name]}", headers=world.headers[reader])
        assert response.status_code == 200, response.text
    with world.database.unit_of_work() as session:
        record_access(session, system_actor("test"), action="read", resource_type="import_run")
    return world


def test_officer_who_volunteers_reads_no_audit_events_about_a_paired_elder_outside_the_area(
    client: TestClient, trail: World
) -> None:
    officer = trail.headers[OFFICER]
    assert audit_total(client, officer, resident_id=trail.residents["out_given"]) == 0
    assert audit_total(client, officer, resident_id=trail.residents["in_given"]) > 0
    exported = exported_resident_ids(client, officer)
    assert str(trail.residents["out_given"]) not in exported
    assert "" not in exported


def test_admin_over_one_street_reads_only_that_streets_residents_events(
    client: TestClient, trail: World
) -> None:
    admin = trail.headers[ADMIN]
    assert audit_total(client, admin, resident_id=trail.residents["out_given"]) == 0
    assert audit_total(client, admin, resident_id=trail.residents["in_given"]) > 0
    with trail.database.unit_of_work() as session:
        named = session.scalar(select(AuditEvent.id).where(AuditEvent.resident_id.is_(None)).limit(1))
    assert named is not None
    exported = exported_resident_ids(client, admin)
    assert "" not in exported  # events naming no resident are the whole-trail reader's
    assert str(trail.residents["out_given"]) not in exported
    assert str(trail.residents["in_given"]) in exported
