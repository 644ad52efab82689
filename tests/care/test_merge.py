"""Care follows the person through a registry merge, and back through an unmerge (``care.merges``):
contracts, the team's scope, referrals and work (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.care.builders import NOW, add_resident, load, make_world
from yiyang.access.policy import DataCategory, authorize
from yiyang.care import contracts
from yiyang.care.models import CareContract, ContractStatus, WorkItem, WorkKind, WorkStatus
from yiyang.care.service import create_work_item
from yiyang.db import Database
from yiyang.errors import Forbidden
from yiyang.residents.service import merge_residents, unmerge

pytestmark = pytest.mark.usefixtures("reactions")
DAY = NOW.date()
LATER = NOW + dt.timedelta(hours=1)  # the merge


def _sign(session, world, user_id: int, resident_id: int, team_id: int) -> int:  # type: ignore[no-untyped-def]
    return contracts.sign_contract(
        session, load(session, user_id), resident_id=resident_id, team_id=team_id, packages=["basic"], now=NOW
    ).id


def _work(session, resident_id: int, team_id: int, programme: str) -> int:  # type: ignore[no-untyped-def]
    return create_work_item(
        session, resident_id=resident_id, kind=WorkKind.follow_up, programme=programme, rule=f"{programme}.test",
        due_from=DAY, due_by=DAY + dt.timedelta(days=14), now=NOW, by="test", owner_organisation_id=team_id,
    ).id  # fmt: skip


def _reaches(session, user_id: int, resident_id: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        authorize(session, load(session, user_id), resident_id, category=DataCategory.care_services,
                  what="care_contract", now=LATER + dt.timedelta(minutes=1), glass=False)  # fmt: skip
    except Forbidden:
        return False
    return True


def test_a_contract_and_its_work_follow_the_person_to_the_surviving_record(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        survivor = add_resident(session, world)
        duplicate = add_resident(session, world, name="张桂芳")
        contract_id = _sign(session, world, world.doctor_id, duplicate, world.team_id)
        work_id = _work(session, duplicate, world.team_id, "elderly_check")
    # when a registry keeper finds the two records are one person
    with db.unit_of_work() as session:
        merge_id = merge_residents(session, survivor, duplicate, by="keeper", reason="同一人", now=LATER).id
    # then the contract, the team's scope and the open work are the surviving record's
    with db.unit_of_work() as session:
        contract = session.get(CareContract, contract_id)
        assert (contract.resident_id, contract.status) == (survivor, ContractStatus.in_force)
        assert contracts.contract_in_force(session, survivor).id == contract_id
        assert session.get(WorkItem, work_id).resident_id == survivor
        assert _reaches(session, world.doctor_id, survivor)
    # and an unmerge takes them back
    with db.unit_of_work() as session:
        unmerge(session, merge_id, by="keeper")
    with db.unit_of_work() as session:
        assert session.get(CareContract, contract_id).resident_id == duplicate
        assert session.get(WorkItem, work_id).resident_id == duplicate
        assert _reaches(session, world.doctor_id, duplicate) and not _reaches(
            session, world.doctor_id, survivor
        )


def test_two_contracts_in_force_leave_the_survivors_and_end_the_other(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        survivor = add_resident(session, world)
        duplicate = add_resident(session, world)
        kept = _sign(session, world, world.doctor_id, survivor, world.team_id)
        ended = _sign(session, world, world.other_doctor_id, duplicate, world.other_team_id)
        own_work = _work(session, survivor, world.team_id, "elderly_check")
        other_team_work = _work(session, duplicate, world.other_team_id, "hypertension")
    with db.unit_of_work() as session:
        merge_residents(session, survivor, duplicate, by="keeper", reason="同一人", now=LATER)
    with db.unit_of_work() as session:
        assert contracts.contract_in_force(session, survivor).id == kept
        other = session.get(CareContract, ended)
        assert other.status is ContractStatus.terminated and "合并" in (other.end_reason or "")
        # the other team no longer reaches the person, and its open work is cancelled, not orphaned
        assert not _reaches(session, world.other_doctor_id, survivor)
        assert session.get(WorkItem, other_team_work).status is WorkStatus.cancelled
        assert session.get(WorkItem, own_work).status is not WorkStatus.cancelled
        assert _reaches(session, world.doctor_id, survivor)


def test_the_same_programme_twice_keeps_the_survivors_item(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        survivor = add_resident(session, world)
        duplicate = add_resident(session, world)
        _sign(session, world, world.doctor_id, survivor, world.team_id)
        theirs = _work(session, survivor, world.team_id, "elderly_check")
        brought = _work(session, duplicate, world.team_id, "elderly_check")
        other = _work(session, duplicate, world.team_id, "hypertension")
    with db.unit_of_work() as session:
        merge_residents(session, survivor, duplicate, by="keeper", reason="同一人", now=LATER)
    with db.unit_of_work() as session:
        items = {w.id: w for w in session.scalars(select(WorkItem).where(WorkItem.resident_id == survivor))}
        assert set(items) == {theirs, brought, other}
        assert items[theirs].status is not WorkStatus.cancelled
        assert items[brought].status is WorkStatus.cancelled
        assert items[other].status is not WorkStatus.cancelled
