"""Putting a proposed care plan in force (``POST /api/care-plans/{id}/activate``) is a lasting
clinical decision: the clinician's own team scope decides, never a break-the-glass opening, and the
plan records who accepted it from the signed-in user, not from the request body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.access.world import World, build_world
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.tiers.models import CarePlan, CarePlanStatus
from yiyang.tiers.service import retier_residents

REASON = "急诊来电需要查看病历信息 (an emergency call needs the record)"


@pytest.fixture
def world(sqlite_db: Database) -> World:
    world = build_world(sqlite_db)
    with sqlite_db.unit_of_work() as session:
        retier_residents(session, list(world.residents.values()))
    return world


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def proposed_plan_of(world: World, key: str) -> int:
    with world.database.unit_of_work() as session:
        return session.scalars(
            select(CarePlan.id).where(
                CarePlan.resident_id == world.residents[key], CarePlan.status == CarePlanStatus.proposed
            )
        ).one()


def plan_row(world: World, plan_id: int) -> tuple[str, str]:
    with world.database.unit_of_work() as session:
        plan = session.get(CarePlan, plan_id)
        assert plan is not None
        return str(getattr(plan.status, "value", plan.status)), plan.status_changed_by


def test_a_clinician_of_another_team_who_broke_the_glass_may_not_activate_the_plan(
    client: TestClient, world: World
) -> None:
    # given a resident with no contract with the nurse's team, and her proposed plan
    resident_id = world.residents["out_given"]
    plan_id = proposed_plan_of(world, "out_given")
    nurse = world.token(Role.nurse)
    # and the nurse has broken the glass for her (an emergency read)
    opened = client.post(f"/api/residents/{resident_id}/break-glass", json={"reason": REASON}, headers=nurse)
    assert opened.status_code == 201, opened.text
    assert client.get(f"/api/care-plans/{plan_id}", headers=nurse).status_code == 200  # the glass reads
    # when she activates the plan
    response = client.post(f"/api/care-plans/{plan_id}/activate", json={"by": "护士"}, headers=nurse)
    # then it is refused by her own scope, the plan stays proposed, and the refusal is audited
    assert response.status_code == 403 and response.json()["code"] == "access.scope", response.text
    assert plan_row(world, plan_id) == ("proposed", "tier-engine")
    with world.database.unit_of_work() as session:
        denied = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.user_id == world.users["nurse"], AuditEvent.resident_id == resident_id,
                AuditEvent.resource_type == "care_plan", AuditEvent.outcome == AuditOutcome.denied,
            )
        ).all()  # fmt: skip
    assert [str(action) for action in denied] == ["update"]


def test_the_acceptor_is_the_signed_in_clinician_not_the_name_in_the_body(
    client: TestClient, world: World
) -> None:
    # given a contracted resident's proposed plan
    plan_id = proposed_plan_of(world, "in_given")
    # when a nurse of her team activates it, naming the doctor as the acceptor
    response = client.post(
        f"/api/care-plans/{plan_id}/activate",
        json={"by": "王主任（家庭医生）"},
        headers=world.token(Role.nurse),
    )
    # then it is active and names the nurse who signed in, whatever the body said
    assert response.status_code == 200, response.text
    assert response.json()["status_changed_by"] == "nurse"
    assert plan_row(world, plan_id) == ("active", "nurse")


def test_a_body_without_a_name_is_accepted(client: TestClient, world: World) -> None:
    plan_id = proposed_plan_of(world, "in_given")
    response = client.post(
        f"/api/care-plans/{plan_id}/activate", json={}, headers=world.token(Role.family_doctor)
    )
    assert response.status_code == 200, response.text
    assert plan_row(world, plan_id) == ("active", "family_doctor")
