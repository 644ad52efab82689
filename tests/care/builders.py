"""A small district for the care tests: a centre, a hospital, a family-doctor team, staff, residents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from yiyang.access import service as access
from yiyang.access.actor import Actor, CredentialKind, system_actor
from yiyang.access.roles import Role
from yiyang.care import contracts
from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.residents.models import Condition, Feed, LinkMethod, Resident, SourceRecord

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 09:00 in Beijing, Monday 2 March 2026
PASSWORD = "correct-horse-battery"


@dataclass
class World:
    district_id: int
    community_id: int
    other_community_id: int
    grid_id: int
    centre_id: int
    hospital_id: int
    care_home_id: int
    team_id: int
    other_team_id: int
    admin_id: int
    doctor_id: int
    lead_id: int
    other_doctor_id: int
    grid_worker_id: int


def _user(session: Session, username: str, role: Role, **grant: int | None) -> int:
    user = access.create_user(session, username, password=PASSWORD, display_name=username)
    access.grant_role(session, user, role, **grant)
    return user.id


def make_world(database: Database, panel_limit: int = 3) -> World:
    with database.unit_of_work() as session:
        district = Area(level=AreaLevel.district, code="110108", name="海淀区", path="110108")
        session.add(district)
        session.flush()
        community = Area(
            level=AreaLevel.community, code="110108001001", name="甲社区", parent_id=district.id,
            path="110108/110108001001",
        )  # fmt: skip
        other = Area(
            level=AreaLevel.community, code="110108001002", name="乙社区", parent_id=district.id,
            path="110108/110108001002",
        )  # fmt: skip
        session.add_all([community, other])
        session.flush()
        grid = Area(
            level=AreaLevel.grid, code="110108001001-G1", name="一网格", parent_id=community.id,
            path="110108/110108001001/G1",
        )  # fmt: skip
        session.add(grid)
        orgs = {
            "centre": Organisation(code="HC-1", name="甲社区卫生服务中心", kind=OrganisationKind.health_centre, area_id=district.id),
            "hospital": Organisation(code="H-1", name="区医院", kind=OrganisationKind.hospital, area_id=district.id),
            "home": Organisation(code="CH-1", name="康乐养老院", kind=OrganisationKind.elderly_care_institution,
                                 area_id=community.id),
        }  # fmt: skip
        session.add_all(orgs.values())
        session.flush()
        admin_id = _user(session, "admin", Role.district_admin)
        admin = load(session, admin_id)
        team = contracts.create_team(
            session, admin, code="FDT-1", name="王医生团队", health_centre_id=orgs["centre"].id,
            panel_limit=panel_limit, now=NOW,
        )  # fmt: skip
        other_team = contracts.create_team(
            session,
            admin,
            code="FDT-2",
            name="李医生团队",
            health_centre_id=orgs["centre"].id,
            panel_limit=10,
            now=NOW,
        )
        team_id, other_team_id = team.organisation_id, other_team.organisation_id
        doctor_id = _user(session, "dr_wang", Role.family_doctor, organisation_id=team_id)
        lead_id = _user(session, "lead_zhao", Role.family_doctor, organisation_id=team_id)
        team.lead_user_id = lead_id
        other_doctor_id = _user(session, "dr_li", Role.family_doctor, organisation_id=other_team_id)
        grid_worker_id = _user(session, "grid_1", Role.grid_worker, area_id=grid.id)
        _user(session, "hospital_doc", Role.family_doctor, organisation_id=orgs["hospital"].id)
        return World(
            district.id, community.id, other.id, grid.id, orgs["centre"].id, orgs["hospital"].id, orgs["home"].id,
            team_id, other_team_id, admin_id, doctor_id, lead_id, other_doctor_id, grid_worker_id,
        )  # fmt: skip


def load(session: Session, user_id: int) -> Actor:
    return access.load_actor(session, user_id, NOW)


def actor_named(session: Session, username: str) -> Actor:
    from sqlalchemy import select

    from yiyang.access.models import User

    return load(session, session.scalar(select(User.id).where(User.username == username)))


def bearer(database: Database, username: str) -> dict[str, str]:
    from sqlalchemy import select

    from yiyang.access.models import User

    with database.unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username))
        issued = access.issue_credential(session, user, CredentialKind.bearer, dt.timedelta(days=400), NOW)
    return {"Authorization": f"Bearer {issued.secret}"}


def add_resident(
    session: Session, world: World, *, born: dt.date = dt.date(1950, 5, 1), conditions: tuple[str, ...] = (),
    community_id: int | None = None, grid: bool = True, name: str = "张桂芳",
) -> int:  # fmt: skip
    resident = Resident(
        name=name, name_pinyin="zhang gui fang", sex="F", birth_date=born,
        community_id=community_id or world.community_id, grid_id=world.grid_id if grid else None,
    )  # fmt: skip
    session.add(resident)
    session.flush()
    if conditions:
        record = SourceRecord(
            feed=Feed.staff, source_key=f"care-test-{resident.id}", resident_id=resident.id, observed_at=NOW,
            content_hash="0" * 32, payload={}, link_method=LinkMethod.new,
        )  # fmt: skip
        session.add(record)
        session.flush()
        for code in conditions:
            session.add(
                Condition(
                    resident_id=resident.id,
                    code=code,
                    display=code,
                    first_source_record_id=record.id,
                    last_source_record_id=record.id,
                    first_seen=NOW.date(),
                    last_seen=NOW.date(),
                )  # fmt: skip
            )
        session.flush()
    return resident.id


def system() -> Actor:
    return system_actor("care-test")
