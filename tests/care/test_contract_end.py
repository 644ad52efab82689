"""Where a contract ends or hands over: early renewals keep the work coming, termination and expiry
take the team's scope and its open work with them, and residents no longer active get no new work."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.care.builders import NOW, add_resident, load, make_world
from yiyang.access.policy import DataCategory, permitted
from yiyang.care import contracts
from yiyang.care.day import run_care_day
from yiyang.care.models import ContractStatus, WorkItem, WorkStatus
from yiyang.db import Database
from yiyang.errors import NotFound
from yiyang.residents.models import Resident, ResidentStatus


def days(n: int) -> dt.datetime:
    return NOW + dt.timedelta(days=n)


def work(db: Database, resident_id: int) -> list[tuple[str, WorkStatus, int | None]]:
    with db.unit_of_work() as session:
        rows = session.execute(
            select(WorkItem.programme, WorkItem.status, WorkItem.owner_organisation_id)
            .where(WorkItem.resident_id == resident_id)
            .order_by(WorkItem.id)
        )
        return [(programme, status, owner) for programme, status, owner in rows]


def test_an_early_renewal_keeps_the_routine_work_coming_until_the_new_contract_starts(db: Database) -> None:
    # given a resident with hypertension under the chronic package, renewed 200 days in (the new
    # contract starts when the old one ends, about 165 days later)
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        doctor = load(session, world.doctor_id)
        old = contracts.sign_contract(
            session, doctor, resident_id=rid, team_id=world.team_id, packages=["chronic"], now=NOW
        )
        contracts.renew_contract(session, doctor, old.id, now=days(200))
    # when the day job runs between the renewal and the new contract's first day
    report = run_care_day(db, days(201))
    # then the old contract still carries the resident: the follow-up is raised for the team
    assert report.created == 1
    assert work(db, rid) == [("hypertension", WorkStatus.due, world.team_id)]


def test_terminating_an_early_renewal_ends_the_teams_scope_at_once(db: Database) -> None:
    # given a contract renewed early: the old row runs on until the new contract starts
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        doctor = load(session, world.doctor_id)
        old = contracts.sign_contract(
            session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], now=NOW
        )
        new = contracts.renew_contract(session, doctor, old.id, now=days(200))
        # when the resident ends the contract (解约) before the new one starts
        contracts.terminate_contract(session, doctor, new.id, reason="本人申请", now=days(201))
        # then the team no longer reaches the resident, the next day or any day after
        for later in (days(202), days(300)):
            assert not permitted(
                session, doctor, rid, category=DataCategory.care_services, what="t", now=later
            )


@pytest.mark.parametrize("ending", ["terminated", "expired"])
def test_a_resident_moving_to_another_team_gets_that_teams_work(db: Database, ending: str) -> None:
    # given a resident with hypertension whose first team has an open follow-up for them
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contract = contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid,
                                           team_id=world.team_id, packages=["chronic"], months=1, now=NOW)  # fmt: skip
        contract_id = contract.id
    run_care_day(db, NOW)
    assert work(db, rid) == [("hypertension", WorkStatus.due, world.team_id)]
    # when the contract ends (terminated, or expired by the day job)
    moved = days(3) if ending == "terminated" else days(40)
    if ending == "terminated":
        with db.unit_of_work() as session:
            contracts.terminate_contract(
                session, load(session, world.doctor_id), contract_id, reason="迁居", now=moved
            )
    else:
        assert run_care_day(db, moved).expired_contracts == 1
    # then the first team's open work for the resident is cancelled, with its history
    assert work(db, rid) == [("hypertension", WorkStatus.cancelled, world.team_id)]
    with db.unit_of_work() as session:
        (item_id,) = session.scalars(select(WorkItem.id).where(WorkItem.resident_id == rid))
        last = contracts.history_of(session, "work_item", item_id)[-1]
        assert (last.action, last.to_status) == ("cancelled", "cancelled") and last.note
        # and when they sign with another team, the day job raises the follow-up for that team
        contracts.sign_contract(session, load(session, world.other_doctor_id), resident_id=rid,
                                team_id=world.other_team_id, packages=["chronic"], now=moved)  # fmt: skip
    assert run_care_day(db, moved + dt.timedelta(days=1)).created == 1
    assert work(db, rid)[-1] == ("hypertension", WorkStatus.due, world.other_team_id)


def test_renewing_keeps_the_teams_open_work(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        doctor = load(session, world.doctor_id)
        old = contracts.sign_contract(
            session, doctor, resident_id=rid, team_id=world.team_id, packages=["chronic"], now=NOW
        )
        old_id = old.id
    run_care_day(db, NOW)
    with db.unit_of_work() as session:
        contracts.renew_contract(session, load(session, world.doctor_id), old_id, now=days(10))
    assert work(db, rid) == [("hypertension", WorkStatus.due, world.team_id)]


def test_two_packages_promising_one_programme_give_it_on_the_wider_terms(db: Database) -> None:
    # given a 50-year-old under the older people's package (reassessment from 65) and the rehab
    # package (reassessment for everyone), in that order
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, born=dt.date(1976, 1, 1))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["elderly", "rehab"], now=NOW)  # fmt: skip
    run_care_day(db, NOW)
    # then the rehab package's reassessment is raised as well as its visits
    assert sorted(programme for programme, _status, _owner in work(db, rid)) == ["capability", "rehab"]


def test_a_merged_resident_gets_no_new_routine_work(db: Database) -> None:
    # given a contracted resident whose record was then merged into another
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        survivor = add_resident(session, world, name="张桂芬")
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic", "chronic"], now=NOW)  # fmt: skip
        merged = session.get(Resident, rid)
        merged.status, merged.merged_into_id = ResidentStatus.merged, survivor
    # when the day job runs, then it raises nothing for the record that is no longer a person's
    assert run_care_day(db, NOW).created == 0
    assert work(db, rid) == []


def test_a_merged_residents_contract_is_not_renewed(db: Database) -> None:
    # given a contract whose resident's record was merged into another
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        survivor = add_resident(session, world, name="张桂芬")
        doctor = load(session, world.doctor_id)
        old = contracts.sign_contract(
            session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], now=NOW
        )
        merged = session.get(Resident, rid)
        merged.status, merged.merged_into_id = ResidentStatus.merged, survivor
        # when the team renews it, then it is refused as signing would be, and nothing new is in force
        with pytest.raises(NotFound) as refused:
            contracts.renew_contract(session, doctor, old.id, now=days(300))
        assert refused.value.code == "resident.merged"
        assert old.status is ContractStatus.in_force
        assert contracts.contract_in_force(session, rid).id == old.id
