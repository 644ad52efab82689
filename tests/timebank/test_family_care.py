"""Family care is not time-bank service: a volunteer the elder authorised as family, or who lives
in the elder's household, is never offered the elder's order, may not accept it, and earns no
hours for it should a completion arrive all the same."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.orders.district import NOW, District, actor, permit_the_social_class
from yiyang import events
from yiyang.access import service as access
from yiyang.access.models import ResidentAuthorisation, User
from yiyang.access.roles import Role
from yiyang.care.orders import service as orders
from yiyang.care.orders.catalogue import DEFAULT_CATALOGUE
from yiyang.care.orders.models import OrderStatus, ServiceOrder, ServiceProvider
from yiyang.db import Database
from yiyang.errors import Forbidden
from yiyang.geo.models import Household
from yiyang.residents.models import Resident
from yiyang.timebank import service as timebank

CAT = DEFAULT_CATALOGUE


def volunteer_profile(db: Database, place: District, user_id: int) -> None:
    with db.unit_of_work() as session:
        timebank.save_profile(
            session, actor(session, user_id), user_id,
            timebank.ProfileRequest(area_id=place.community_1, skills=("escort", "errand")), NOW,
        )  # fmt: skip


def authorise_as_family(db: Database, place: District, user_id: int, **when: dt.datetime) -> None:
    with db.unit_of_work() as session:
        user = session.get(User, user_id)
        assert user is not None
        access.authorise_family_member(
            session, place.elder, user, "子女", valid_from=when.get("valid_from", NOW - dt.timedelta(days=1)),
            valid_until=when.get("valid_until"),
        )  # fmt: skip


def share_the_elders_household(db: Database, place: District, user_id: int) -> None:
    """The volunteer is a registered resident living at the elder's address."""
    with db.unit_of_work() as session:
        household = Household(
            address="甲社区1号楼101", address_key="甲社区1号楼101", community_id=place.community_1
        )
        session.add(household)
        session.flush()
        elder = session.get(Resident, place.elder)
        assert elder is not None
        elder.household_id = household.id
        grandson = Resident(
            name="张孙", name_pinyin="zhangsun", birth_date=dt.date(1998, 5, 5),
            community_id=place.community_1, household_id=household.id,
        )  # fmt: skip
        session.add(grandson)
        session.flush()
        user = session.get(User, user_id)
        assert user is not None
        user.resident_id = grandson.id


def order_escort(db: Database, place: District) -> tuple[int, int | None]:
    with db.unit_of_work() as session:
        order = orders.place_order(
            session, actor(session, place.officer), place.elder, orders.OrderRequest("escort"), NOW, CAT
        )
        offered_to = session.get(ServiceProvider, order.provider_id) if order.provider_id else None
        return order.id, offered_to.user_id if offered_to else None


@pytest.fixture
def volunteers(db: Database, place: District, reactions: None) -> None:
    permit_the_social_class(db, place.elder)
    volunteer_profile(db, place, place.volunteer_1)
    volunteer_profile(db, place, place.volunteer_2)


def test_dispatch_passes_over_a_volunteer_the_elder_authorised_as_family(
    db: Database, place: District, volunteers: None
) -> None:
    # given volunteer 1 (the lower id, ranked first otherwise) is the elder's authorised daughter
    authorise_as_family(db, place, place.volunteer_1)
    # when an escort is ordered for the elder
    order_id, offered_to = order_escort(db, place)
    # then it is offered to the other volunteer
    assert offered_to == place.volunteer_2


def test_dispatch_passes_over_a_volunteer_of_the_elders_household(
    db: Database, place: District, volunteers: None
) -> None:
    share_the_elders_household(db, place, place.volunteer_1)
    _, offered_to = order_escort(db, place)
    assert offered_to == place.volunteer_2


def test_an_authorisation_no_longer_in_force_does_not_count(
    db: Database, place: District, volunteers: None
) -> None:
    authorise_as_family(
        db, place, place.volunteer_1,
        valid_from=NOW - dt.timedelta(days=30), valid_until=NOW - dt.timedelta(days=1),
    )  # fmt: skip
    _, offered_to = order_escort(db, place)
    assert offered_to == place.volunteer_1


def test_a_volunteer_authorised_after_the_offer_cannot_accept_it(
    db: Database, place: District, volunteers: None
) -> None:
    # given the escort is offered to volunteer 1
    order_id, offered_to = order_escort(db, place)
    assert offered_to == place.volunteer_1
    # when the elder then authorises that volunteer as family, and they try to accept
    authorise_as_family(db, place, place.volunteer_1)
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        orders.accept_order(session, actor(session, place.volunteer_1), order_id, NOW)
    # then it is refused with a code, and nothing changed
    assert refused.value.code == "order.family_care"
    with db.unit_of_work() as session:
        order = session.get(ServiceOrder, order_id)
        assert order is not None and order.status == OrderStatus.offered and order.accepted_at is None


def test_a_family_volunteer_earns_no_hours_for_the_elders_order(
    db: Database, place: District, volunteers: None
) -> None:
    # given volunteer 2 is the elder's authorised family member
    authorise_as_family(db, place, place.volunteer_2)
    # when a completion of the elder's order naming them arrives all the same
    with db.unit_of_work() as session:
        events.publish(
            session, events.ServiceOrderCompleted(991, place.elder, "escort", place.volunteer_2, 120, NOW)
        )
    # then no hours are minted, while the same for another volunteer earns them
    with db.unit_of_work() as session:
        events.publish(
            session, events.ServiceOrderCompleted(992, place.elder, "escort", place.volunteer_1, 120, NOW)
        )
    with db.unit_of_work() as session:
        assert timebank.balance(session, timebank.account_of(session, place.volunteer_2, NOW).id) == 0
        assert timebank.balance(session, timebank.account_of(session, place.volunteer_1, NOW).id) == 120


def test_a_household_volunteer_earns_no_hours_for_the_elders_order(
    db: Database, place: District, volunteers: None
) -> None:
    share_the_elders_household(db, place, place.volunteer_2)
    with db.unit_of_work() as session:
        events.publish(
            session, events.ServiceOrderCompleted(993, place.elder, "escort", place.volunteer_2, 60, NOW)
        )
    with db.unit_of_work() as session:
        assert timebank.balance(session, timebank.account_of(session, place.volunteer_2, NOW).id) == 0


def test_a_volunteer_who_is_family_of_someone_else_still_serves_this_elder(
    db: Database, place: District, volunteers: None
) -> None:
    # an authorisation from another resident is no reason to pass a volunteer over
    with db.unit_of_work() as session:
        user = session.get(User, place.volunteer_1)
        assert user is not None
        access.grant_role(session, user, Role.family_member)
        access.authorise_family_member(
            session, place.disabled, user, "子女", valid_from=NOW - dt.timedelta(days=1)
        )
    _, offered_to = order_escort(db, place)
    assert offered_to == place.volunteer_1
    with db.unit_of_work() as session:
        assert session.scalars(select(ResidentAuthorisation.resident_id)).all().count(place.disabled) == 1
