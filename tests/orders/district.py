"""A small district for order and time-bank tests: two streets, three communities, two grids,
stations, a family-doctor team, a social organisation, residents with different facts, and people."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from yiyang.access import service as access
from yiyang.access.actor import Actor
from yiyang.access.models import User
from yiyang.access.roles import Role
from yiyang.care.orders import service as orders
from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.residents.models import Resident
from yiyang.tiers.models import ResidentTier
from yiyang.tiers.rules import Tier

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)  # Tuesday 10:00 China time
PASSWORD = "correct-horse-battery"


@dataclass
class District:
    district: int
    street_1: int
    street_2: int
    community_1: int
    community_2: int
    community_3: int
    grid_1a: int
    grid_1b: int
    station_a: int  # organisation ids
    station_b: int
    team: int
    social: int
    elder: int  # 82, 特困, grid 1a
    younger: int  # 56, community 1
    disabled: int  # 76, 低保, severe capability loss, red tier, grid 1b
    far: int  # 81, community 3 (the other street)
    nowhere: int  # 86, no community known
    admin: int  # user ids
    staff_a: int
    staff_b: int
    doctor: int
    elder_user: int
    family: int
    stranger: int  # a family member nobody authorised
    volunteer_1: int
    volunteer_2: int
    officer: int = 0  # a civil-affairs officer over the district: orders for elders in its area


def build(database: Database) -> District:
    with database.unit_of_work() as session:
        d = _area(session, AreaLevel.district, "110108", "海淀区", None)
        s1 = _area(session, AreaLevel.street, "110108001", "第一街道", d)
        s2 = _area(session, AreaLevel.street, "110108002", "第二街道", d)
        c1 = _area(session, AreaLevel.community, "110108001001", "甲社区", s1)
        c2 = _area(session, AreaLevel.community, "110108001002", "乙社区", s1)
        c3 = _area(session, AreaLevel.community, "110108002001", "丙社区", s2)
        g1a = _area(session, AreaLevel.grid, "G1A", "甲一网格", c1)
        g1b = _area(session, AreaLevel.grid, "G1B", "甲二网格", c1)
        station_a = _org(session, "ST-A", "甲社区养老驿站", OrganisationKind.elderly_care_station, c1)
        station_b = _org(session, "ST-B", "乙社区养老驿站", OrganisationKind.elderly_care_station, c2)
        team = _org(session, "FDT-1", "第一家庭医生团队", OrganisationKind.family_doctor_team, s1)
        social = _org(session, "SO-1", "银龄互助社", OrganisationKind.social_organisation, d)
        elder = _resident(session, "张老", dt.date(1944, 3, 2), c1, g1a, tekun=True)
        younger = _resident(session, "李中", dt.date(1970, 6, 1), c1, None)
        disabled = _resident(session, "王失能", dt.date(1950, 1, 9), c1, g1b, dibao=True, capability="severe")
        session.add(ResidentTier(resident_id=disabled.id, tier=Tier.red, reasons=[], digest="x"))
        far = _resident(session, "赵远", dt.date(1945, 2, 2), c3, None)
        nowhere = _resident(session, "孙无", dt.date(1940, 2, 2), None, None)
        admin = _user(session, "admin", Role.district_admin)
        staff_a = _user(session, "staff.a", Role.station_staff, organisation_id=station_a.id)
        staff_b = _user(session, "staff.b", Role.station_staff, organisation_id=station_b.id)
        doctor = _user(session, "doctor", Role.family_doctor, organisation_id=team.id)
        elder_user = access.create_user(session, "elder.zhang", password=PASSWORD, resident_id=elder.id)
        access.grant_role(session, elder_user, Role.resident)
        family = _user(session, "family.zhang", Role.family_member)
        family_user = session.get(User, family)
        assert family_user is not None
        access.authorise_family_member(
            session, elder.id, family_user, "子女", valid_from=NOW - dt.timedelta(days=1)
        )
        stranger = _user(session, "stranger", Role.family_member)
        volunteer_1 = _user(session, "volunteer.1", Role.volunteer)
        volunteer_2 = _user(session, "volunteer.2", Role.volunteer)
        officer = _user(session, "officer", Role.civil_affairs_officer, area_id=d.id)
        return District(
            d.id, s1.id, s2.id, c1.id, c2.id, c3.id, g1a.id, g1b.id, station_a.id, station_b.id, team.id, social.id,
            elder.id, younger.id, disabled.id, far.id, nowhere.id,
            admin, staff_a, staff_b, doctor, elder_user.id, family, stranger, volunteer_1, volunteer_2, officer,
        )  # fmt: skip


def permit_the_social_class(database: Database, resident_id: int) -> None:
    """The elder's explicit permit for the social recipient class (volunteers and social
    organisations) to see who they are and the services they get: nothing is implied for it."""
    from yiyang.access.actor import system_actor
    from yiyang.access.consent import record_consent
    from yiyang.access.consent_models import ConsentDecision
    from yiyang.access.policy import DataCategory, Purpose, RecipientClass

    with database.unit_of_work() as session:
        for category in (DataCategory.identity, DataCategory.care_services):
            record_consent(
                session, system_actor("orders-test"), resident_id, category=category,
                recipient_class=RecipientClass.social, purpose=Purpose.care, decision=ConsentDecision.permit,
                now=NOW - dt.timedelta(days=1), valid_from=NOW - dt.timedelta(days=1),
            )  # fmt: skip


def register_providers(database: Database, place: District, *, capacity: int = 5) -> dict[str, int]:
    """Station A and B (meals, bathing, home care beds, respite), the team (nursing, rehab)."""
    with database.unit_of_work() as session:
        a = orders.register_provider(
            session,
            orders.ProviderRequest(
                place.station_a, ("meal_delivery", "personal_care", "home_bed_care", "respite_care", "training"),
                (place.street_1,), capacity,
            ),
            NOW,
        )  # fmt: skip
        b = orders.register_provider(
            session,
            orders.ProviderRequest(
                place.station_b,
                ("meal_delivery", "personal_care", "home_bed_care"),
                (place.street_1,),
                capacity,
            ),
            NOW,
        )
        team = orders.register_provider(
            session,
            orders.ProviderRequest(
                place.team, ("nursing", "rehabilitation", "training"), (place.street_1,), capacity
            ),
            NOW,
        )
        return {"a": a.id, "b": b.id, "team": team.id}


def actor(session: Session, user_id: int, now: dt.datetime = NOW) -> Actor:
    return access.load_actor(session, user_id, now)


def _area(session: Session, level: AreaLevel, code: str, name: str, parent: Area | None) -> Area:
    area = Area(
        level=level, code=code, name=name, parent_id=parent.id if parent else None,
        path=f"{parent.path}/{code}" if parent else code,
    )  # fmt: skip
    session.add(area)
    session.flush()
    return area


def _org(session: Session, code: str, name: str, kind: OrganisationKind, area: Area) -> Organisation:
    organisation = Organisation(code=code, name=name, kind=kind, area_id=area.id)
    session.add(organisation)
    session.flush()
    return organisation


def _resident(
    session: Session,
    name: str,
    born: dt.date,
    community: Area | None,
    grid: Area | None,
    *,
    tekun: bool = False,
    dibao: bool = False,
    capability: str | None = None,
) -> Resident:
    resident = Resident(
        name=name, name_pinyin=name, birth_date=born, community_id=community.id if community else None,
        grid_id=grid.id if grid else None, tekun=tekun, dibao=dibao, capability_level=capability,
    )  # fmt: skip
    session.add(resident)
    session.flush()
    return resident


def _user(session: Session, username: str, role: Role, **grant: int | None) -> int:
    user = access.create_user(session, username, password=PASSWORD)
    access.grant_role(session, user, role, **grant)
    return user.id


def deny_care_services(database: Database, resident_id: int, recipient_class: str, now: dt.datetime) -> None:
    """The elder's refusal, from ``now``, of care-services data to a recipient class."""
    from yiyang.access.actor import system_actor
    from yiyang.access.consent import record_consent
    from yiyang.access.consent_models import ConsentDecision
    from yiyang.access.policy import DataCategory, Purpose, RecipientClass

    with database.unit_of_work() as session:
        record_consent(
            session, system_actor("orders-test"), resident_id, category=DataCategory.care_services,
            recipient_class=RecipientClass(recipient_class), purpose=Purpose.care, decision=ConsentDecision.deny,
            now=now,
        )  # fmt: skip
