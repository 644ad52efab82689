"""Acting as signed-in people in API and page tests.

``sign_in_as_clinician(client, database)`` makes the test client a family doctor whose team is
contracted with every resident (contracts are added for new residents before each request) and
who also keeps the registry (a district administrator without an area): the broad access the
domain tests of the registry, FHIR, tiers and assessments had before access control, now drawn
through the real policy. ``bearer_for`` issues a token for any user without a password.
"""

from __future__ import annotations

import datetime as dt

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from yiyang.access import service
from yiyang.access.actor import CredentialKind
from yiyang.access.roles import Role
from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
TEAM_CODE = "TEST-FD-TEAM"


def bearer_for(database: Database, user_id: int, *, ttl_hours: int = 24 * 365 * 100) -> dict[str, str]:
    """An Authorization header for this user, issued as of 2000 and valid for a century."""
    with database.unit_of_work() as session:
        user = session.get(service.User, user_id)
        issued = service.issue_credential(
            session, user, CredentialKind.bearer, dt.timedelta(hours=ttl_hours), LONG_AGO
        )
        return {"Authorization": f"Bearer {issued.secret}"}


def clinical_team(database: Database) -> int:
    """A family-doctor team organisation (placed in an area of its own)."""
    with database.unit_of_work() as session:
        team = session.scalar(select(Organisation).where(Organisation.code == TEAM_CODE))
        if team is not None:
            return team.id
        area = Area(
            level=AreaLevel.district, code="TEST-TEAM-AREA", name="测试团队辖区", path="TEST-TEAM-AREA"
        )
        session.add(area)
        session.flush()
        team = Organisation(
            code=TEAM_CODE, name="测试家庭医生团队", kind=OrganisationKind.family_doctor_team, area_id=area.id
        )
        session.add(team)
        session.flush()
        return team.id


def contract_everyone(database: Database, team_id: int) -> None:
    """Every resident without one gets a contract with the test team."""
    with database.unit_of_work() as session:
        session.execute(
            text(
                "INSERT INTO resident_relationship "
                "(resident_id, kind, organisation_id, valid_from, source_type, source_id, created_at) "
                "SELECT r.id, 'contract', :team, :start, 'test_contract', r.id, :start FROM resident r "
                "WHERE NOT EXISTS (SELECT 1 FROM resident_relationship x "
                "WHERE x.resident_id = r.id AND x.organisation_id = :team)"
            ),
            {"team": team_id, "start": LONG_AGO.replace(tzinfo=None)},
        )


def clinician(database: Database, username: str = "clinician") -> int:
    """A family doctor of the test team who also keeps the registry; returns the user id."""
    team_id = clinical_team(database)
    with database.unit_of_work() as session:
        user = service.create_user(session, username)
        service.grant_role(session, user, Role.family_doctor, organisation_id=team_id)
        service.grant_role(session, user, Role.district_admin)
        return user.id


def sign_in_as_clinician(client: TestClient, database: Database, username: str = "clinician") -> int:
    """The client acts as a contracted family doctor who also keeps the registry; returns the user id."""
    team_id = clinical_team(database)
    user_id = clinician(database, username)
    client.headers.update(bearer_for(database, user_id))

    def before_request(_request: httpx.Request) -> None:
        contract_everyone(database, team_id)

    client.event_hooks["request"].append(before_request)
    return user_id
