"""Registry work on a resident is decided by a registry role's own scope: a person who keeps the
registry somewhere else and holds a role that reaches the resident here may not merge them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from yiyang.access import service
from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow

from ..signed_in import bearer_for
from .world import build_world


def test_a_grid_worker_here_who_is_an_officer_elsewhere_may_not_merge_residents_here(
    sqlite_db: Database,
) -> None:
    # given two residents of grid G1, and a person who is G1's grid worker and an officer over S2
    world = build_world(sqlite_db)
    with sqlite_db.unit_of_work() as session:
        person = service.create_user(session, "grid_and_officer")
        service.grant_role(session, person, Role.grid_worker, area_id=world.areas["G1"])
        service.grant_role(session, person, Role.civil_affairs_officer, area_id=world.areas["S2"])
        person_id = person.id
        # (the second resident permits civil affairs her identity again, so only scope decides)
        record_consent(session, system_actor("test"), world.residents["in_withdrawn"],
                       category=DataCategory.identity, recipient_class=RecipientClass.civil_affairs,
                       purpose=Purpose.care, decision=ConsentDecision.permit, now=utcnow())  # fmt: skip
    headers = bearer_for(sqlite_db, person_id)
    body = {
        "survivor_id": world.residents["in_given"],
        "merged_id": world.residents["in_withdrawn"],
        "reason": "同一人",
    }
    with TestClient(create_app(sqlite_db)) as client:
        # when they merge the two
        response = client.post("/api/residents/merge", json=body, headers=headers)
        # then the officer's grant decides, which does not reach G1: refused
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "access.scope"
        # nor read their registry history, which the officer over S1 (whose area holds G1) reads
        history = f"/api/residents/{world.residents['in_given']}/history"
        assert client.get(history, headers=headers).status_code == 403
        assert client.get(history, headers=world.token(Role.civil_affairs_officer)).status_code == 200
