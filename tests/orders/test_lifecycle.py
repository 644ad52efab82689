"""An order's life on the real database (SQLite and PostgreSQL): placed with eligibility and
subsidy, dispatched, declined or lapsed and re-dispatched, accepted with a service relationship,
completed with proof, rated, cancelled; every step in the history."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.orders.district import NOW, District, actor, permit_the_social_class, register_providers
from yiyang.access.actor import system_actor
from yiyang.access.models import AuditEvent, RelationshipKind, ResidentRelationship
from yiyang.care.orders import service as orders
from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE
from yiyang.care.orders.models import OrderStatus, PlacedAs, ServiceOrder
from yiyang.db import Database
from yiyang.errors import Conflict, Forbidden, Invalid

CAT = DEFAULT_CATALOGUE


def place_meal(db: Database, user_id: int, resident_id: int, service: str = "meal") -> int:
    with db.unit_of_work() as session:
        order = orders.place_order(
            session, actor(session, user_id), resident_id, orders.OrderRequest(service), NOW, CAT
        )
        return order.id


def events_of(db: Database, order_id: int) -> list[tuple[str, int | None]]:
    with db.unit_of_work() as session:
        return [(t.event, t.provider_id) for t in orders.order_history(session, order_id)]


def load(db: Database, order_id: int) -> ServiceOrder:
    with db.unit_of_work() as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None
        return order


def test_a_resident_orders_a_meal_and_it_goes_to_the_nearest_station_with_the_subsidy(
    db: Database, place: District
) -> None:
    # given two stations covering the street; the elder lives in a grid of station A's community
    providers = register_providers(db, place)
    # when the elder orders a meal themselves
    order_id = place_meal(db, place.elder_user, place.elder)
    # then it is offered to station A, with the 特困 subsidy covering the whole price
    order = load(db, order_id)
    assert order.status == OrderStatus.offered
    assert order.provider_id == providers["a"]
    assert order.placed_as == PlacedAs.resident
    assert (order.price_cents, order.subsidy_cents, order.subsidy_basis) == (1500, 1500, "tekun")
    assert order.offer_expires_at == NOW + dt.timedelta(minutes=30)
    assert events_of(db, order_id) == [("placed", None), ("offered", providers["a"])]


def test_an_authorised_family_member_orders_and_a_stranger_is_refused(db: Database, place: District) -> None:
    register_providers(db, place)
    order_id = place_meal(db, place.family, place.elder)
    assert load(db, order_id).placed_as == PlacedAs.family
    with pytest.raises(Forbidden) as refused:
        place_meal(db, place.stranger, place.elder)
    assert refused.value.code == "order.place.forbidden"
    with db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(ServiceOrder)) == 1
        # the stranger's attempt is in the elder's audit trail, though nothing was written
        denied = session.scalars(
            select(AuditEvent).where(AuditEvent.resident_id == place.elder, AuditEvent.outcome == "denied")
        ).all()
        assert [(e.user_id, e.action, e.reason) for e in denied] == [
            (place.stranger, "create", "order.place.forbidden")
        ]


def test_an_ineligible_order_is_refused_with_the_reason_and_nothing_is_written(
    db: Database, place: District
) -> None:
    register_providers(db, place)
    with pytest.raises(Invalid) as refused:
        place_meal(db, place.officer, place.younger)  # 56 years old
    assert refused.value.code == "order.eligibility.age"
    assert "60" in refused.value.message
    assert refused.value.detail["reasons"][0]["code"] == "order.eligibility.age"
    with pytest.raises(Invalid) as no_area, db.unit_of_work() as session:  # nobody's area reaches them
        orders.place_order(
            session, system_actor("orders-test"), place.nowhere, orders.OrderRequest("meal"), NOW, CAT
        )
    assert no_area.value.code == "order.area.unknown"
    with db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(ServiceOrder)) == 0


def test_a_decline_passes_the_order_on_and_when_nobody_is_left_it_waits_unassigned(
    db: Database, place: District
) -> None:
    providers = register_providers(db, place)
    order_id = place_meal(db, place.elder_user, place.elder)
    # when station A declines
    with db.unit_of_work() as session:
        orders.decline_order(session, actor(session, place.staff_a), order_id, "人手不足", NOW, CAT)
    # then station B is offered it
    assert load(db, order_id).provider_id == providers["b"]
    # and when B declines too, nobody covering the area with the skill is left
    with db.unit_of_work() as session:
        orders.decline_order(session, actor(session, place.staff_b), order_id, None, NOW, CAT)
    order = load(db, order_id)
    assert order.status == OrderStatus.unassigned and order.provider_id is None
    assert [e for e, _ in events_of(db, order_id)] == [
        "placed", "offered", "declined", "offered", "declined", "unassigned",
    ]  # fmt: skip


def test_an_offer_not_taken_in_time_lapses_and_goes_to_the_next_provider(
    db: Database, place: District
) -> None:
    providers = register_providers(db, place)
    order_id = place_meal(db, place.elder_user, place.elder)
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, NOW + dt.timedelta(minutes=29), CAT) == (0, 0, 0)
    later = NOW + dt.timedelta(minutes=31)
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, later, CAT) == (1, 1, 0)
    order = load(db, order_id)
    assert order.provider_id == providers["b"] and order.offered_at == later
    assert events_of(db, order_id)[-2:] == [("lapsed", providers["a"]), ("offered", providers["b"])]
    # and the lapsed station can no longer take it
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        orders.accept_order(session, actor(session, place.staff_a), order_id, later)


def test_accepting_gives_the_station_a_service_relationship_until_the_order_completes(
    db: Database, place: District
) -> None:
    providers = register_providers(db, place)
    order_id = place_meal(db, place.elder_user, place.elder)
    # another station cannot take an order offered to station A
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        orders.accept_order(session, actor(session, place.staff_b), order_id, NOW)
    assert refused.value.code == "order.not_provider"
    # station A takes it
    with db.unit_of_work() as session:
        orders.accept_order(session, actor(session, place.staff_a), order_id, NOW + dt.timedelta(minutes=5))
    with db.unit_of_work() as session:
        row = session.scalars(select(ResidentRelationship)).one()
        assert (row.kind, row.organisation_id, row.resident_id) == (
            RelationshipKind.service, place.station_a, place.elder,
        )  # fmt: skip
        assert (row.source_type, row.source_id, row.ended_at) == ("service_order", order_id, None)
    # a second accept is a conflict, not a second relationship
    with db.unit_of_work() as session, pytest.raises(Conflict):
        orders.accept_order(session, actor(session, place.staff_a), order_id, NOW)
    # completing with proof ends the relationship
    done_at = NOW + dt.timedelta(hours=1)
    with db.unit_of_work() as session:
        orders.complete_order(
            session, actor(session, place.staff_a), order_id,
            orders.CompletionProof(35, "送餐到家，老人用餐正常", "photo:2026/11/24/0001.jpg"), done_at,
        )  # fmt: skip
    order = load(db, order_id)
    assert order.status == OrderStatus.completed and order.minutes_on_site == 35
    assert order.photo_ref == "photo:2026/11/24/0001.jpg"
    with db.unit_of_work() as session:
        row = session.scalars(select(ResidentRelationship)).one()
        assert row.ended_at == done_at and row.valid_until == done_at
    assert [e for e, _ in events_of(db, order_id)] == ["placed", "offered", "accepted", "completed"]
    assert events_of(db, order_id)[-1] == ("completed", providers["a"])


def test_the_resident_rates_a_completed_order_once(db: Database, place: District) -> None:
    register_providers(db, place)
    order_id = place_meal(db, place.elder_user, place.elder)
    with db.unit_of_work() as session, pytest.raises(Conflict):  # not completed yet
        orders.rate_order(session, actor(session, place.elder_user), order_id, 5, None, NOW)
    with db.unit_of_work() as session:
        staff = actor(session, place.staff_a)
        orders.accept_order(session, staff, order_id, NOW)
        orders.complete_order(
            session, staff, order_id, orders.CompletionProof(30, "ok"), NOW + dt.timedelta(minutes=30)
        )
    with db.unit_of_work() as session, pytest.raises(Forbidden):  # not by the station that served
        orders.rate_order(session, actor(session, place.staff_a), order_id, 5, None, NOW)
    with db.unit_of_work() as session:
        orders.rate_order(session, actor(session, place.elder_user), order_id, 4, "饭菜可口", NOW)
    with db.unit_of_work() as session, pytest.raises(Conflict):
        orders.rate_order(session, actor(session, place.elder_user), order_id, 1, None, NOW)
    order = load(db, order_id)
    assert (order.rating, order.rating_comment) == (4, "饭菜可口")


def test_cancelling_an_accepted_order_ends_the_relationship_and_a_closed_order_cannot_be_cancelled(
    db: Database, place: District
) -> None:
    register_providers(db, place)
    order_id = place_meal(db, place.family, place.elder)
    with db.unit_of_work() as session:
        orders.accept_order(session, actor(session, place.staff_a), order_id, NOW)
    with db.unit_of_work() as session:
        orders.cancel_order(session, actor(session, place.family), order_id, "临时外出", NOW)
    assert load(db, order_id).status == OrderStatus.cancelled
    with db.unit_of_work() as session:
        assert session.scalars(select(ResidentRelationship.ended_at)).one() == NOW
    with db.unit_of_work() as session, pytest.raises(Conflict):
        orders.cancel_order(session, actor(session, place.family), order_id, None, NOW)
    assert events_of(db, order_id)[-1][0] == "cancelled"


def test_load_is_balanced_across_stations_once_one_has_work(db: Database, place: District) -> None:
    providers = register_providers(db, place, capacity=1)
    first = place_meal(db, place.officer, place.elder)
    second = place_meal(db, place.officer, place.elder)
    third = place_meal(db, place.officer, place.elder)
    assert load(db, first).provider_id == providers["a"]
    assert load(db, second).provider_id == providers["b"]  # A is at capacity
    assert load(db, third).status == OrderStatus.unassigned  # both full
    # when A finishes its order, the sweep gives it the waiting one
    with db.unit_of_work() as session:
        staff = actor(session, place.staff_a)
        orders.accept_order(session, staff, first, NOW)
        orders.complete_order(
            session, staff, first, orders.CompletionProof(1, "ok"), NOW + dt.timedelta(seconds=30)
        )
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, NOW + dt.timedelta(minutes=1), CAT) == (0, 1, 0)
    assert load(db, third).provider_id == providers["a"]


def test_nursing_goes_to_the_family_doctor_team_by_skill_and_preference(
    db: Database, place: District
) -> None:
    providers = register_providers(db, place)
    order_id = place_meal(db, place.officer, place.disabled, service="home_nursing")
    order = load(db, order_id)
    assert order.provider_id == providers["team"]
    assert (order.subsidy_cents, order.subsidy_basis) == (6000, "dibao")


def test_an_order_outside_every_coverage_waits_until_a_provider_covers_it(
    db: Database, place: District
) -> None:
    register_providers(db, place)
    order_id = place_meal(db, place.officer, place.far)  # the other street
    assert load(db, order_id).status == OrderStatus.unassigned
    assert _last_reason(db, order_id) == "no provider: none covers the area"
    # a social organisation that covers the district comes, and the elder permits the social class
    # (nothing is implied for it: tests/orders/test_consent_dispatch.py)
    permit_the_social_class(db, place.far)
    with db.unit_of_work() as session:
        social = orders.register_provider(
            session, orders.ProviderRequest(place.social, ("meal_delivery",), (place.district,)), NOW
        )
        social_id = social.id
    with db.unit_of_work() as session:
        assert orders.sweep_offers(session, NOW, CAT) == (0, 1, 0)
    assert load(db, order_id).provider_id == social_id


def test_lists_and_the_board_show_what_each_actor_should_see(db: Database, place: District) -> None:
    providers = register_providers(db, place)
    order_id = place_meal(db, place.elder_user, place.elder)
    with db.unit_of_work() as session:
        board_a = orders.provider_board(session, actor(session, place.staff_a), NOW)
        board_b = orders.provider_board(session, actor(session, place.staff_b), NOW)
        total, rows = orders.list_orders(session, actor(session, place.officer), NOW)
    assert [(i.order.id, i.provider_id, i.area_name) for i in board_a] == [
        (order_id, providers["a"], "甲一网格")
    ]
    assert board_b == []
    assert total == 1 and rows[0].id == order_id


def _last_reason(db: Database, order_id: int) -> str:
    with db.unit_of_work() as session:
        return orders.order_history(session, order_id)[-1].reason or ""
