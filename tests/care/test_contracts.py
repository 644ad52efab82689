"""Contracts: sign, renew, terminate, expire, group signing; the panel limit; relationship rows."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.care.builders import NOW, add_resident, load, make_world
from yiyang.access.models import AuditEvent, RelationshipKind, ResidentRelationship
from yiyang.care import contracts
from yiyang.care.day import run_care_day
from yiyang.care.models import CareContract, ContractStatus
from yiyang.db import Database
from yiyang.errors import Conflict, Forbidden
from yiyang.geo.models import Organisation


def relationships(session, resident_id: int) -> list[ResidentRelationship]:  # type: ignore[no-untyped-def]
    return list(
        session.execute(
            select(ResidentRelationship)
            .where(ResidentRelationship.resident_id == resident_id)
            .order_by(ResidentRelationship.id)
        ).scalars()
    )


def test_signing_writes_the_relationship_that_gives_the_team_its_scope(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        contract = contracts.sign_contract(
            session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
            packages=["basic", "chronic"], now=NOW,
        )  # fmt: skip
        # given a signed contract, then one relationship row in force names the team and the contract
        (row,) = relationships(session, rid)
        assert (row.kind, row.organisation_id, row.source_type, row.source_id) == (
            RelationshipKind.contract, world.team_id, "care_contract", contract.id,
        )  # fmt: skip
        assert row.ended_at is None and contract.valid_until == dt.date(2027, 3, 1)
        assert [h.action for h in contracts.history_of(session, "contract", contract.id)] == ["signed"]
        # and the access is audited against the resident
        assert (
            session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.resident_id == rid))
            >= 1
        )


def test_terminating_ends_the_relationship_and_keeps_the_history(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        doctor = load(session, world.doctor_id)
        contract = contracts.sign_contract(
            session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], now=NOW
        )
        later = NOW + dt.timedelta(days=30)
        contracts.terminate_contract(session, doctor, contract.id, reason="迁出本区 (moved away)", now=later)
        (row,) = relationships(session, rid)
        assert row.ended_at == later and contract.status is ContractStatus.terminated
        assert [h.action for h in contracts.history_of(session, "contract", contract.id)] == [
            "signed",
            "terminated",
        ]
        with pytest.raises(Conflict):
            contracts.terminate_contract(session, doctor, contract.id, reason="again", now=later)


def test_the_panel_limit_refuses_one_contract_too_many(db: Database) -> None:
    world = make_world(db, panel_limit=2)
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        for _ in range(2):
            rid = add_resident(session, world)
            contracts.sign_contract(
                session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], now=NOW
            )
        third = add_resident(session, world)
        with pytest.raises(Conflict) as refused:
            contracts.sign_contract(
                session, doctor, resident_id=third, team_id=world.team_id, packages=["basic"], now=NOW
            )
        assert refused.value.code == "care.panel_full"
        assert relationships(session, third) == []  # nothing was written for the refused resident


def test_one_contract_in_force_per_resident_and_only_team_members_sign(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic"], now=NOW)  # fmt: skip
        with pytest.raises(Conflict):
            contracts.sign_contract(session, load(session, world.other_doctor_id), resident_id=rid,
                                    team_id=world.other_team_id, packages=["basic"], now=NOW)  # fmt: skip
        other = add_resident(session, world)
        with pytest.raises(Forbidden):
            contracts.sign_contract(session, load(session, world.other_doctor_id), resident_id=other,
                                    team_id=world.team_id, packages=["basic"], now=NOW)  # fmt: skip
        assert (
            session.scalar(
                select(func.count()).select_from(CareContract).where(CareContract.resident_id == other)
            )
            == 0
        )


def test_renewal_continues_the_contract_and_moves_the_relationship(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        doctor = load(session, world.doctor_id)
        old = contracts.sign_contract(
            session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], now=NOW
        )
        new = contracts.renew_contract(
            session, doctor, old.id, packages=["basic", "elderly"], now=NOW + dt.timedelta(days=300)
        )
        assert old.status is ContractStatus.renewed and new.renewed_from_id == old.id
        assert new.valid_from == old.valid_until + dt.timedelta(days=1) and new.packages == [
            "basic",
            "elderly",
        ]
        rows = relationships(session, rid)
        assert [(r.source_id, r.ended_at is None) for r in rows] == [(old.id, False), (new.id, True)]


def test_expiry_by_the_day_job_ends_the_relationship(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic"], months=1, now=NOW)  # fmt: skip
    assert run_care_day(db, NOW + dt.timedelta(days=20)).expired_contracts == 0
    report = run_care_day(db, NOW + dt.timedelta(days=40))
    assert report.expired_contracts == 1
    with db.unit_of_work() as session:
        (contract,) = session.execute(select(CareContract)).scalars()
        assert contract.status is ContractStatus.expired
        (row,) = relationships(session, rid)
        assert row.ended_at is not None
        assert [h.action for h in contracts.history_of(session, "contract", contract.id)] == [
            "signed",
            "expired",
        ]


def test_a_care_home_signs_its_residents_at_once(db: Database) -> None:
    world = make_world(db, panel_limit=3)
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        already = add_resident(session, world)
        contracts.sign_contract(
            session, doctor, resident_id=already, team_id=world.team_id, packages=["basic"], now=NOW
        )
        group = [add_resident(session, world) for _ in range(2)]
        signing = contracts.sign_group(
            session, doctor, team_id=world.team_id, institution_id=world.care_home_id, resident_ids=[already, *group],
            packages=["elderly"], now=NOW,
        )  # fmt: skip
        assert signing.skipped == (already,) and len(signing.contracts) == 2
        assert all(c.group_contract_id == signing.group.id for c in signing.contracts)
        assert contracts.panel_size(session, world.team_id) == 3
        # a group that would overflow the panel signs nobody
        more = [add_resident(session, world) for _ in range(2)]
        with pytest.raises(Conflict):
            contracts.sign_group(session, doctor, team_id=world.team_id, institution_id=world.care_home_id,
                                 resident_ids=more, packages=["elderly"], now=NOW)  # fmt: skip
        assert all(relationships(session, r) == [] for r in more)


def test_only_an_administrator_creates_teams(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        with pytest.raises(Forbidden):
            contracts.create_team(session, load(session, world.doctor_id), code="FDT-9", name="x",
                                  health_centre_id=world.centre_id, panel_limit=5, now=NOW)  # fmt: skip
        assert session.scalar(select(Organisation.id).where(Organisation.code == "FDT-9")) is None


def test_signing_with_a_resident_who_refused_the_team_writes_nothing(db: Database) -> None:
    # given a resident outside the team's scope who denied care-services data to the health side
    from yiyang.access.actor import system_actor
    from yiyang.access.consent import record_consent
    from yiyang.access.consent_models import ConsentDecision
    from yiyang.access.policy import DataCategory, Purpose, RecipientClass

    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        record_consent(
            session, system_actor("care-test"), rid, category=DataCategory.care_services,
            recipient_class=RecipientClass.health, purpose=Purpose.care, decision=ConsentDecision.deny,
            now=NOW - dt.timedelta(days=1),
        )  # fmt: skip
    # when a member of the team signs the contract
    with db.unit_of_work() as session:
        doctor = load(session, world.doctor_id)
        with pytest.raises(Forbidden) as refused:
            contracts.sign_contract(
                session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], now=NOW
            )
        # then it is refused for consent (not for scope: signing is what gives the team its scope),
        # and neither the contract nor the relationship remains, even in the same session
        assert refused.value.code == "access.consent"
        assert relationships(session, rid) == []
        assert session.scalar(select(func.count()).select_from(CareContract)) == 0
    # and the refusal is audited
    with db.unit_of_work() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.resident_id == rid, AuditEvent.outcome == "denied")
            )
            == 1
        )


def test_renewing_early_keeps_the_teams_scope_until_the_new_contract_starts(db: Database) -> None:
    from yiyang.access.policy import DataCategory, authorize

    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world)
        doctor = load(session, world.doctor_id)
        old = contracts.sign_contract(
            session, doctor, resident_id=rid, team_id=world.team_id, packages=["basic"], now=NOW
        )
        renewed_at = NOW + dt.timedelta(days=300)
        contracts.renew_contract(session, doctor, old.id, now=renewed_at)
        # between the renewal and the new contract's first day the team still reaches the resident
        authorize(session, doctor, rid, category=DataCategory.care_services, what="test",
                  now=renewed_at + dt.timedelta(days=30))  # fmt: skip
