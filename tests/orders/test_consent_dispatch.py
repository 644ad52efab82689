"""Dispatch reads the resident's consent: an order is not offered to a provider whose acceptance
the consent would refuse, granting the permit makes that provider eligible, and acceptance still
asks (consent can change between the offer and the acceptance)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.orders.district import NOW, District, actor, deny_care_services, permit_the_social_class
from yiyang.access import policy
from yiyang.access import service as access
from yiyang.access.break_glass import open_break_glass
from yiyang.access.models import ResidentRelationship
from yiyang.access.policy import RecipientClass
from yiyang.access.roles import Role
from yiyang.care.orders import service as orders
from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE, ProviderKind
from yiyang.care.orders.models import OrderStatus, ServiceOrder, ServiceProvider
from yiyang.db import Database
from yiyang.errors import Forbidden
from yiyang.timebank import service as timebank

CAT = DEFAULT_CATALOGUE


@pytest.fixture
def providers(db: Database, place: District, reactions: None) -> dict[str, int]:
    """Station A runs errands over street 1; volunteer 1 runs errands in the elder's community.
    Medicine pickup prefers the volunteer (first in the catalogue), who is also nearer."""
    with db.unit_of_work() as session:
        station = orders.register_provider(
            session, orders.ProviderRequest(place.station_a, ("errand",), (place.street_1,)), NOW
        )
        timebank.save_profile(
            session, actor(session, place.volunteer_1), place.volunteer_1,
            timebank.ProfileRequest(area_id=place.community_1, skills=("errand",)), NOW,
        )  # fmt: skip
        session.flush()
        volunteer = session.scalars(
            select(ServiceProvider).where(ServiceProvider.user_id == place.volunteer_1)
        ).one()
        return {"station": station.id, "volunteer": volunteer.id}


def order_pickup(db: Database, place: District) -> int:
    with db.unit_of_work() as session:
        order = orders.place_order(
            session,
            actor(session, place.family),
            place.elder,
            orders.OrderRequest("medicine_pickup"),
            NOW,
            CAT,
        )
        return order.id


def load(db: Database, order_id: int) -> ServiceOrder:
    with db.unit_of_work() as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        return order


def history(db: Database, order_id: int) -> list[tuple[str, int | None, str | None]]:
    with db.unit_of_work() as session:
        return [(t.event, t.provider_id, t.reason) for t in orders.order_history(session, order_id)]


def relationships_of(db: Database, order_id: int) -> list[tuple[str, int | None]]:
    """The scope an order's acceptance gave: (kind, organisation) of each relationship it wrote."""
    with db.unit_of_work() as session:
        return [
            (row.kind, row.organisation_id)
            for row in session.scalars(
                select(ResidentRelationship).where(
                    ResidentRelationship.source_type == "service_order",
                    ResidentRelationship.source_id == order_id,
                )
            )
        ]


def volunteer_board(db: Database, place: District) -> list[int]:
    with db.unit_of_work() as session:
        return [i.order.id for i in orders.provider_board(session, actor(session, place.volunteer_1), NOW)]


def test_without_a_volunteer_permit_the_order_goes_to_the_station_and_never_to_the_volunteer(
    db: Database, place: District, providers: dict[str, int]
) -> None:
    # given an elder who has given volunteers no permit (nothing is implied for them)
    # when their daughter orders a medicine pickup, which prefers a volunteer
    order_id = order_pickup(db, place)
    # then the station is offered it, and the volunteer's board stays empty
    assert load(db, order_id).provider_id == providers["station"]
    assert volunteer_board(db, place) == []
    # and when the station declines, the volunteer is still not offered it: the order waits, and
    # its history says that consent is what stands in the way
    with db.unit_of_work() as session:
        orders.decline_order(session, actor(session, place.staff_a), order_id, "人手不足", NOW, CAT)
    order = load(db, order_id)
    assert order.status == OrderStatus.unassigned and order.provider_id is None
    assert [(e, p) for e, p, _ in history(db, order_id)] == [
        ("placed", None), ("offered", providers["station"]), ("declined", providers["station"]),
        ("unassigned", None),
    ]  # fmt: skip
    assert history(db, order_id)[-1][2] == "no provider: consent refuses volunteer, declined"
    assert volunteer_board(db, place) == []
    # and a sweep that still finds nobody writes nothing more
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, NOW + dt.timedelta(minutes=5), CAT) == (0, 0, 0)
    assert len(history(db, order_id)) == 4


def test_granting_the_permit_makes_the_volunteer_eligible(
    db: Database, place: District, providers: dict[str, int]
) -> None:
    # given an order waiting because the station declined and the elder had not permitted volunteers
    order_id = order_pickup(db, place)
    with db.unit_of_work() as session:
        orders.decline_order(session, actor(session, place.staff_a), order_id, None, NOW, CAT)
    assert load(db, order_id).status == OrderStatus.unassigned
    # when the elder permits volunteers
    permit_the_social_class(db, place.elder)
    # then the sweep offers the waiting order to the volunteer, who accepts it
    later = NOW + dt.timedelta(minutes=5)
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, later, CAT) == (0, 1, 0)
    assert load(db, order_id).provider_id == providers["volunteer"]
    with db.unit_of_work() as session:
        orders.accept_order(session, actor(session, place.volunteer_1, later), order_id, later)
    assert load(db, order_id).status == OrderStatus.accepted


def test_a_consent_withdrawn_after_the_offer_still_refuses_at_acceptance(
    db: Database, place: District, providers: dict[str, int]
) -> None:
    # given an elder who permits volunteers, and an order offered to the volunteer
    permit_the_social_class(db, place.elder)
    order_id = order_pickup(db, place)
    assert load(db, order_id).provider_id == providers["volunteer"]
    # when the elder withdraws it before the volunteer accepts
    later = NOW + dt.timedelta(minutes=5)
    deny_care_services(db, place.elder, RecipientClass.social, later)
    # then accepting is refused for consent, and nothing was written: still on offer, no relationship
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        orders.accept_order(session, actor(session, place.volunteer_1, later), order_id, later)
    assert refused.value.code == "access.consent"
    order = load(db, order_id)
    assert (order.status, order.provider_id) == (OrderStatus.offered, providers["volunteer"])
    with db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(ResidentRelationship).where(
            ResidentRelationship.source_type == "service_order")) == 0  # fmt: skip
    # and once the offer lapses, it goes to the station, not back to a volunteer
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, NOW + dt.timedelta(minutes=31), CAT) == (1, 1, 0)
    assert load(db, order_id).provider_id == providers["station"]


def test_a_deny_for_the_civil_affairs_side_keeps_the_order_from_stations(
    db: Database, place: District, providers: dict[str, int]
) -> None:
    # given an elder who permits volunteers and refuses care-services data to stations (civil affairs)
    permit_the_social_class(db, place.elder)
    deny_care_services(db, place.elder, RecipientClass.civil_affairs, NOW)
    # when the volunteer declines the pickup
    order_id = order_pickup(db, place)
    assert load(db, order_id).provider_id == providers["volunteer"]
    with db.unit_of_work() as session:
        orders.decline_order(session, actor(session, place.volunteer_1), order_id, None, NOW, CAT)
    # then the station is not offered it: the order waits, saying why
    assert load(db, order_id).status == OrderStatus.unassigned
    assert history(db, order_id)[-1][2] == "no provider: consent refuses station, declined"


def test_a_default_that_implies_consent_for_volunteers_is_honoured(
    db: Database, place: District, providers: dict[str, int]
) -> None:
    # given a deployment whose defaults imply consent for volunteers' care services (YIYANG_CONSENT_IMPLIED)
    previous = policy.configure(
        implied_consent=policy.DEFAULT_IMPLIED_CONSENT
        | policy.parse_implied_consent("social:identity:care,social:care_services:care")
    )
    try:
        # when an elder who recorded nothing orders a pickup, the volunteer is offered it and may accept
        order_id = order_pickup(db, place)
        assert load(db, order_id).provider_id == providers["volunteer"]
        with db.unit_of_work() as session:
            orders.accept_order(session, actor(session, place.volunteer_1), order_id, NOW)
        assert load(db, order_id).status == OrderStatus.accepted
    finally:
        policy.restore(previous)


def test_a_social_organisation_is_offered_only_what_the_elder_permits_it(
    db: Database, place: District
) -> None:
    # given a social organisation that delivers meals, whose worker holds the social-organisation
    # role, and an elder who recorded nothing
    with db.unit_of_work() as session:
        social = orders.register_provider(
            session, orders.ProviderRequest(place.social, ("meal_delivery",), (place.district,)), NOW
        ).id
        worker = access.create_user(session, "social.worker", password="correct-horse-battery")
        access.grant_role(session, worker, Role.social_worker, organisation_id=place.social)
        worker_id = worker.id
    # then its kind is dispatched as consent names it: the social class, with volunteers
    assert orders.recipient_class_of(ProviderKind.social_organisation) is RecipientClass.social
    assert orders.recipient_class_of(ProviderKind.station) is RecipientClass.civil_affairs
    # so a meal is not offered to it: nothing is implied for the social class
    with db.unit_of_work() as session:
        order = orders.place_order(
            session, actor(session, place.family), place.elder, orders.OrderRequest("meal"), NOW, CAT
        )
        order_id = order.id
    assert (load(db, order_id).status, load(db, order_id).provider_id) == (OrderStatus.unassigned, None)
    assert "consent refuses social_organisation" in history(db, order_id)[-1][2]
    # when the elder permits the social class, the sweep offers it, and its worker accepts
    permit_the_social_class(db, place.elder)
    later = NOW + dt.timedelta(minutes=5)
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, later, CAT) == (0, 1, 0)
    assert load(db, order_id).provider_id == social
    with db.unit_of_work() as session:
        orders.accept_order(session, actor(session, worker_id, later), order_id, later)
    assert load(db, order_id).status == OrderStatus.accepted
    assert relationships_of(db, order_id) == [("service", place.social)]


def test_a_break_the_glass_opening_does_not_let_the_team_accept_against_the_elders_refusal(
    db: Database, place: District
) -> None:
    # given a home-nursing order offered to the family-doctor team
    with db.unit_of_work() as session:
        team = orders.register_provider(
            session, orders.ProviderRequest(place.team, ("nursing",), (place.street_1,)), NOW
        ).id
        order = orders.place_order(
            session,
            actor(session, place.officer),
            place.disabled,
            orders.OrderRequest("home_nursing"),
            NOW,
            CAT,
        )
        order_id = order.id
    assert load(db, order_id).provider_id == team
    # when the elder then refuses care-services data to the health side, and the team's doctor,
    # having opened the record in an emergency, accepts the order
    later = NOW + dt.timedelta(minutes=5)
    deny_care_services(db, place.disabled, RecipientClass.health, later)
    with db.unit_of_work() as session:
        open_break_glass(
            session, actor(session, place.doctor, later), place.disabled, "夜间跌倒，需查看护理记录", later
        )
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        orders.accept_order(session, actor(session, place.doctor, later), order_id, later)
    # then it is refused for consent: the opening is for reading in the emergency, not for taking
    # on the elder's care (a contract relationship) that the elder refused
    assert refused.value.code == "access.consent"
    assert load(db, order_id).status == OrderStatus.offered
    assert relationships_of(db, order_id) == []
