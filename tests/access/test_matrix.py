"""Every role x every resident-data endpoint (API, FHIR, staff pages) x in/out of scope x consent
given/withdrawn: allowed or refused as the scope table says, and every attempt audited.

The expectation is written out here from docs/access.md, not computed by the policy under test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.policy import DataCategory
from yiyang.access.roles import CLINICAL_TEAM_ROLES, Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.errors import Forbidden
from yiyang.tiers.service import retier_residents

from .world import IN_SCOPE, World, build_world

# What each role may see of a resident in its scope, with consent (docs/access.md, the scope table).
SEES: dict[Role, set[str]] = {
    Role.family_doctor: {"identity", "clinical"},
    Role.nurse: {"identity", "clinical"},
    Role.health_manager: {"identity", "clinical"},
    Role.station_staff: {"identity", "clinical"},
    Role.social_worker: {"identity"},
    Role.volunteer: {"identity"},
    Role.grid_worker: {"identity"},
    Role.civil_affairs_officer: {"identity"},
    Role.health_officer: {"identity", "clinical"},
    Role.district_admin: {"identity"},
    Role.resident: {"identity", "clinical"},
    Role.family_member: {"identity", "clinical"},
}
KEEPS_REGISTRY = {Role.civil_affairs_officer, Role.health_officer, Role.district_admin}
NEEDS_NO_CONSENT = {Role.resident, Role.family_member}


@dataclass(frozen=True)
class Endpoint:
    path: str  # {id} is the resident
    category: str
    registry: bool = False
    page: bool = False
    roles: frozenset[Role] | None = None  # only these roles, whatever else they see (None: any)

    def __str__(self) -> str:
        return self.path


ENDPOINTS = [
    Endpoint("/api/residents/{id}", "identity"),
    Endpoint("/api/residents/{id}/sources", "identity", registry=True),
    Endpoint("/api/residents/{id}/history", "identity", registry=True),
    Endpoint("/api/residents/{id}/consents", "identity"),
    Endpoint("/api/residents/{id}/authorisations", "identity"),
    Endpoint("/api/residents/{id}/assessments", "clinical"),
    Endpoint("/api/residents/{id}/tier", "clinical"),
    Endpoint("/api/residents/{id}/tier/history", "clinical"),
    Endpoint("/api/residents/{id}/tier/fhir", "clinical"),
    Endpoint("/api/residents/{id}/care-plans", "clinical"),
    Endpoint("/fhir/Patient/{id}", "identity"),
    Endpoint("/fhir/Patient/{id}/$everything", "identity"),
    Endpoint("/fhir/Consent?patient={id}", "identity"),
    Endpoint("/residents/{id}", "identity", page=True),
    # recording an assessment is the family-doctor team's (assessments.service.as_recorder)
    Endpoint("/residents/{id}/assessments/new", "clinical", page=True, roles=CLINICAL_TEAM_ROLES),
]
TARGETS = ["in_given", "in_withdrawn", "out_given", "out_withdrawn"]


def expected_allowed(role: Role, endpoint: Endpoint, target: str) -> bool:
    if target not in IN_SCOPE or endpoint.category not in SEES[role]:
        return False
    if endpoint.registry and role not in KEEPS_REGISTRY:
        return False
    if endpoint.roles is not None and role not in endpoint.roles:
        return False
    return target.endswith("given") or role in NEEDS_NO_CONSENT


@pytest.fixture(scope="module")
def world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("matrix")
    shutil.copy(sqlite_template, folder / "yiyang.db")
    database = Database(f"sqlite:///{folder / 'yiyang.db'}")
    built = build_world(database)
    with database.unit_of_work() as session:
        retier_residents(session, built.residents.values())  # so the tier routes answer 200, not 404
    yield built
    database.dispose()


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def _audit_after(database: Database, last_id: int, resident_id: int) -> list[AuditEvent]:
    with database.unit_of_work() as session:
        return list(
            session.execute(
                select(AuditEvent).where(AuditEvent.id > last_id, AuditEvent.resident_id == resident_id)
            ).scalars()
        )


def _last_audit_id(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar_one()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize("role", list(Role), ids=str)
def test_role_endpoint_scope_consent(
    client: TestClient, world: World, role: Role, endpoint: Endpoint, target: str
) -> None:
    # given a role, a resident in or out of its scope, with consent given or withdrawn
    resident_id = world.residents[target]
    before = _last_audit_id(world.database)
    # when it asks for the endpoint
    response = client.get(endpoint.path.format(id=resident_id), headers=world.token(role, target))
    # then it is allowed or refused as the scope table says
    allowed = expected_allowed(role, endpoint, target)
    assert response.status_code not in (401, 422, 500), response.text[:300]
    if allowed:
        assert response.status_code == 200, (response.status_code, response.text[:300])
    else:
        assert response.status_code == 403, (response.status_code, response.text[:300])
        assert "测试" not in response.text  # no name of the resident in the refusal
    # and the attempt left an audit row with that outcome, even when the request was refused
    rows = _audit_after(world.database, before, resident_id)
    outcome = AuditOutcome.allowed if allowed else AuditOutcome.denied
    assert any(row.outcome == outcome for row in rows), [(r.outcome, r.resource_type) for r in rows]
    if not allowed:
        assert all(row.outcome == AuditOutcome.denied for row in rows)


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_lists_hold_only_residents_in_scope_with_consent(
    client: TestClient, world: World, role: Role
) -> None:
    expected = {
        world.residents[key]
        for key in world.residents
        if expected_allowed(role, Endpoint("/api/residents", "identity"), key)
        and (role is not Role.resident or key == "in_given")  # a resident's own record only
    }
    listed = client.get("/api/residents", params={"limit": 200}, headers=world.token(role)).json()
    assert {item["id"] for item in listed["items"]} == expected and listed["total"] == len(expected)
    bundle = client.get("/fhir/Patient", headers=world.token(role)).json()
    assert {int(e["resource"]["id"]) for e in bundle.get("entry", [])} == expected
    page = client.get("/residents", headers=world.token(role))
    assert page.status_code == 200
    for key, resident_id in world.residents.items():
        assert (f'href="/residents/{resident_id}?' in page.text) == (resident_id in expected), key


def test_list_clause_agrees_with_single_decisions_on_both_databases(db: Database) -> None:
    # given the same district on SQLite and on PostgreSQL
    from yiyang.access import policy, service
    from yiyang.residents.models import Resident

    built = build_world(db)
    for role in Role:
        name = "resident:in_given" if role is Role.resident else role.value
        with db.unit_of_work() as session:
            actor = service.load_actor(session, built.users[name], utcnow())
            # when the list clause and the one-resident decision are asked about every resident
            clause = policy.visible_residents(session, actor, category=DataCategory.identity)
            listed = set(session.execute(select(Resident.id).where(clause)).scalars())
            single = set()
            for resident_id in built.residents.values():
                try:
                    policy.authorize(session, actor, resident_id, category=DataCategory.identity, what="test")
                    single.add(resident_id)
                except Forbidden:
                    pass
        # then they agree, and with the scope table
        expected = {
            built.residents[key]
            for key in built.residents
            if expected_allowed(role, Endpoint("/", "identity"), key)
            and (role is not Role.resident or key == "in_given")
        }
        assert listed == single == expected, role
