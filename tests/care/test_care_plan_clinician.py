"""Accepting a care plan is a clinical decision: only a family doctor, nurse or health manager takes
it, and their team role's scope and the resident's consent decide, not another role they hold."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.care.builders import NOW, add_resident, load, make_world
from yiyang.access import service as access
from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import RelationshipKind, ResidentRelationship
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.care import contracts, service
from yiyang.care.models import WorkItem
from yiyang.db import Database
from yiyang.errors import Forbidden
from yiyang.tiers.models import CarePlan, CarePlanStatus
from yiyang.tiers.rules import Tier


def proposed_plan(session, resident_id: int) -> CarePlan:  # type: ignore[no-untyped-def]
    plan = CarePlan(resident_id=resident_id, tier=Tier.yellow, status=CarePlanStatus.proposed,
                    goals=["chronic_control"], activities=["hypertension_follow_up"], addresses=[])  # fmt: skip
    session.add(plan)
    session.flush()
    return plan


def work_of(session, resident_id: int) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(
        select(func.count()).select_from(WorkItem).where(WorkItem.resident_id == resident_id)
    )


def test_someone_who_is_station_staff_here_and_a_nurse_elsewhere_may_not_accept(db: Database) -> None:
    # given a contracted resident served by a care home, and a person who is station staff at that
    # home and a nurse of another team (which has no contract with the resident)
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic", "chronic"], now=NOW)  # fmt: skip
        session.add(ResidentRelationship(resident_id=rid, kind=RelationshipKind.service,
                                         organisation_id=world.care_home_id, valid_from=NOW,
                                         source_type="test", source_id=rid))  # fmt: skip
        # and the resident permits clinical data to the civil-affairs side (so the station may read it)
        record_consent(session, system_actor("test"), rid, category=DataCategory.clinical,
                       recipient_class=RecipientClass.civil_affairs, purpose=Purpose.care,
                       decision=ConsentDecision.permit, now=NOW)  # fmt: skip
        person = access.create_user(session, "home_staff")
        access.grant_role(session, person, Role.station_staff, organisation_id=world.care_home_id)
        access.grant_role(session, person, Role.nurse, organisation_id=world.other_team_id)
        plan = proposed_plan(session, rid)
        before = work_of(session, rid)
        # when they accept the plan
        with pytest.raises(Forbidden) as refused:
            service.accept_care_plan(session, load(session, person.id), plan.id, now=NOW)
        # then the nurse's grant decides, which does not reach the resident: refused, nothing made
        assert refused.value.code == "access.scope"
        assert plan.status is CarePlanStatus.proposed and work_of(session, rid) == before


@pytest.mark.parametrize("role", [Role.station_staff, Role.grid_worker])
def test_a_role_that_is_no_clinician_may_not_accept(db: Database, role: Role) -> None:
    # given a contracted resident and someone in a non-clinical role
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic"], now=NOW)  # fmt: skip
        person = access.create_user(session, f"not_a_clinician_{role}")
        where = (
            {"area_id": world.grid_id}
            if role is Role.grid_worker
            else {"organisation_id": world.care_home_id}
        )
        access.grant_role(session, person, role, **where)
        plan = proposed_plan(session, rid)
        # when they accept the plan, it is refused as no clinician's, and the plan stays proposed
        with pytest.raises(Forbidden) as refused:
            service.accept_care_plan(session, load(session, person.id), plan.id, now=NOW)
        assert refused.value.code == "access.clinician"
        assert plan.status is CarePlanStatus.proposed


def test_the_contracted_doctor_still_accepts(db: Database) -> None:
    world = make_world(db)
    with db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic"], now=NOW)  # fmt: skip
        plan = proposed_plan(session, rid)
        created = service.accept_care_plan(session, load(session, world.doctor_id), plan.id, now=NOW)
        assert plan.status is CarePlanStatus.active and [i.programme for i in created] == ["hypertension"]


def test_over_http_station_staff_may_neither_activate_nor_accept_a_plan(sqlite_db: Database) -> None:
    from fastapi.testclient import TestClient

    from tests.care.builders import bearer
    from yiyang.app import create_app

    # given a contracted resident's proposed plan, and station staff of the care home serving her
    world = make_world(sqlite_db)
    with sqlite_db.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic"], now=NOW)  # fmt: skip
        person = access.create_user(session, "home_staff")
        access.grant_role(session, person, Role.station_staff, organisation_id=world.care_home_id)
        plan_id = proposed_plan(session, rid).id
    app = create_app(sqlite_db)
    app.state.clock = lambda: NOW
    with TestClient(app) as client:
        staff = bearer(sqlite_db, "home_staff")
        # when they activate it, or accept it into work, both are refused as no clinician's
        for path in (f"/api/care-plans/{plan_id}/activate", f"/api/care/care-plans/{plan_id}/accept"):
            response = client.post(path, json={"by": "王医生"}, headers=staff)
            assert response.status_code == 403, (path, response.text)
            assert response.json()["code"] == "access.clinician"
        # while the contracted doctor activates it
        doctor = bearer(sqlite_db, "dr_wang")
        assert (
            client.post(
                f"/api/care-plans/{plan_id}/activate", json={"by": "王医生"}, headers=doctor
            ).status_code
            == 200
        )
