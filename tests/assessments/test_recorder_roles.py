"""Recording an assessment is a clinician's act (docs/tiers.md, "Capturing assessments"): a GB/T 42195
result becomes a ``staff`` source record, sets the registry's capability level and re-tiers the
resident. Only the family-doctor team's roles record, and their team grant's scope and the
resident's consent decide; anyone else is refused (403, audited) and nothing is stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.access.world import World, build_world
from tests.signed_in import bearer_for
from tests.tiers.builders import capability_answers
from yiyang.access import service as access
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.assessments.models import Assessment
from yiyang.assessments.service import RECORDER_REFUSED
from yiyang.db import Database
from yiyang.geo.models import Organisation, OrganisationKind
from yiyang.residents.models import Feed, Resident, SourceRecord
from yiyang.tiers.models import ResidentTier


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return build_world(sqlite_db)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def capability_form() -> dict[str, object]:
    """A GB/T 42195 form scoring 完全失能 (total disability): it would put the resident in red."""
    return {
        "instrument": "gbt42195", "answers": capability_answers("total"), "assessor": "某评估员",
        "assessed_at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(),
    }  # fmt: skip


def stored_for(world: World, resident_id: int) -> tuple[int, int, str | None, bool]:
    """Assessments, staff source records, the registry's capability level, and whether a tier exists."""
    with world.database.unit_of_work() as session:
        assessments = session.scalar(
            select(func.count()).select_from(Assessment).where(Assessment.resident_id == resident_id)
        )
        staff_records = session.scalar(
            select(func.count()).select_from(SourceRecord).where(
                SourceRecord.resident_id == resident_id, SourceRecord.feed == Feed.staff
            )
        )  # fmt: skip
        resident = session.get(Resident, resident_id)
        assert resident is not None
        return (
            assessments,
            staff_records,
            resident.capability_level,
            session.get(ResidentTier, resident_id) is not None,
        )


def denials_of(world: World, user_id: int, resident_id: int) -> list[str | None]:
    with world.database.unit_of_work() as session:
        return list(
            session.scalars(
                select(AuditEvent.reason).where(
                    AuditEvent.user_id == user_id, AuditEvent.resident_id == resident_id,
                    AuditEvent.resource_type == "assessment", AuditEvent.outcome == AuditOutcome.denied,
                )
            )
        )  # fmt: skip


@pytest.mark.parametrize(
    "role", [Role.resident, Role.family_member, Role.station_staff, Role.health_officer, Role.grid_worker]
)
def test_a_role_outside_the_clinical_team_may_not_record_an_assessment(
    client: TestClient, world: World, role: Role
) -> None:
    # given a resident in scope of every role, with her consent to everyone
    resident_id = world.residents["in_given"]
    before = stored_for(world, resident_id)
    # when the resident herself, her family, station staff, a health officer or a grid worker
    # records a capability assessment of her
    response = client.post(
        f"/api/residents/{resident_id}/assessments", json=capability_form(), headers=world.token(role)
    )
    # then it is refused as no clinician's
    assert response.status_code == 403, response.text
    assert response.json()["code"] == RECORDER_REFUSED == "assessment.recorder.role"
    # and nothing was stored: no assessment, no staff source record, no level, no tier
    assert stored_for(world, resident_id) == before == (0, 0, None, False)
    # and the refusal is audited
    user = "resident:in_given" if role is Role.resident else role.value
    assert denials_of(world, world.users[user], resident_id) == [RECORDER_REFUSED]


@pytest.mark.parametrize("role", [Role.family_doctor, Role.nurse, Role.health_manager])
def test_the_contracted_team_records_it(client: TestClient, world: World, role: Role) -> None:
    resident_id = world.residents["in_given"]
    response = client.post(
        f"/api/residents/{resident_id}/assessments", json=capability_form(), headers=world.token(role)
    )
    assert response.status_code == 201, response.text
    assert response.json()["recorded_by"] == role.value
    assessments, staff_records, level, tiered = stored_for(world, resident_id)
    assert (assessments, staff_records, level, tiered) == (1, 1, "total", True)


def test_a_family_member_who_is_a_nurse_elsewhere_records_only_as_that_nurse(
    client: TestClient, world: World
) -> None:
    # given the resident's authorised family member, who is also a nurse of a team with no contract
    # with her
    resident_id = world.residents["in_given"]
    with world.database.unit_of_work() as session:
        other_team = Organisation(
            code="T9", name="别的团队", kind=OrganisationKind.family_doctor_team, area_id=world.areas["S2"]
        )
        session.add(other_team)
        session.flush()
        family = session.get(access.User, world.users[Role.family_member.value])
        assert family is not None
        access.grant_role(session, family, Role.nurse, organisation_id=other_team.id)
    headers = bearer_for(world.database, world.users[Role.family_member.value])
    # when she records a capability assessment of her elder
    response = client.post(
        f"/api/residents/{resident_id}/assessments", json=capability_form(), headers=headers
    )
    # then her nurse's grant decides, which does not reach the elder: refused, nothing stored
    assert response.status_code == 403 and response.json()["code"] == "access.scope", response.text
    assert stored_for(world, resident_id) == (0, 0, None, False)
