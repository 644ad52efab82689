"""Migration 0018 puts one contract in force per resident into the database, on both engines: it
ends the later duplicates a race left, adds the partial unique index, and can be undone."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, select

from tests.care.builders import NOW, add_resident, load, make_world
from tests.conftest import schema_drift
from yiyang.access.models import ResidentRelationship
from yiyang.care import contracts
from yiyang.care.models import CareContract, CareHistory, ContractStatus
from yiyang.db import Database
from yiyang.migrate import alembic_config, upgrade

INDEX = "uq_care_contract_resident_in_force"


def unique_indexes(database: Database) -> list[str]:
    return [i["name"] for i in inspect(database.engine).get_indexes("care_contract") if i["unique"]]


def downgrade(database: Database, revision: str) -> None:
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_the_index_is_in_the_schema_the_models_describe(db: Database) -> None:
    assert INDEX in unique_indexes(db)
    assert schema_drift(db, ("care_contract",)) == []


def test_migration_0018_ends_later_duplicates_adds_the_index_and_can_be_undone(
    unmigrated_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a database before 0018 where two teams' signings raced: two contracts in force for one resident
    upgrade(unmigrated_db.engine, "0017")
    world = make_world(unmigrated_db)
    with unmigrated_db.unit_of_work() as session:
        rid, alone = add_resident(session, world), add_resident(session, world)
    monkeypatch.setattr(contracts, "contract_in_force", lambda session, resident_id: None)  # the race
    signed = []
    for doctor_id, team_id, resident_id in (
        (world.doctor_id, world.team_id, rid),
        (world.other_doctor_id, world.other_team_id, rid),
        (world.doctor_id, world.team_id, alone),
    ):
        with unmigrated_db.unit_of_work() as session:
            contract = contracts.sign_contract(
                session, load(session, doctor_id), resident_id=resident_id, team_id=team_id, packages=["basic"],
                now=NOW,
            )  # fmt: skip
            signed.append(contract.id)
    first, second, other = signed
    # when the schema is brought up to date
    upgrade(unmigrated_db.engine)
    # then the earliest contract stays in force; the later one is terminated with its reason, its
    # relationship row ended and the change in its history; the other resident's contract is untouched
    with unmigrated_db.unit_of_work() as session:
        status = dict(session.execute(select(CareContract.id, CareContract.status)).all())
        assert status == {
            first: ContractStatus.in_force,
            second: ContractStatus.terminated,
            other: ContractStatus.in_force,
        }
        ended = session.get(CareContract, second)
        assert ended.ended_at is not None and "0018" in ended.end_reason
        rows = dict(
            session.execute(
                select(ResidentRelationship.source_id, ResidentRelationship.ended_at).where(
                    ResidentRelationship.source_type == "care_contract"
                )
            ).all()
        )
        assert rows[first] is None and rows[other] is None and rows[second] == ended.ended_at
        history = session.execute(
            select(CareHistory.action, CareHistory.from_status, CareHistory.to_status, CareHistory.by)
            .where(CareHistory.subject_type == "contract", CareHistory.subject_id == second)
            .order_by(CareHistory.id)
        ).all()
        assert [tuple(h) for h in history][-1] == (
            "terminated",
            "in_force",
            "terminated",
            "system:migration-0018",
        )
    assert INDEX in unique_indexes(unmigrated_db)
    # and undoing 0018 drops the index (the ended duplicate stays ended), and redoing it adds it again
    downgrade(unmigrated_db, "0017")
    assert INDEX not in unique_indexes(unmigrated_db)
    upgrade(unmigrated_db.engine)
    assert INDEX in unique_indexes(unmigrated_db)
