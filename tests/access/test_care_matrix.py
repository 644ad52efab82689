"""Care, service-order and time-bank endpoints x every role x in/out of scope x consent given or
withdrawn: allowed or refused as the scope table says, every attempt audited; and the steps that
create scope (accepting an order) in a sound order.

The expectation is written out here from docs/access.md, not computed by the policy under test.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import AuditEvent, AuditOutcome, ResidentRelationship
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.care.models import Referral, ReferralDirection, ReferralStatus, WorkKind
from yiyang.care.orders.catalogue import ProviderKind
from yiyang.care.orders.models import OrderStatus, PlacedAs, ServiceOrder, ServiceProvider
from yiyang.care.service import create_work_item
from yiyang.db import Database, utcnow
from yiyang.geo.models import Organisation, OrganisationKind

from .world import IN_SCOPE, World, build_world

# Who may touch which category of a resident in its scope, with consent (docs/access.md).
CARE_SERVICES = set(Role) - {Role.health_officer, Role.district_admin}
CLINICAL = {
    Role.family_doctor, Role.nurse, Role.health_manager, Role.station_staff, Role.health_officer,
    Role.resident, Role.family_member,
}  # fmt: skip
MAY = {"care_services": CARE_SERVICES, "clinical": CLINICAL, "identity": set(Role)}
NEEDS_NO_CONSENT = {Role.resident, Role.family_member}


@dataclass(frozen=True)
class Endpoint:
    path: str  # {id}: the resident; {item}, {order}, {referral}: that resident's work item, order, referral
    categories: tuple[str, ...]

    def __str__(self) -> str:
        return self.path


ENDPOINTS = [
    Endpoint("/api/residents/{id}/contracts", ("care_services",)),
    Endpoint("/api/residents/{id}/work-items", ("care_services",)),
    Endpoint("/api/residents/{id}/service-offers", ("care_services",)),
    Endpoint("/api/care/work-items/{item}", ("care_services",)),
    Endpoint("/api/care/work-items/{item}/fhir", ("care_services",)),
    Endpoint("/api/care/referrals/{referral}", ("clinical",)),
    Endpoint("/api/service-orders/{order}", ("care_services",)),
    Endpoint("/api/service-orders/{order}/history", ("care_services",)),
    Endpoint("/orders/{order}", ("care_services", "identity")),
]
TARGETS = ["in_given", "in_withdrawn", "out_given", "out_withdrawn"]


def expected_allowed(role: Role, categories: tuple[str, ...], target: str) -> bool:
    if target not in IN_SCOPE or any(role not in MAY[c] for c in categories):
        return False
    return target.endswith("given") or role in NEEDS_NO_CONSENT


@dataclass
class CareWorld:
    world: World
    items: dict[int, int]  # resident -> work item
    orders: dict[int, int]  # resident -> service order
    referrals: dict[int, int]  # resident -> referral


def add_care(world: World) -> CareWorld:
    now = utcnow()
    items, orders, referrals = {}, {}, {}
    with world.database.unit_of_work() as session:
        hospital = Organisation(
            code="H1", name="医院一", kind=OrganisationKind.hospital, area_id=world.areas["D"]
        )
        session.add(hospital)
        session.flush()
        for resident_id in world.residents.values():
            item = create_work_item(
                session, resident_id=resident_id, kind=WorkKind.home_visit, programme="alert", rule="alert.home_visit",
                due_from=now.date(), due_by=now.date(), now=now, by="test",
                owner_organisation_id=world.teams["T1"],
            )  # fmt: skip
            items[resident_id] = item.id
            order = ServiceOrder(
                resident_id=resident_id, service_code="meal", status=OrderStatus.unassigned, placed_as=PlacedAs.staff,
                area_id=world.areas["G1"], price_cents=1500, subsidy_cents=0, created_at=now, updated_at=now,
            )  # fmt: skip
            referral = Referral(
                resident_id=resident_id, direction=ReferralDirection.up, from_organisation_id=world.teams["T1"],
                to_organisation_id=hospital.id, reason="test", summary={}, status=ReferralStatus.sent,
                created_by="test", sent_at=now, status_changed_at=now,
            )  # fmt: skip
            session.add_all([order, referral])
            session.flush()
            orders[resident_id], referrals[resident_id] = order.id, referral.id
    return CareWorld(world, items, orders, referrals)


@pytest.fixture(scope="module")
def care(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CareWorld]:
    folder = tmp_path_factory.mktemp("care-matrix")
    shutil.copy(sqlite_template, folder / "yiyang.db")
    database = Database(f"sqlite:///{folder / 'yiyang.db'}")
    yield add_care(build_world(database))
    database.dispose()


@pytest.fixture(scope="module")
def client(care: CareWorld) -> Iterator[TestClient]:
    with TestClient(create_app(care.world.database)) as test_client:
        yield test_client


def _last_audit_id(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.execute(select(func.coalesce(func.max(AuditEvent.id), 0))).scalar_one()


def _audit_after(database: Database, last_id: int, resident_id: int) -> list[AuditEvent]:
    with database.unit_of_work() as session:
        return list(
            session.execute(
                select(AuditEvent).where(AuditEvent.id > last_id, AuditEvent.resident_id == resident_id)
            ).scalars()
        )


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize("role", list(Role), ids=str)
def test_role_care_endpoint_scope_consent(
    client: TestClient, care: CareWorld, role: Role, endpoint: Endpoint, target: str
) -> None:
    # given a role, a resident in or out of its scope, with consent given or withdrawn
    world = care.world
    resident_id = world.residents[target]
    path = endpoint.path.format(
        id=resident_id, item=care.items[resident_id], order=care.orders[resident_id],
        referral=care.referrals[resident_id],
    )  # fmt: skip
    before = _last_audit_id(world.database)
    # when it asks for the endpoint
    response = client.get(path, headers=world.token(role, target))
    # then it is allowed or refused as the scope table says
    allowed = expected_allowed(role, endpoint.categories, target)
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
def test_order_and_work_lists_hold_only_residents_in_scope_with_consent(
    client: TestClient, care: CareWorld, role: Role
) -> None:
    world = care.world
    expected = {
        world.residents[key]
        for key in world.residents
        if expected_allowed(role, ("care_services",), key)
        and (role is not Role.resident or key == "in_given")
    }
    listed = client.get("/api/service-orders", params={"limit": 200}, headers=world.token(role)).json()
    assert {item["resident_id"] for item in listed["items"]} == expected and listed["total"] == len(expected)
    # the overdue list names its residents: identity and care services must both be visible
    overdue = client.get("/api/care/overdue", params={"limit": 200}, headers=world.token(role))
    assert overdue.status_code == 200
    assert {row["item"]["resident_id"] for row in overdue.json()["items"]} <= expected


# -- accepting an order: the offer entitles, the acceptance gives scope, consent still decides -----


def _offer_to_station(database: Database, world: World, resident_id: int) -> int:
    now = utcnow()
    with database.unit_of_work() as session:
        provider = session.scalar(
            select(ServiceProvider).where(ServiceProvider.organisation_id == world.teams["ST1"])
        )
        if provider is None:
            provider = ServiceProvider(
                organisation_id=world.teams["ST1"], kind=ProviderKind.station, skills=["meal_delivery"],
                capacity=5, active=True, base_area_id=world.areas["G1"], availability=[],
            )  # fmt: skip
            session.add(provider)
            session.flush()
        order = ServiceOrder(
            resident_id=resident_id, service_code="meal", status=OrderStatus.offered, placed_as=PlacedAs.staff,
            area_id=world.areas["G1"], price_cents=1500, subsidy_cents=0, provider_id=provider.id, offered_at=now,
            offer_expires_at=now + dt.timedelta(hours=1), created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(order)
        session.flush()
        return order.id


def _relationships(database: Database, order_id: int) -> list[ResidentRelationship]:
    with database.unit_of_work() as session:
        return list(
            session.scalars(
                select(ResidentRelationship).where(
                    ResidentRelationship.source_type == "service_order",
                    ResidentRelationship.source_id == order_id,
                )
            )
        )


@pytest.fixture
def fresh(sqlite_db: Database) -> Iterator[tuple[World, TestClient]]:
    world = build_world(sqlite_db)
    with TestClient(create_app(sqlite_db)) as test_client:
        yield world, test_client


def test_the_board_names_no_one_before_acceptance_and_the_acceptance_gives_scope(
    fresh: tuple[World, TestClient],
) -> None:
    world, client = fresh
    staff = world.token(Role.station_staff)
    # given an order offered to the station for a resident it does not serve (no relationship)
    resident_id = world.residents["out_given"]
    order_id = _offer_to_station(world.database, world, resident_id)
    # then the board shows the offer without naming anyone, and the order itself is refused
    (item,) = client.get("/api/service-board", headers=staff).json()
    assert (item["order_id"], item["status"], item["resident_id"]) == (order_id, "offered", None)
    assert client.get(f"/api/service-orders/{order_id}", headers=staff).status_code == 403
    # when the station accepts it
    before = _last_audit_id(world.database)
    accepted = client.post(f"/api/service-orders/{order_id}/accept", headers=staff)
    # then it is accepted under a new relationship, audited as allowed, and the resident is now in scope
    assert accepted.status_code == 200, accepted.text
    (row,) = _relationships(world.database, order_id)
    assert (row.kind, row.organisation_id, row.ended_at) == ("service", world.teams["ST1"], None)
    rows = _audit_after(world.database, before, resident_id)
    assert [r.outcome for r in rows] == [AuditOutcome.allowed]
    (item,) = client.get("/api/service-board", headers=staff).json()
    assert (item["status"], item["resident_id"]) == ("accepted", resident_id)
    assert client.get(f"/api/service-orders/{order_id}", headers=staff).status_code == 200


def test_accepting_for_a_resident_who_refused_the_provider_writes_nothing(
    fresh: tuple[World, TestClient],
) -> None:
    world, client = fresh
    staff = world.token(Role.station_staff)
    # given an order offered to the station for a resident who denied care-services data to stations
    resident_id = world.residents["out_withdrawn"]
    order_id = _offer_to_station(world.database, world, resident_id)
    before = _last_audit_id(world.database)
    # when the station accepts it
    refused = client.post(f"/api/service-orders/{order_id}/accept", headers=staff)
    # then it is refused for consent, no relationship was written, the order is still on offer
    assert refused.status_code == 403 and refused.json()["code"] == "access.consent"
    assert _relationships(world.database, order_id) == []
    with world.database.unit_of_work() as session:
        assert session.get(ServiceOrder, order_id).status == OrderStatus.offered  # type: ignore[union-attr]
    # and the refusal is audited
    rows = _audit_after(world.database, before, resident_id)
    assert [r.outcome for r in rows] == [AuditOutcome.denied]
    (item,) = client.get("/api/service-board", headers=staff).json()
    assert item["resident_id"] is None


def test_an_accepted_order_leaves_the_board_once_the_resident_withdraws_consent(
    fresh: tuple[World, TestClient],
) -> None:
    world, client = fresh
    staff = world.token(Role.station_staff)
    resident_id = world.residents["out_given"]
    order_id = _offer_to_station(world.database, world, resident_id)
    assert client.post(f"/api/service-orders/{order_id}/accept", headers=staff).status_code == 200
    # when the resident withdraws consent for the civil-affairs side (stations)
    with world.database.unit_of_work() as session:
        record_consent(
            session, system_actor("test"), resident_id, category=DataCategory.care_services,
            recipient_class=RecipientClass.civil_affairs, purpose=Purpose.care, decision=ConsentDecision.deny,
            now=utcnow(),
        )  # fmt: skip
    # then the board no longer shows whom the order is for, nor the order
    assert client.get("/api/service-board", headers=staff).json() == []
    assert client.get(f"/api/service-orders/{order_id}", headers=staff).status_code == 403
