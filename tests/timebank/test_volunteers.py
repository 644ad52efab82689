"""Volunteers: a profile makes them a provider, pairing with an elder writes and ends a
relationship, and a completed order earns hours once whatever replays it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.orders.district import NOW, District, actor, permit_the_social_class
from yiyang import events, jobs
from yiyang.access import service as access
from yiyang.access.models import RelationshipKind, ResidentRelationship, User
from yiyang.access.policy import DataCategory, visible_residents
from yiyang.access.roles import Role
from yiyang.care.orders import service as orders
from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE, ProviderKind
from yiyang.care.orders.models import OrderStatus, ServiceOrder, ServiceProvider
from yiyang.db import Database
from yiyang.errors import Conflict, Forbidden, Invalid
from yiyang.residents.service import merge_residents, unmerge
from yiyang.timebank import service as timebank
from yiyang.timebank.models import TransactionKind, VolunteerPairing

ESCORT = dt.timedelta(minutes=150)  # the escort to hospital and back


def save_profile(db: Database, place: District, user_id: int, **changes: object) -> None:
    request = timebank.ProfileRequest(
        area_id=changes.get("area_id", place.community_1),  # type: ignore[arg-type]
        skills=changes.get("skills", ("escort", "errand")),  # type: ignore[arg-type]
        availability=changes.get("availability", ()),  # type: ignore[arg-type]
        active=changes.get("active", True),  # type: ignore[arg-type]
    )
    with db.unit_of_work() as session:
        timebank.save_profile(session, actor(session, user_id), user_id, request, NOW)


def test_a_saved_profile_makes_the_volunteer_a_provider(
    db: Database, place: District, reactions: None
) -> None:
    save_profile(db, place, place.volunteer_1, availability=("tue.am", "sat.pm", "bad.slot"))
    with db.unit_of_work() as session:
        provider = session.scalars(select(ServiceProvider)).one()
        assert (provider.kind, provider.user_id, provider.base_area_id) == (
            ProviderKind.volunteer, place.volunteer_1, place.community_1,
        )  # fmt: skip
        assert provider.skills == ["errand", "escort"] and provider.availability == ["sat.pm", "tue.am"]
    save_profile(db, place, place.volunteer_1, active=False)
    with db.unit_of_work() as session:
        assert session.scalars(select(ServiceProvider.active)).one() is False


def test_only_volunteers_keep_profiles_and_only_their_own(db: Database, place: District) -> None:
    with pytest.raises(Invalid) as not_volunteer:
        save_profile(db, place, place.staff_a)
    assert not_volunteer.value.code == "timebank.not_volunteer"
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        timebank.save_profile(
            session, actor(session, place.volunteer_2), place.volunteer_1,
            timebank.ProfileRequest(area_id=place.community_1), NOW,
        )  # fmt: skip


def test_pairing_writes_a_relationship_and_ending_it_ends_the_relationship(
    db: Database, place: District
) -> None:
    save_profile(db, place, place.volunteer_1)
    # given a civil-affairs officer pairs the volunteer with the elder (小老助老)
    with db.unit_of_work() as session:
        pairing_id = timebank.pair(
            session, actor(session, place.officer), place.volunteer_1, place.elder, NOW
        ).id
    with db.unit_of_work() as session:
        row = session.scalars(select(ResidentRelationship)).one()
        assert (row.kind, row.user_id, row.resident_id, row.organisation_id) == (
            RelationshipKind.pairing, place.volunteer_1, place.elder, None,
        )  # fmt: skip
        assert (row.source_type, row.source_id, row.ended_at) == ("volunteer_pairing", pairing_id, None)
    # a second pairing of the same two is a conflict
    with db.unit_of_work() as session, pytest.raises(Conflict):
        timebank.pair(session, actor(session, place.officer), place.volunteer_1, place.elder, NOW)
    # a volunteer cannot pair themselves
    with db.unit_of_work() as session, pytest.raises(Forbidden):
        timebank.pair(session, actor(session, place.volunteer_1), place.volunteer_1, place.younger, NOW)
    # when the pairing ends, so does the relationship
    later = NOW + dt.timedelta(days=90)
    with db.unit_of_work() as session:
        timebank.end_pairing(session, actor(session, place.officer), pairing_id, "志愿者搬家", later)
    with db.unit_of_work() as session:
        row = session.scalars(select(ResidentRelationship)).one()
        assert row.ended_at == later and row.valid_until == later
        assert timebank.pairings_of(session, place.volunteer_1) == []
    with db.unit_of_work() as session, pytest.raises(Conflict):
        timebank.end_pairing(session, actor(session, place.officer), pairing_id, None, later)


def test_an_inactive_volunteer_cannot_be_paired(db: Database, place: District) -> None:
    save_profile(db, place, place.volunteer_1, active=False)
    with db.unit_of_work() as session, pytest.raises(Invalid):
        timebank.pair(session, actor(session, place.officer), place.volunteer_1, place.elder, NOW)


def test_an_escort_by_a_volunteer_earns_the_time_on_site_once(
    db: Database, place: District, reactions: None
) -> None:
    # given a volunteer free on Tuesday mornings in the elder's community, and one who is not,
    # and an elder who lets volunteers serve them (nothing is implied for volunteers)
    permit_the_social_class(db, place.elder)
    save_profile(db, place, place.volunteer_1, availability=("sat.pm",))
    save_profile(db, place, place.volunteer_2, availability=("tue.am",))
    # when the elder's daughter orders an escort to hospital for Tuesday 10:00
    with db.unit_of_work() as session:
        order = orders.place_order(
            session, actor(session, place.family), place.elder,
            orders.OrderRequest("escort", requested_for=NOW + dt.timedelta(minutes=10)), NOW, DEFAULT_CATALOGUE,
        )  # fmt: skip
        order_id, provider_id = order.id, order.provider_id
    with db.unit_of_work() as session:
        provider = session.get(ServiceProvider, provider_id)
        assert provider is not None and provider.user_id == place.volunteer_2
    # and the volunteer takes it, and completes it after 150 minutes
    with db.unit_of_work() as session:
        volunteer = actor(session, place.volunteer_2)
        assert [i.order.id for i in orders.provider_board(session, volunteer, NOW)] == [order_id]
        orders.accept_order(session, volunteer, order_id, NOW)
        orders.complete_order(
            session, volunteer, order_id, orders.CompletionProof(150, "陪诊完成"), NOW + ESCORT
        )
    # then 150 minutes are earned, and replaying the completion posts nothing more
    with db.unit_of_work() as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None and order.status == OrderStatus.completed
        events.publish(
            session,
            events.ServiceOrderCompleted(order_id, place.elder, "escort", place.volunteer_2, 150, NOW),
        )
    with db.unit_of_work() as session:
        account = timebank.account_of(session, place.volunteer_2, NOW)
        lines = timebank.statement(session, account.id)
        assert [(line.kind, line.minutes, line.source_id) for line in lines] == [
            (TransactionKind.earn, 150, order_id)
        ]
        # the volunteer served under a relationship of their own (kind pairing: what a volunteer's
        # scope is drawn from) that ended with the order
        row = session.scalars(
            select(ResidentRelationship).where(ResidentRelationship.source_type == "service_order")
        ).one()
        assert row.user_id == place.volunteer_2 and row.ended_at == NOW + ESCORT


def test_a_resident_who_volunteers_earns_no_hours_serving_themselves(
    db: Database, place: District, reactions: None
) -> None:
    # given the elder, who lets volunteers serve them, volunteers too
    permit_the_social_class(db, place.elder)
    with db.unit_of_work() as session:
        user = session.get(User, place.elder_user)
        assert user is not None
        access.grant_role(session, user, Role.volunteer)
    save_profile(db, place, place.elder_user)
    # when they order an escort for themselves, dispatch never offers it to them
    with db.unit_of_work() as session:
        me = actor(session, place.elder_user)
        order = orders.place_order(
            session, me, place.elder, orders.OrderRequest("escort"), NOW, DEFAULT_CATALOGUE
        )
        order_id = order.id
        offered_to = session.get(ServiceProvider, order.provider_id) if order.provider_id else None
        assert offered_to is None or offered_to.user_id != place.elder_user
    # and should a completion naming them as their own volunteer arrive all the same, no hours are minted
    with db.unit_of_work() as session:
        events.publish(
            session, events.ServiceOrderCompleted(order_id, place.elder, "escort", place.elder_user, 720, NOW)
        )
    with db.unit_of_work() as session:
        assert timebank.balance(session, timebank.account_of(session, place.elder_user, NOW).id) == 0


def test_a_station_order_earns_no_hours(db: Database, place: District, reactions: None) -> None:
    with db.unit_of_work() as session:
        orders.register_provider(
            session, orders.ProviderRequest(place.station_a, ("meal_delivery",), (place.street_1,)), NOW
        )
        order = orders.place_order(
            session,
            actor(session, place.officer),
            place.elder,
            orders.OrderRequest("meal"),
            NOW,
            DEFAULT_CATALOGUE,
        )
        staff = actor(session, place.staff_a)
        orders.accept_order(session, staff, order.id, NOW)
        orders.complete_order(
            session, staff, order.id, orders.CompletionProof(30, "ok"), NOW + dt.timedelta(minutes=30)
        )
    with db.unit_of_work() as session:
        from yiyang.timebank.models import TimebankTransaction

        assert session.scalars(select(TimebankTransaction)).all() == []


def test_expiry_takes_old_hours_first_and_a_second_run_takes_nothing(db: Database, place: District) -> None:
    t0 = NOW - dt.timedelta(days=700)
    user = place.volunteer_1
    with db.unit_of_work() as session:
        timebank.earn(session, user, 120, source_type="service_order", source_id=1, now=t0, by="t")
        timebank.earn(
            session,
            user,
            60,
            source_type="service_order",
            source_id=2,
            now=t0 + dt.timedelta(days=200),
            by="t",
        )
        timebank.spend(session, actor(session, user), 30, "k", None, t0 + dt.timedelta(days=300))
    # a year's validity, 400 days on: the first lot is old; the spending used 30 of it
    at = t0 + dt.timedelta(days=400)
    with db.unit_of_work() as session:
        assert timebank.expire(session, at, validity_days=365) == 90
    with db.unit_of_work() as session:
        assert timebank.expire(session, at, validity_days=365) == 0
        assert timebank.balance(session, timebank.account_of(session, user, at).id) == 60
    # later the second lot is old too
    with db.unit_of_work() as session:
        assert timebank.expire(session, t0 + dt.timedelta(days=600), validity_days=365) == 60
        summary = timebank.hours_summary(session, timebank.account_of(session, user, at).id)
        assert (summary.balance, summary.earned, summary.spent, summary.expired) == (0, 180, 30, 150)


def test_the_daily_job_keeps_hours_for_the_districts_validity(
    db: Database, place: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a district whose hours are good for five years (time banks differ)
    monkeypatch.setenv("YIYANG_TIMEBANK_VALIDITY_DAYS", str(5 * 365))
    t0 = NOW - dt.timedelta(days=4 * 365)
    with db.unit_of_work() as session:
        timebank.earn(
            session, place.volunteer_1, 120, source_type="service_order", source_id=1, now=t0, by="t"
        )
    jobs.clear()
    jobs.install_jobs()
    try:
        job = {job.name: job for job in jobs.registered()}["timebank.expire"]
        # when the worker's daily sweep runs four years on, the hours are still good
        assert job.run(db, NOW) == 0
        # and they lapse once the five years are up
        assert job.run(db, t0 + dt.timedelta(days=5 * 365 + 1)) == 120
    finally:
        jobs.clear()
    with db.unit_of_work() as session:
        assert timebank.balance(session, timebank.account_of(session, place.volunteer_1, NOW).id) == 0


def test_a_pairing_follows_the_elder_through_a_registry_merge(
    db: Database, place: District, reactions: None
) -> None:
    # given a volunteer paired with an elder whose record turns out to duplicate another one
    permit_the_social_class(db, place.elder)
    save_profile(db, place, place.volunteer_1)
    with db.unit_of_work() as session:
        pairing_id = timebank.pair(
            session, actor(session, place.officer), place.volunteer_1, place.elder, NOW
        ).id
    later = NOW + dt.timedelta(hours=1)
    with db.unit_of_work() as session:
        merge_id = merge_residents(
            session, place.younger, place.elder, by="keeper", reason="同一人", now=later
        ).id
    # then the pairing names the surviving record, as its relationship does
    with db.unit_of_work() as session:
        pairing = session.get(VolunteerPairing, pairing_id)
        assert pairing is not None and pairing.resident_id == place.younger
        # the same two cannot be paired a second time through the surviving record
        with pytest.raises(Conflict):
            timebank.pair(session, actor(session, place.officer), place.volunteer_1, place.younger, later)
    # an unmerge takes it back
    with db.unit_of_work() as session:
        unmerge(session, merge_id, by="keeper")
    with db.unit_of_work() as session:
        assert session.get(VolunteerPairing, pairing_id).resident_id == place.elder  # type: ignore[union-attr]


def test_a_volunteer_ends_their_pairing_after_the_elders_records_were_merged(
    db: Database, place: District, reactions: None
) -> None:
    permit_the_social_class(db, place.elder)
    save_profile(db, place, place.volunteer_1)
    with db.unit_of_work() as session:
        pairing_id = timebank.pair(
            session, actor(session, place.officer), place.volunteer_1, place.elder, NOW
        ).id
    later = NOW + dt.timedelta(hours=1)
    with db.unit_of_work() as session:
        merge_residents(session, place.younger, place.elder, by="keeper", reason="同一人", now=later)
    # the volunteer still sees the pairing among their own, and may end it
    with db.unit_of_work() as session:
        volunteer = actor(session, place.volunteer_1, later)
        visible = visible_residents(session, volunteer, category=DataCategory.care_services, now=later)
        assert [p.id for p in timebank.pairings_of(session, place.volunteer_1, visible=visible)] == [
            pairing_id
        ]
        timebank.end_pairing(session, volunteer, pairing_id, "搬家", later)
    with db.unit_of_work() as session:
        row = session.scalars(select(ResidentRelationship)).one()
        assert (row.resident_id, row.ended_at) == (place.younger, later)
