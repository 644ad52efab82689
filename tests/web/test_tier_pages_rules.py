"""The staff pages of tiers and assessments follow the API's rules (docs/tiers.md):

- a tier reason drawn from an alert, and what a care plan adds for it, are sensor data: the profile's
  tier panel and the ``/tiers?community=`` list show them only to readers who may see sensor data,
  and the tier colour to every clinical reader;
- only the family-doctor team records an assessment (``assessments.service.as_recorder``): the form
  and its posting are refused to anyone else, audited, and nothing is stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.access.world import World
from tests.signed_in import bearer_for
from tests.tiers.builders import capability_answers
from tests.tiers.test_sensor_reasons import deny_sensor_to_the_health_side, sensor_reads, world_with_a_fall
from yiyang.access import service as access
from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.assessments.models import Assessment
from yiyang.assessments.service import RECORDER_REFUSED
from yiyang.db import CHINA_TZ, Database
from yiyang.geo.models import Organisation, OrganisationKind
from yiyang.residents.models import Feed, SourceRecord

# What the fall's reason and the plan's answer to it read as on a page (zh-CN, the default).
FALL_WORDS = ("近期告警", "跌倒", "复核近期告警并回访")
REFUSED_SENSOR = ["health_officer", "family_doctor_without_sensor_consent"]


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return world_with_a_fall(sqlite_db)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def reader_refused_sensor(world: World, reader: str) -> Role:
    """A health officer (no sensor category for care), or her family doctor after she denied the
    health side her sensor data."""
    if reader == "health_officer":
        return Role.health_officer
    deny_sensor_to_the_health_side(world)
    return Role.family_doctor


# -- 1. sensor data in the tier panel and the list by tier ---------------------------------------


@pytest.mark.parametrize("reader", REFUSED_SENSOR)
def test_profile_tier_panel_shows_the_tier_but_not_the_fall_to_a_reader_refused_sensor_data(
    client: TestClient, world: World, reader: str
) -> None:
    # given a resident yellow for a recent fall, and a reader refused her sensor data
    role = reader_refused_sensor(world, reader)
    resident_id = world.residents["in_given"]
    # when the reader opens her profile
    page = client.get(f"/residents/{resident_id}", headers=world.token(role))
    # then the tier panel shows her yellow, and her plan, without the fall or the plan's answer to it
    assert page.status_code == 200, page.text
    assert 'id="tier"' in page.text and "tier tier-yellow" in page.text
    assert "远程监测" in page.text or "remote" in page.text.lower()
    for word in FALL_WORDS:
        assert word not in page.text, word
    # and no sensor read is recorded for the reader, as none was shown
    assert sensor_reads(world, role.value) == []


@pytest.mark.parametrize("reader", REFUSED_SENSOR)
def test_tiers_community_page_lists_her_yellow_without_the_fall_to_a_reader_refused_sensor_data(
    client: TestClient, world: World, reader: str
) -> None:
    # given the same resident and reader
    role = reader_refused_sensor(world, reader)
    # when the reader lists her community by tier
    page = client.get("/tiers?community=C1", headers=world.token(role))
    # then she is listed (by name), yellow, without the reason naming the fall
    assert page.status_code == 200, page.text
    assert "测试0" in page.text and "tier tier-yellow" in page.text
    for word in FALL_WORDS:
        assert word not in page.text, word


def test_her_family_doctor_with_her_consent_sees_the_fall_on_both_pages_and_the_read_is_audited(
    client: TestClient, world: World
) -> None:
    # given the contracted family doctor, whom the resident lets see her sensor data
    headers = world.token(Role.family_doctor)
    resident_id = world.residents["in_given"]
    # when the doctor opens her profile and the community's list by tier
    profile = client.get(f"/residents/{resident_id}", headers=headers)
    listing = client.get("/tiers?community=C1", headers=headers)
    # then the fall is named on both, and the plan's review of it on the profile
    assert profile.status_code == listing.status_code == 200
    assert "近期告警" in profile.text and "跌倒" in profile.text and "复核近期告警并回访" in profile.text
    assert "近期告警" in listing.text and "跌倒" in listing.text
    # and showing it on the profile was recorded as a read of sensor data
    assert {"tier", "care_plan"} <= set(sensor_reads(world, Role.family_doctor.value))


# -- 2. who records an assessment ---------------------------------------------------------------


def capability_form() -> dict[str, str]:
    """A posted GB/T 42195 form scoring 完全失能 (total disability), an hour ago in China time."""
    assessed_at = dt.datetime.now(CHINA_TZ) - dt.timedelta(hours=1)
    answers = {code: str(value) for code, value in capability_answers("total").items()}
    return {**answers, "assessed_at": assessed_at.strftime("%Y-%m-%dT%H:%M"), "assessor": "某评估员"}


def stored_for(world: World, resident_id: int) -> tuple[int, int]:
    """Assessments and staff source records of the resident."""
    with world.database.unit_of_work() as session:
        assessments = session.scalar(
            select(func.count()).select_from(Assessment).where(Assessment.resident_id == resident_id)
        )
        staff_records = session.scalar(
            select(func.count()).select_from(SourceRecord).where(
                SourceRecord.resident_id == resident_id, SourceRecord.feed == Feed.staff
            )
        )  # fmt: skip
        return assessments or 0, staff_records or 0


def recorder_denials(world: World, user: str, resident_id: int) -> list[str | None]:
    with world.database.unit_of_work() as session:
        return list(
            session.scalars(
                select(AuditEvent.reason).where(
                    AuditEvent.user_id == world.users[user], AuditEvent.resident_id == resident_id,
                    AuditEvent.resource_type == "assessment", AuditEvent.outcome == AuditOutcome.denied,
                )
            )
        )  # fmt: skip


OUTSIDE_THE_TEAM = [Role.resident, Role.family_member, Role.station_staff, Role.health_officer]


@pytest.mark.parametrize("role", OUTSIDE_THE_TEAM)
def test_posting_an_assessment_page_is_refused_outside_the_clinical_team(
    client: TestClient, world: World, role: Role
) -> None:
    # given a resident in scope of every role, with her consent to everyone
    resident_id = world.residents["in_given"]
    # when she herself, her family, station staff or a health officer posts an assessment form
    page = client.post(
        f"/residents/{resident_id}/assessments/new?instrument=gbt42195", data=capability_form(),
        headers=world.token(role),
    )  # fmt: skip
    # then the refusal page answers, nothing is stored, and the refusal is audited
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "只有签约团队的医生、护士或健康管理师可以录入评估" in page.text
    assert stored_for(world, resident_id) == (0, 0)
    user = "resident:in_given" if role is Role.resident else role.value
    assert recorder_denials(world, user, resident_id) == [RECORDER_REFUSED]


@pytest.mark.parametrize("query", ["", "?instrument=gbt42195"])
@pytest.mark.parametrize("role", [Role.resident, Role.family_member])
def test_the_assessment_form_is_refused_outside_the_clinical_team(
    client: TestClient, world: World, role: Role, query: str
) -> None:
    resident_id = world.residents["in_given"]
    page = client.get(f"/residents/{resident_id}/assessments/new{query}", headers=world.token(role))
    assert page.status_code == 403 and "只有签约团队的医生、护士或健康管理师可以录入评估" in page.text
    assert "assessed_at" not in page.text


def test_a_family_member_who_is_a_nurse_elsewhere_records_only_as_that_nurse(
    client: TestClient, world: World
) -> None:
    # given the resident's authorised family member, who is also a nurse of a team with no contract
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
    # when she posts a capability assessment of her elder
    page = client.post(
        f"/residents/{resident_id}/assessments/new?instrument=gbt42195",
        data=capability_form(),
        headers=headers,
    )
    # then her nurse's grant decides, which does not reach the elder: refused, nothing stored
    assert page.status_code == 403
    assert stored_for(world, resident_id) == (0, 0)


def test_the_contracted_nurse_records_through_the_page(client: TestClient, world: World) -> None:
    # given the nurse of the team contracted with the resident
    resident_id = world.residents["in_given"]
    # when she posts the form
    page = client.post(
        f"/residents/{resident_id}/assessments/new?instrument=gbt42195", data=capability_form(),
        headers=world.token(Role.nurse), follow_redirects=False,
    )  # fmt: skip
    # then it is recorded (with its staff source record) and the page goes back to the profile
    assert page.status_code == 303, page.text
    assert page.headers["location"].startswith(f"/residents/{resident_id}")
    assert stored_for(world, resident_id) == (1, 1)


@pytest.mark.parametrize("role", [Role.health_officer, Role.family_member, Role.nurse])
def test_the_profile_offers_the_assessment_form_only_to_the_clinical_team(
    client: TestClient, world: World, role: Role
) -> None:
    # given readers who see the tier panel, of whom only the nurse may record
    resident_id = world.residents["in_given"]
    # when each opens the profile
    page = client.get(f"/residents/{resident_id}", headers=world.token(role))
    # then the panel is there, and the link to the form only for the team
    assert page.status_code == 200 and 'id="tier"' in page.text
    assert (f"/residents/{resident_id}/assessments/new" in page.text) is (role is Role.nurse)
