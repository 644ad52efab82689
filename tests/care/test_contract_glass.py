"""Signing a contract outlasts an emergency: a break-the-glass opening lets a clinician read the
resident for the moment, not take on the care the resident refused (``relationships.granting``)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.care.builders import NOW, add_resident, load, make_world
from tests.orders.district import deny_care_services
from yiyang.access.break_glass import open_break_glass
from yiyang.access.models import ResidentRelationship
from yiyang.care import contracts
from yiyang.care.models import CareContract
from yiyang.db import Database
from yiyang.errors import Forbidden


def test_a_doctor_who_broke_the_glass_may_not_sign_a_refusing_resident(db: Database) -> None:
    # given a resident who refuses her care-services data to the health side
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
    deny_care_services(db, rid, "health", NOW)
    # and a doctor who opened her record in an emergency
    with db.unit_of_work() as session:
        open_break_glass(session, load(session, world.doctor_id), rid, "夜间跌倒呼救，需查看既往病史", NOW)
    # when the doctor signs her to the team
    with db.unit_of_work() as session, pytest.raises(Forbidden) as refused:
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic"], now=NOW)  # fmt: skip
    # then her refusal stands: no contract, no relationship giving the team lasting scope
    assert refused.value.code == "access.consent"
    with db.unit_of_work() as session:
        for model in (CareContract, ResidentRelationship):
            assert (
                session.scalar(select(func.count()).select_from(model).where(model.resident_id == rid)) == 0
            )
