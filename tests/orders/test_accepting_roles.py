"""An order is accepted in the roles its provider's kind accepts in, and the relationship the
acceptance writes follows the provider's kind, not whichever role the person happens to hold
first: at a 医养结合 institution that is also a station, a nurse's meal order gives station scope.
Scope and consent at acceptance are decided as those roles too, never through another role."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.orders.district import NOW, District, actor, deny_care_services, permit_the_social_class
from yiyang.access import service as access
from yiyang.access.models import AuditEvent, RelationshipKind, ResidentRelationship, User
from yiyang.access.policy import RecipientClass
from yiyang.access.roles import Role
from yiyang.care.orders import service as orders
from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE, ProviderKind
from yiyang.care.orders.models import OrderStatus, ServiceOrder
from yiyang.db import Database
from yiyang.errors import Forbidden
from yiyang.geo.models import Organisation, OrganisationKind
from yiyang.timebank import service as timebank


def institution_with_staff(db: Database, place: District, *roles: Role) -> tuple[int, int]:
    """An elderly-care institution in the elder's community, a provider of meals over street 1, and
    one person holding ``roles`` there, in that order: (provider id, user id)."""
    with db.unit_of_work() as session:
        institution = Organisation(
            code="YL-1", name="甲社区医养结合院", kind=OrganisationKind.elderly_care_institution,
            area_id=place.community_1,
        )  # fmt: skip
        session.add(institution)
        session.flush()
        provider = orders.register_provider(
            session, orders.ProviderRequest(institution.id, ("meal_delivery",), (place.street_1,)), NOW
        )
        person = access.create_user(session, "institution.person", password="correct-horse-battery")
        for role in roles:
            access.grant_role(session, person, role, organisation_id=institution.id)
        return provider.id, person.id


def offered_meal(db: Database, place: District, provider_id: int) -> int:
    with db.unit_of_work() as session:
        order = orders.place_order(
            session,
            actor(session, place.family),
            place.elder,
            orders.OrderRequest("meal"),
            NOW,
            DEFAULT_CATALOGUE,
        )
        assert (order.status, order.provider_id) == (OrderStatus.offered, provider_id)
        return order.id


def written(db: Database, order_id: int) -> tuple[OrderStatus, list[str]]:
    with db.unit_of_work() as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        kinds = session.scalars(
            select(ResidentRelationship.kind).where(
                ResidentRelationship.source_type == "service_order",
                ResidentRelationship.source_id == order_id,
            )
        ).all()
        return order.status, [str(kind) for kind in kinds]


def test_each_kind_accepts_in_roles_of_one_consent_class_and_one_relationship() -> None:
    assert {kind: orders.recipient_class_of(kind) for kind in ProviderKind} == {
        ProviderKind.station: RecipientClass.civil_affairs,
        ProviderKind.social_organisation: RecipientClass.social,
        ProviderKind.family_doctor_team: RecipientClass.health,
        ProviderKind.volunteer: RecipientClass.social,
    }
    assert {kind: orders.relationship_kind_of(kind) for kind in ProviderKind} == {
        ProviderKind.station: RelationshipKind.service,
        ProviderKind.social_organisation: RelationshipKind.service,
        ProviderKind.family_doctor_team: RelationshipKind.contract,
        ProviderKind.volunteer: RelationshipKind.pairing,
    }


def test_a_nurse_of_the_institution_alone_cannot_accept_its_station_orders(
    db: Database, place: District
) -> None:
    # given an institution that serves as a station, and a person who is only a nurse there
    provider_id, nurse = institution_with_staff(db, place, Role.nurse)
    order_id = offered_meal(db, place, provider_id)
    # when the nurse accepts its meal order, it is refused for the role
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        orders.accept_order(session, actor(session, nurse), order_id, NOW)
    assert refused.value.code == "order.accepting_role"
    assert "驿站工作人员" in refused.value.message
    # nor may the nurse turn it away
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        orders.decline_order(session, actor(session, nurse), order_id, None, NOW, DEFAULT_CATALOGUE)
    assert refused.value.code == "order.accepting_role"
    # and nothing was written: still on offer, no relationship
    assert written(db, order_id) == (OrderStatus.offered, [])


def test_a_nurse_who_is_also_station_staff_accepts_with_station_scope(db: Database, place: District) -> None:
    # given a person who is a nurse and station staff at the institution (the nurse's grant first)
    provider_id, person = institution_with_staff(db, place, Role.nurse, Role.station_staff)
    order_id = offered_meal(db, place, provider_id)
    # when they accept the meal order
    with db.unit_of_work() as session:
        orders.accept_order(session, actor(session, person), order_id, NOW)
    # then the relationship is the station's (service), never a clinician's contract
    assert written(db, order_id) == (OrderStatus.accepted, ["service"])


def test_a_volunteer_who_is_also_the_grid_worker_accepts_only_as_a_volunteer(
    db: Database, place: District, reactions: None
) -> None:
    # given a volunteer who is also the grid worker of the elder's grid, offered the elder's pickup
    # while the elder permitted volunteers
    with db.unit_of_work() as session:
        timebank.save_profile(
            session, actor(session, place.volunteer_1), place.volunteer_1,
            timebank.ProfileRequest(area_id=place.community_1, skills=("errand",)), NOW,
        )  # fmt: skip
        access.grant_role(
            session, session.get(User, place.volunteer_1), Role.grid_worker, area_id=place.grid_1a
        )
    permit_the_social_class(db, place.elder)
    with db.unit_of_work() as session:
        order = orders.place_order(
            session, actor(session, place.family), place.elder, orders.OrderRequest("medicine_pickup"), NOW,
            DEFAULT_CATALOGUE,
        )  # fmt: skip
        order_id = order.id
        assert order.status == OrderStatus.offered
    # when the elder withdraws the volunteers' permit, and the volunteer then accepts
    later = NOW + dt.timedelta(minutes=5)
    deny_care_services(db, place.elder, RecipientClass.social, later)
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        orders.accept_order(session, actor(session, place.volunteer_1, later), order_id, later)
    # then the grid role, whose class the elder still allows, does not carry the acceptance
    assert refused.value.code == "access.consent"
    assert written(db, order_id) == (OrderStatus.offered, [])
    # and the refusal is in the elder's audit trail, against the volunteer's grant
    with db.unit_of_work() as session:
        last = session.scalars(
            select(AuditEvent).where(AuditEvent.resident_id == place.elder).order_by(AuditEvent.id.desc())
        ).first()
        assert last is not None
        assert (last.outcome, last.reason, last.role) == ("denied", "access.consent", "volunteer")


def test_a_nurse_of_the_institution_alone_cannot_complete_its_station_orders(
    db: Database, place: District
) -> None:
    # given a meal accepted by the institution's station staff, and a nurse of the institution
    # whose clinicians hold the elder's contract (so the nurse's own role reaches the elder)
    provider_id, station_person = institution_with_staff(db, place, Role.station_staff)
    order_id = offered_meal(db, place, provider_id)
    with db.unit_of_work() as session:
        orders.accept_order(session, actor(session, station_person), order_id, NOW)
        institution = session.scalars(select(Organisation).where(Organisation.code == "YL-1")).one()
        session.add(
            ResidentRelationship(
                resident_id=place.elder, kind=RelationshipKind.contract, organisation_id=institution.id,
                valid_from=NOW, source_type="test_contract", source_id=1, created_at=NOW,
            )
        )  # fmt: skip
        nurse = access.create_user(session, "institution.nurse", password="correct-horse-battery")
        access.grant_role(session, nurse, Role.nurse, organisation_id=institution.id)
        nurse_id = nurse.id
    # when the nurse records the meal as served, it is refused for the role
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        orders.complete_order(
            session, actor(session, nurse_id), order_id, orders.CompletionProof(30, "送餐"), NOW
        )
    assert refused.value.code == "order.accepting_role"
    # and the order is still being served, its relationship in force
    assert written(db, order_id) == (OrderStatus.accepted, ["service"])
