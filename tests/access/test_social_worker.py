"""A social organisation's people hold a role of their own, carrying the consent class that names
them (social, with volunteers): granting keeps them in it, and migration 0017 moves the
memberships granted before it, on both engines."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session

from yiyang.access import service as access
from yiyang.access.models import RoleMembership
from yiyang.access.policy import SCOPES, Draw, RecipientClass
from yiyang.access.roles import Role
from yiyang.db import Database
from yiyang.errors import Invalid
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.migrate import alembic_config, upgrade


def places(session: Session) -> tuple[int, int]:
    """A community with an elderly-care station and a social organisation: their ids."""
    community = Area(level=AreaLevel.community, code="C1", name="甲社区", path="C1")
    session.add(community)
    session.flush()
    station = Organisation(
        code="ST1", name="甲社区养老驿站", kind=OrganisationKind.elderly_care_station, area_id=community.id
    )
    social = Organisation(
        code="SG1", name="银龄互助社", kind=OrganisationKind.social_organisation, area_id=community.id
    )
    session.add_all([station, social])
    session.flush()
    return station.id, social.id


def test_the_role_is_scoped_like_a_station_and_consented_like_a_volunteer() -> None:
    social, station, volunteer = (
        SCOPES[Role.social_worker],
        SCOPES[Role.station_staff],
        SCOPES[Role.volunteer],
    )
    assert (social.draw, social.recipient) == (Draw.service, RecipientClass.social)
    assert station.draw is Draw.service and volunteer.recipient is RecipientClass.social
    assert social.care < station.care  # minimisation: no clinical, sensor or civil-affairs data


def test_granting_keeps_social_organisations_in_their_role(db: Database) -> None:
    with db.unit_of_work() as session:
        station_id, social_id = places(session)
        user = access.create_user(session, "worker")
        # a social organisation's people are refused the station-staff role there
        with pytest.raises(Invalid) as refused:
            access.grant_role(session, user, Role.station_staff, organisation_id=social_id)
        assert refused.value.code == "role.organisation.kind"
        # and the social-organisation role anywhere but a social organisation
        for elsewhere in (station_id, None):
            with pytest.raises(Invalid) as refused:
                access.grant_role(session, user, Role.social_worker, organisation_id=elsewhere)
            assert refused.value.code == "role.organisation.kind"
        # while each role in its own kind of organisation is granted
        access.grant_role(session, user, Role.social_worker, organisation_id=social_id)
        access.grant_role(session, user, Role.station_staff, organisation_id=station_id)
        roles = session.execute(
            select(RoleMembership.role, RoleMembership.organisation_id).where(
                RoleMembership.user_id == user.id
            )
        ).all()
        assert sorted(roles) == sorted([(Role.social_worker, social_id), (Role.station_staff, station_id)])


def memberships(database: Database) -> list[tuple[str, int | None]]:
    with database.unit_of_work() as session:
        return [
            (str(role), organisation_id)
            for role, organisation_id in session.execute(
                select(RoleMembership.role, RoleMembership.organisation_id).order_by(RoleMembership.id)
            )
        ]


def test_migration_0017_moves_social_organisations_staff_and_back(unmigrated_db: Database) -> None:
    # given memberships granted before 0017: station staff at a station and at a social organisation
    upgrade(unmigrated_db.engine, "0016")
    with unmigrated_db.unit_of_work() as session:
        station_id, social_id = places(session)
        user = access.create_user(session, "worker")
        session.add_all(
            [
                RoleMembership(user_id=user.id, role=Role.station_staff, organisation_id=station_id),
                RoleMembership(user_id=user.id, role=Role.station_staff, organisation_id=social_id),
            ]
        )
    # when the schema is brought up to date, only the social organisation's membership moves
    upgrade(unmigrated_db.engine)
    assert memberships(unmigrated_db) == [("station_staff", station_id), ("social_worker", social_id)]
    # and undoing 0017 puts it back
    config = alembic_config()
    with unmigrated_db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0016")
    assert memberships(unmigrated_db) == [("station_staff", station_id), ("station_staff", social_id)]
