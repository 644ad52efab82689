"""Break the glass: a clinician opens a resident outside scope with a reason, for a limited time;
every use is audited as break_glass; officers review the openings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.access import policy
from yiyang.access import service as access
from yiyang.access.break_glass import open_break_glass
from yiyang.access.models import AuditAction, AuditEvent, AuditOutcome
from yiyang.access.policy import DataCategory
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database
from yiyang.errors import Forbidden

from .conftest import FakeClock
from .world import World, build_world

REASON = "夜间跌倒呼救，签约医生联系不上 (night fall call, contracted doctor unreachable)"


@pytest.fixture
def world(sqlite_db: Database, clock: FakeClock) -> World:
    return build_world(sqlite_db, clock.now)


@pytest.fixture
def client(world: World, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(world.database, settings.model_copy(update={"break_glass_hours": 4}))
    app.state.clock = clock
    with TestClient(app) as test_client:
        yield test_client


def audit_rows(world: World, resident_id: int) -> list[tuple[str, str]]:
    with world.database.unit_of_work() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.outcome)
            .where(AuditEvent.resident_id == resident_id, AuditEvent.user_id == world.users["nurse"])
            .order_by(AuditEvent.id)
        ).all()
    return [(str(a), str(o)) for a, o in rows]


def test_break_the_glass_opens_for_a_while_and_every_use_is_audited(
    client: TestClient, world: World, clock: FakeClock
) -> None:
    nurse = world.token(Role.nurse)
    resident_id = world.residents["out_given"]
    # given a nurse refused a resident outside her team's contracts
    assert client.get(f"/api/residents/{resident_id}/care-plans", headers=nurse).status_code == 403
    # when she breaks the glass with a reason
    opened = client.post(f"/api/residents/{resident_id}/break-glass", json={"reason": REASON}, headers=nurse)
    assert opened.status_code == 201, opened.text
    assert opened.json()["expires_at"].startswith("2026-11-24T12:00")
    # then she may read the record, each read audited as break_glass
    assert client.get(f"/api/residents/{resident_id}/care-plans", headers=nurse).status_code == 200
    profile = client.get(f"/api/residents/{resident_id}", headers=nurse)
    assert profile.status_code == 200 and "clinical" in profile.json()["field_groups"]
    assert audit_rows(world, resident_id) == [
        ("read", "denied"), ("break_glass", "allowed"), ("break_glass", "allowed"), ("break_glass", "allowed"),
    ]  # fmt: skip
    # and four hours later the glass is whole again
    clock.advance(hours=4)
    assert client.get(f"/api/residents/{resident_id}/care-plans", headers=nurse).status_code == 403


def test_only_clinical_roles_break_the_glass_and_they_say_why(client: TestClient, world: World) -> None:
    resident_id = world.residents["out_given"]
    refused = client.post(
        f"/api/residents/{resident_id}/break-glass",
        json={"reason": REASON},
        headers=world.token(Role.volunteer),
    )
    assert refused.status_code == 403 and refused.json()["code"] == "access.break_glass.role"
    with world.database.unit_of_work() as session:
        denied = session.execute(
            select(AuditEvent).where(
                AuditEvent.user_id == world.users["volunteer"], AuditEvent.resident_id == resident_id
            )
        ).scalar_one()
        assert (denied.action, denied.outcome) == (AuditAction.break_glass, AuditOutcome.denied)
    too_short = client.post(
        f"/api/residents/{resident_id}/break-glass", json={"reason": "急"}, headers=world.token(Role.nurse)
    )
    assert too_short.status_code == 422 and too_short.json()["code"] == "access.break_glass.reason"


def test_officers_review_openings_in_their_area(client: TestClient, world: World) -> None:
    resident_id = world.residents["in_withdrawn"]  # consent withdrawn: the team is refused
    nurse = world.token(Role.nurse)
    assert client.get(f"/api/residents/{resident_id}/care-plans", headers=nurse).status_code == 403
    opened = client.post(
        f"/api/residents/{resident_id}/break-glass", json={"reason": REASON}, headers=nurse
    ).json()
    assert client.get(f"/api/residents/{resident_id}/care-plans", headers=nurse).status_code == 200
    # the health officer of the resident's street sees who, whom, why and when
    officer = world.token(Role.health_officer)
    listed = client.get("/api/break-glass", params={"unreviewed": True}, headers=officer).json()
    assert listed["total"] == 1
    item = listed["items"][0]
    assert (item["actor_name"], item["role"], item["resident_id"], item["reason"]) == (
        "nurse", "nurse", resident_id, REASON,
    )  # fmt: skip
    # nobody else reviews it: not the nurse herself, not a grid worker
    assert client.get("/api/break-glass", headers=world.token(Role.grid_worker)).status_code == 403
    reviewed = client.post(
        f"/api/break-glass/{opened['id']}/review",
        json={"verdict": "justified", "note": "已电话核实"},
        headers=officer,
    )
    assert reviewed.status_code == 200 and reviewed.json()["verdict"] == "justified"
    assert reviewed.json()["reviewed_by"] == world.users["health_officer"]
    again = client.post(
        f"/api/break-glass/{opened['id']}/review", json={"verdict": "unjustified"}, headers=officer
    )
    assert again.status_code == 409
    assert client.get("/api/break-glass", params={"unreviewed": True}, headers=officer).json()["total"] == 0


def test_an_officer_elsewhere_does_not_see_the_opening(client: TestClient, world: World) -> None:
    resident_id = world.residents["out_given"]  # lives in street S2; the officers hold S1
    client.post(
        f"/api/residents/{resident_id}/break-glass", json={"reason": REASON}, headers=world.token(Role.nurse)
    )
    assert client.get("/api/break-glass", headers=world.token(Role.health_officer)).json()["total"] == 0


def test_the_glass_opens_the_clinical_part_a_deny_had_hidden(client: TestClient, world: World) -> None:
    # given a resident in the team's panel who refused to share clinical data with health organisations
    resident_id = world.residents["in_given"]
    denied = client.post(
        f"/api/residents/{resident_id}/consents",
        json={"category": "clinical", "recipient_class": "health", "decision": "deny"},
        headers=world.token(Role.resident, "in_given"),
    )
    assert denied.status_code == 201
    nurse = world.token(Role.nurse)
    assert "clinical" not in client.get(f"/api/residents/{resident_id}", headers=nurse).json()["field_groups"]
    # when the nurse breaks the glass
    assert (
        client.post(
            f"/api/residents/{resident_id}/break-glass", json={"reason": REASON}, headers=nurse
        ).status_code
        == 201
    )
    # then the profile shows the clinical part, the read audited as break_glass
    assert "clinical" in client.get(f"/api/residents/{resident_id}", headers=nurse).json()["field_groups"]
    assert audit_rows(world, resident_id)[-1] == ("break_glass", "allowed")


def test_a_lasting_change_asks_for_the_clinicians_own_scope_not_the_glass(
    world: World, clock: FakeClock
) -> None:
    resident_id = world.residents["out_given"]
    with world.database.unit_of_work() as session:
        nurse = access.load_actor(session, world.users["nurse"], clock.now)
        open_break_glass(session, nurse, resident_id, REASON, clock.now)
    with world.database.unit_of_work() as session:
        nurse = access.load_actor(session, world.users["nurse"], clock.now)
        # given the glass open, a read goes through
        policy.authorize(
            session, nurse, resident_id, category=DataCategory.sensor, what="alert_rule", now=clock.now
        )
        # when the same nurse makes a change that outlasts the emergency, then only her own scope counts
        with pytest.raises(Forbidden) as refused:
            policy.authorize(
                session, nurse, resident_id, category=DataCategory.sensor, what="alert_rule", action="create",
                now=clock.now, glass=False,
            )  # fmt: skip
        assert refused.value.code == "access.scope"
