"""A person cannot be on two sites at once: a volunteer holding two orders may not claim the same
wall-clock time on site for both, or it would be credited twice as time-bank hours."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.orders.district import NOW, District, actor, permit_the_social_class, register_providers
from yiyang.care.orders import service as orders
from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE
from yiyang.care.orders.models import OrderStatus, ServiceOrder, ServiceProvider
from yiyang.db import Database
from yiyang.errors import Invalid
from yiyang.timebank import service as timebank

HOUR = dt.timedelta(minutes=60)


def volunteer_with_two_orders(db: Database, place: District) -> tuple[int, int]:
    """Volunteer 2 (capacity 2) offered an escort for the elder and a medicine pickup for the
    disabled neighbour, both in community 1, and accepting both at NOW."""
    permit_the_social_class(db, place.elder)
    permit_the_social_class(db, place.disabled)
    with db.unit_of_work() as session:
        timebank.save_profile(
            session, actor(session, place.volunteer_2), place.volunteer_2,
            timebank.ProfileRequest(area_id=place.community_1, skills=("escort", "errand")), NOW,
        )  # fmt: skip
    ids = []
    with db.unit_of_work() as session:
        for resident_id, code in ((place.elder, "escort"), (place.disabled, "medicine_pickup")):
            order = orders.place_order(
                session, actor(session, place.family if resident_id == place.elder else place.officer),
                resident_id, orders.OrderRequest(code), NOW, DEFAULT_CATALOGUE,
            )  # fmt: skip
            ids.append(order.id)
    with db.unit_of_work() as session:
        volunteer = actor(session, place.volunteer_2)
        for order_id in ids:
            orders.accept_order(session, volunteer, order_id, NOW)
    return ids[0], ids[1]


def complete(db: Database, place: District, order_id: int, minutes: int, at: dt.datetime) -> None:
    with db.unit_of_work() as session:
        orders.complete_order(
            session, actor(session, place.volunteer_2), order_id, orders.CompletionProof(minutes, "完成"), at
        )


def earned(db: Database, place: District) -> list[int]:
    with db.unit_of_work() as session:
        account = timebank.account_of(session, place.volunteer_2, NOW)
        return sorted(line.minutes for line in timebank.statement(session, account.id))


def test_a_volunteer_cannot_claim_the_same_hour_on_two_orders(
    db: Database, place: District, reactions: None
) -> None:
    # given a volunteer who accepted two orders at once and completed the first after an hour
    first, second = volunteer_with_two_orders(db, place)
    complete(db, place, first, 60, NOW + HOUR)
    # when they complete the second at the same moment claiming the same hour
    with pytest.raises(Invalid) as refused:
        complete(db, place, second, 60, NOW + HOUR)
    # then it is refused, naming why and the most allowed, and only the first hour is credited
    assert refused.value.code == "order.proof.minutes"
    assert "两处" in refused.value.message and "another order" in refused.value.message
    assert refused.value.detail["longest"] == 1  # the minute's grace
    assert earned(db, place) == [60]
    with db.unit_of_work() as session:
        order = session.get(ServiceOrder, second)
        assert order is not None and order.status == OrderStatus.accepted and order.minutes_on_site is None
    # the time after the first completion may be claimed for the second, and no more
    with pytest.raises(Invalid):
        complete(db, place, second, 32, NOW + HOUR + dt.timedelta(minutes=30))
    complete(db, place, second, 31, NOW + HOUR + dt.timedelta(minutes=30))
    assert earned(db, place) == [31, 60]


def test_sequential_orders_of_a_volunteer_are_each_credited_in_full(
    db: Database, place: District, reactions: None
) -> None:
    # given a volunteer holding two orders, serving one and then the other
    first, second = volunteer_with_two_orders(db, place)
    # when each is completed as it ends, claiming its own time
    complete(db, place, first, 60, NOW + HOUR)
    complete(db, place, second, 45, NOW + HOUR + dt.timedelta(minutes=50))
    # then both are credited in full
    assert earned(db, place) == [45, 60]


def test_a_station_serves_two_orders_at_once(db: Database, place: District) -> None:
    # given a station's orders (many staff): two meals accepted at once
    register_providers(db, place)
    with db.unit_of_work() as session:
        ids = [
            orders.place_order(
                session, actor(session, place.officer), resident_id, orders.OrderRequest("meal"), NOW,
                DEFAULT_CATALOGUE,
            ).id
            for resident_id in (place.elder, place.disabled)
        ]  # fmt: skip
    staff_of = {}
    with db.unit_of_work() as session:
        for order_id in ids:
            order = session.get(ServiceOrder, order_id)
            assert order is not None and order.provider_id is not None
            provider = session.get(ServiceProvider, order.provider_id)
            assert provider is not None
            staff_of[order_id] = (
                place.staff_a if provider.organisation_id == place.station_a else place.staff_b
            )
            orders.accept_order(session, actor(session, staff_of[order_id]), order_id, NOW)
    # when both are completed at the same moment, each claiming the whole half hour
    with db.unit_of_work() as session:
        for order_id in ids:
            orders.complete_order(
                session, actor(session, staff_of[order_id]), order_id, orders.CompletionProof(30, "送餐"),
                NOW + dt.timedelta(minutes=30),
            )  # fmt: skip
    # then both complete: the rule is for volunteers only
    with db.unit_of_work() as session:
        assert {session.get(ServiceOrder, i).status for i in ids} == {OrderStatus.completed}  # type: ignore[union-attr]
