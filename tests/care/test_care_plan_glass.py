"""Accepting a care plan into work (``accept_care_plan``) outlasts an emergency: a break-the-glass
opening lets a clinician of another team read the resident, not put her plan in force."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.care.builders import NOW, add_resident, load, make_world
from yiyang.access.break_glass import open_break_glass
from yiyang.access.policy import DataCategory, authorize
from yiyang.care import contracts, service
from yiyang.care.models import WorkItem
from yiyang.db import Database
from yiyang.errors import Forbidden
from yiyang.tiers.models import CarePlan, CarePlanStatus
from yiyang.tiers.rules import Tier

REASON = "夜间跌倒呼救，签约医生联系不上 (night fall call, contracted doctor unreachable)"


def test_a_doctor_of_another_team_who_broke_the_glass_may_not_accept_the_plan(db: Database) -> None:
    # given a resident contracted with Dr Wang's team, and her proposed plan
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic"], now=NOW)  # fmt: skip
        plan = CarePlan(resident_id=rid, tier=Tier.yellow, status=CarePlanStatus.proposed,
                        goals=["chronic_control"], activities=["hypertension_follow_up"], addresses=[])  # fmt: skip
        session.add(plan)
        session.flush()
        plan_id = plan.id
        # and Dr Li of the other team has broken the glass for her
        open_break_glass(session, load(session, world.other_doctor_id), rid, REASON, NOW)
    with db.unit_of_work() as session:
        dr_li = load(session, world.other_doctor_id)
        authorize(session, dr_li, rid, category=DataCategory.clinical, what="care_plan", now=NOW)  # reads
        # when Dr Li accepts the plan
        with pytest.raises(Forbidden) as refused:
            service.accept_care_plan(session, dr_li, plan_id, now=NOW)
        # then her own team's scope decides: refused, the plan stays proposed, no work is made
        assert refused.value.code == "access.scope"
        assert session.get(CarePlan, plan_id).status is CarePlanStatus.proposed
        made = session.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.resident_id == rid))
        assert made == 0
