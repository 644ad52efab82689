"""An order whose requested time is long past is not offered for ever: the sweep ends it as
missed (逾期未接单), with the open offer ended and the reason in its history."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.orders.district import NOW, District, actor, register_providers
from yiyang.care.orders import service as orders
from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE
from yiyang.care.orders.models import OPEN_STATUSES, OrderStatus, ServiceOrder, ServiceOrderTransition
from yiyang.config import Settings
from yiyang.db import Database
from yiyang.errors import Conflict, Forbidden

CAT = DEFAULT_CATALOGUE
AT_15 = NOW + dt.timedelta(hours=5)  # 15:00 China time the same Tuesday
GRACE = dt.timedelta(minutes=120)


def place_meal_for(db: Database, place: District, when: dt.datetime | None) -> int:
    with db.unit_of_work() as session:
        order = orders.place_order(
            session, actor(session, place.officer), place.elder, orders.OrderRequest("meal", when), NOW, CAT
        )
        return order.id


def load(db: Database, order_id: int) -> ServiceOrder:
    with db.unit_of_work() as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        return order


def history(db: Database, order_id: int) -> list[ServiceOrderTransition]:
    with db.unit_of_work() as session:
        return list(orders.order_history(session, order_id))


def test_the_grace_is_a_setting_of_two_hours_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().order_missed_after_minutes == 120
    monkeypatch.setenv("YIYANG_ORDER_MISSED_AFTER_MINUTES", "45")
    assert Settings().order_missed_after_minutes == 45


def test_an_offer_still_untaken_long_after_the_requested_time_is_missed_not_passed_on(
    db: Database, place: District
) -> None:
    # given a meal for 15:00 offered to station A, which lets every offer lapse
    providers = register_providers(db, place)
    order_id = place_meal_for(db, place, AT_15)
    assert load(db, order_id).provider_id == providers["a"]
    # when the sweep runs more than two hours after 15:00
    late = AT_15 + GRACE + dt.timedelta(minutes=1)
    with db.unit_of_work() as session:
        lapsed, offered, missed = orders.sweep_offers(session, late, CAT)
    # then the order is missed (no longer open), its offer ended, and nobody else is offered it
    assert (lapsed, offered, missed) == (0, 0, 1)
    order = load(db, order_id)
    assert order.status == OrderStatus.missed and order.status not in OPEN_STATUSES
    assert (order.provider_id, order.offer_expires_at) == (None, None)
    last = history(db, order_id)[-1]
    assert (last.event, last.from_status, last.to_status, last.provider_id) == (
        "missed", "offered", "missed", providers["a"],
    )  # fmt: skip
    assert last.reason is not None and "120" in last.reason
    # and station A can no longer take it (it is offered to no one), nor anyone cancel it, and the
    # board no longer shows it
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        orders.accept_order(session, actor(session, place.staff_a), order_id, late)
    with db.unit_of_work() as session, pytest.raises(Conflict):
        orders.cancel_order(session, actor(session, place.officer), order_id, None, late)
    with db.unit_of_work() as session:
        assert orders.provider_board(session, actor(session, place.staff_a), late) == []
    # and a second sweep changes nothing
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, late + dt.timedelta(hours=1), CAT) == (0, 0, 0)
    assert len(history(db, order_id)) == 3


def test_within_the_grace_a_lapsed_offer_still_goes_to_the_next_provider(
    db: Database, place: District
) -> None:
    providers = register_providers(db, place)
    order_id = place_meal_for(db, place, AT_15)
    within = AT_15 + GRACE - dt.timedelta(minutes=1)
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, within, CAT) == (1, 1, 0)
    assert load(db, order_id).provider_id == providers["b"]


def test_an_unassigned_order_long_past_its_time_is_missed_and_no_longer_retried(
    db: Database, place: District
) -> None:
    # given a meal for 15:00 that nobody could take
    order_id = place_meal_for(db, place, AT_15)
    assert load(db, order_id).status == OrderStatus.unassigned
    # when a station joins, but only after the grace has passed
    register_providers(db, place)
    late = AT_15 + GRACE + dt.timedelta(minutes=5)
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, late, CAT) == (0, 0, 1)
    order = load(db, order_id)
    assert order.status == OrderStatus.missed and order.provider_id is None
    assert [(t.event, t.from_status) for t in history(db, order_id)][-1] == ("missed", "unassigned")
    # and the list and its counts show it as missed
    with db.unit_of_work() as session:
        officer = actor(session, place.officer, late)
        total, rows = orders.list_orders(session, officer, late, status=OrderStatus.missed)
        assert (total, [r.id for r in rows]) == (1, [order_id])
        assert orders.status_counts(session, officer, late) == {OrderStatus.missed: 1}


def test_a_decline_after_the_grace_misses_the_order_rather_than_offering_it_again(
    db: Database, place: District
) -> None:
    providers = register_providers(db, place)
    order_id = place_meal_for(db, place, AT_15)
    late = AT_15 + GRACE + dt.timedelta(minutes=1)
    # the offer was renewed late (a lapse just before the grace ran out)
    with db.unit_of_work() as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        order.offer_expires_at = late + dt.timedelta(minutes=20)
    # accepting it now is refused as missed
    with db.unit_of_work() as session, pytest.raises(Conflict) as refused:
        orders.accept_order(session, actor(session, place.staff_a), order_id, late)
    assert refused.value.code == "order.missed"
    # and declining it does not pass it on to station B
    with db.unit_of_work() as session:
        orders.decline_order(session, actor(session, place.staff_a), order_id, None, late, CAT)
    order = load(db, order_id)
    assert order.status == OrderStatus.missed and order.provider_id is None
    assert [t.event for t in history(db, order_id)][-2:] == ["declined", "missed"]
    assert providers["b"] not in {t.provider_id for t in history(db, order_id)}


def test_an_order_for_as_soon_as_possible_is_left_to_the_lapse_logic(db: Database, place: District) -> None:
    register_providers(db, place)
    order_id = place_meal_for(db, place, None)
    with db.unit_of_work() as session:
        lapsed, offered, missed = orders.sweep_offers(session, NOW + dt.timedelta(hours=6), CAT)
    assert (lapsed, offered, missed) == (1, 1, 0)
    assert load(db, order_id).status == OrderStatus.offered


def test_an_accepted_order_is_not_missed(db: Database, place: District) -> None:
    register_providers(db, place)
    order_id = place_meal_for(db, place, AT_15)
    with db.unit_of_work() as session:
        orders.accept_order(session, actor(session, place.staff_a), order_id, NOW)
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, AT_15 + dt.timedelta(days=1), CAT) == (0, 0, 0)
    assert load(db, order_id).status == OrderStatus.accepted


def test_a_district_may_set_a_shorter_grace(db: Database, place: District) -> None:
    register_providers(db, place)
    order_id = place_meal_for(db, place, AT_15)
    with db.unit_of_work() as session:
        swept = orders.sweep_offers(
            session, AT_15 + dt.timedelta(minutes=31), CAT, missed_after=dt.timedelta(minutes=30)
        )
        assert swept == (0, 0, 1)
    with db.unit_of_work() as session:
        assert session.scalar(select(ServiceOrder.status).where(ServiceOrder.id == order_id)) == "missed"
