"""One contract in force per resident, held by the database: concurrent signings, renewals and
group signings that both pass the check in Python meet the unique index, and the loser gets the
same 409 the check gives; the caller's transaction survives it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.care.builders import NOW, World, add_resident, load, make_world
from yiyang.access.models import ResidentRelationship
from yiyang.care import contracts
from yiyang.care.models import CareContract, ContractStatus
from yiyang.db import Database
from yiyang.errors import Conflict


def in_force(database: Database, resident_id: int) -> list[tuple[int, int]]:
    """(contract, team) of each contract in force for one resident."""
    with database.unit_of_work() as session:
        rows = session.execute(
            select(CareContract.id, CareContract.team_id).where(
                CareContract.resident_id == resident_id, CareContract.status == ContractStatus.in_force
            )
        )
        return [(contract_id, team_id) for contract_id, team_id in rows]


def open_relationships(database: Database, resident_id: int) -> int:
    with database.unit_of_work() as session:
        return session.scalar(
            select(func.count())
            .select_from(ResidentRelationship)
            .where(
                ResidentRelationship.resident_id == resident_id,
                ResidentRelationship.source_type == "care_contract",
                ResidentRelationship.ended_at.is_(None),
            )
        )


def resident_of(database: Database, world: World) -> int:
    with database.unit_of_work() as session:
        return add_resident(session, world)


def after_the_check(monkeypatch: pytest.MonkeyPatch, between: Callable[[], None]) -> None:
    """Run ``between`` after the Python check of one contract in force has answered, before any write."""
    check = contracts.contract_in_force

    def checked_then(session: Session, resident_id: int) -> CareContract | None:
        found = check(session, resident_id)
        between()
        return found

    monkeypatch.setattr(contracts, "contract_in_force", checked_then)


@pytest.mark.postgres
def test_two_teams_signing_one_resident_at_once_leave_one_contract(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a resident under no contract, and two doctors of two teams about to sign them
    world = make_world(pg_db)
    rid = resident_of(pg_db, world)
    # both signings pass the check (no contract in force yet) before either writes
    both_checked = threading.Barrier(2, timeout=20)
    after_the_check(monkeypatch, both_checked.wait)
    outcomes: dict[int, object] = {}

    def sign(doctor_id: int, team_id: int) -> None:
        try:
            with pg_db.unit_of_work() as session:
                contract = contracts.sign_contract(
                    session, load(session, doctor_id), resident_id=rid, team_id=team_id, packages=["basic"],
                    now=NOW,
                )  # fmt: skip
                outcomes[team_id] = contract.id
        except Exception as error:  # noqa: BLE001 - the test reads what each signing got
            outcomes[team_id] = error

    # when they sign at once
    threads = [
        threading.Thread(target=sign, args=(world.doctor_id, world.team_id)),
        threading.Thread(target=sign, args=(world.other_doctor_id, world.other_team_id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    # then exactly one is signed, the other refused with the check's own 409
    refused = [o for o in outcomes.values() if isinstance(o, Exception)]
    signed = [team for team, o in outcomes.items() if isinstance(o, int)]
    assert len(signed) == 1 and len(refused) == 1, outcomes
    assert isinstance(refused[0], Conflict) and refused[0].code == "care.contract.exists"
    assert refused[0].status_code == 409
    # and one contract is in force, with one relationship row giving one team its scope
    assert [team for _, team in in_force(pg_db, rid)] == signed
    assert open_relationships(pg_db, rid) == 1


@pytest.mark.postgres
def test_a_signing_that_loses_the_race_leaves_its_transaction_usable(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given another team's signing of the same resident committed between the check and the write
    world = make_world(pg_db)
    rid, other = resident_of(pg_db, world), resident_of(pg_db, world)

    def the_other_team_signs() -> None:
        monkeypatch.undo()  # once
        with pg_db.unit_of_work() as session:
            contracts.sign_contract(
                session, load(session, world.other_doctor_id), resident_id=rid, team_id=world.other_team_id,
                packages=["basic"], now=NOW,
            )  # fmt: skip

    after_the_check(monkeypatch, the_other_team_signs)
    with pg_db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        # when this team's signing writes, it is refused as the check refuses
        with pytest.raises(Conflict) as refused:
            contracts.sign_contract(
                session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], now=NOW
            )
        assert refused.value.code == "care.contract.exists"
        # then the same unit of work goes on: it signs another resident and commits
        contracts.sign_contract(
            session, doctor, resident_id=other, team_id=world.team_id, packages=["basic"], now=NOW
        )
    assert [team for _, team in in_force(pg_db, rid)] == [world.other_team_id]
    assert [team for _, team in in_force(pg_db, other)] == [world.team_id]
    assert open_relationships(pg_db, rid) == 1


@pytest.mark.postgres
def test_renewing_an_expired_contract_while_another_team_signs_leaves_one(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an expired contract, and another team signing the resident between the renewal's check and write
    world = make_world(pg_db)
    rid = resident_of(pg_db, world)
    with pg_db.unit_of_work() as session:
        old = contracts.sign_contract(
            session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id, packages=["basic"],
            now=NOW,
        )  # fmt: skip
        old.status = ContractStatus.expired
        old_id = old.id

    def the_other_team_signs() -> None:
        monkeypatch.undo()
        with pg_db.unit_of_work() as session:
            contracts.sign_contract(
                session, load(session, world.other_doctor_id), resident_id=rid, team_id=world.other_team_id,
                packages=["basic"], now=NOW,
            )  # fmt: skip

    after_the_check(monkeypatch, the_other_team_signs)
    # when the first team renews, then it is refused, and the expired contract stays expired
    with pg_db.unit_of_work() as session:
        with pytest.raises(Conflict) as refused:
            contracts.renew_contract(session, load(session, world.doctor_id), old_id, now=NOW)
        assert refused.value.code == "care.contract.exists"
        assert session.get(CareContract, old_id).status is ContractStatus.expired
    assert [team for _, team in in_force(pg_db, rid)] == [world.other_team_id]


@pytest.mark.postgres
def test_a_group_signing_that_meets_a_concurrent_contract_signs_nobody(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a care home signing two residents, and another team signing one of them after the group's
    # read of who is already under contract
    world = make_world(pg_db)
    rid, other = resident_of(pg_db, world), resident_of(pg_db, world)
    check_panel = contracts._check_panel

    def the_other_team_signs_first(session: Session, team: object, adding: int) -> None:
        monkeypatch.undo()
        with pg_db.unit_of_work() as elsewhere:
            contracts.sign_contract(
                elsewhere, load(elsewhere, world.other_doctor_id), resident_id=rid, team_id=world.other_team_id,
                packages=["basic"], now=NOW,
            )  # fmt: skip
        check_panel(session, team, adding)  # type: ignore[arg-type]

    monkeypatch.setattr(contracts, "_check_panel", the_other_team_signs_first)
    # when the group is signed, then it is refused with the 409 and writes nothing
    with pg_db.unit_of_work() as session:
        with pytest.raises(Conflict) as refused:
            contracts.sign_group(
                session, load(session, world.doctor_id), team_id=world.team_id,
                institution_id=world.care_home_id, resident_ids=[rid, other], packages=["elderly"], now=NOW,
            )  # fmt: skip
        assert refused.value.code == "care.contract.exists"
    assert [team for _, team in in_force(pg_db, rid)] == [world.other_team_id]
    assert in_force(pg_db, other) == []


def test_the_database_refuses_a_second_contract_in_force(db: Database) -> None:
    # given a resident with a contract in force
    world = make_world(db)
    rid = resident_of(db, world)
    with db.unit_of_work() as session:
        first = contracts.sign_contract(
            session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id, packages=["basic"],
            now=NOW,
        )  # fmt: skip
        values = {c: getattr(first, c) for c in ("resident_id", "valid_from", "valid_until", "signed_by")}
    # when a second contract in force is written past the service, then the database refuses it
    with pytest.raises(IntegrityError), db.unit_of_work() as session:
        session.add(
            CareContract(
                **values, team_id=world.other_team_id, packages=["basic"], status=ContractStatus.in_force
            )
        )
        session.flush()
    # while a second contract no longer in force is kept beside it
    with db.unit_of_work() as session:
        session.add(
            CareContract(
                **values, team_id=world.other_team_id, packages=["basic"], status=ContractStatus.terminated
            )
        )
    assert [team for _, team in in_force(db, rid)] == [world.team_id]
