"""A small district for scope and consent tests: two streets, one user per role, four residents.

Street S1 (community C1, grid G1) and street S2 (community C2, grid G2). Residents:

- ``in_given`` and ``in_withdrawn`` live in G1 and have every relationship (contract with team
  T1, service by station ST1 and by social organisation SG1, pairing with the volunteer, the family member authorised, each is
  a resident user's own record): in scope of every role.
- ``out_given`` and ``out_withdrawn`` live in G2 under S2 with no relationship: out of scope of
  every role.
- ``*_given``: a permit is in force for every recipient class, category and purpose;
  ``*_withdrawn``: the permit was superseded by a deny (the resident withdrew consent).

Users: one per role (officers and the administrator over S1, the grid worker over G1); two
resident users (one per in-scope resident). ``token(role, target)`` gives the header to use.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from yiyang.access import service
from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import RelationshipKind, ResidentRelationship
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.db import Database, utcnow
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.residents.models import Resident

from ..signed_in import bearer_for

RESIDENTS = ("in_given", "in_withdrawn", "out_given", "out_withdrawn")
IN_SCOPE = ("in_given", "in_withdrawn")


@dataclass
class World:
    database: Database
    residents: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    teams: dict[str, int] = field(default_factory=dict)
    areas: dict[str, int] = field(default_factory=dict)

    def token(self, role: Role, target: str | None = None) -> dict[str, str]:
        if role is Role.resident:
            return self.headers["resident:in_withdrawn" if target == "in_withdrawn" else "resident:in_given"]
        return self.headers[role.value]


def _area(session, level: AreaLevel, code: str, parent: Area | None) -> Area:  # type: ignore[no-untyped-def]
    area = Area(
        level=level, code=code, name=code, parent_id=parent.id if parent else None,
        path=f"{parent.path}/{code}" if parent else code,
    )  # fmt: skip
    session.add(area)
    session.flush()
    return area


def build_world(database: Database, now: dt.datetime | None = None) -> World:
    now = now or utcnow()
    since = now - dt.timedelta(days=30)
    world = World(database)
    with database.unit_of_work() as session:
        district = _area(session, AreaLevel.district, "D", None)
        s1 = _area(session, AreaLevel.street, "S1", district)
        c1 = _area(session, AreaLevel.community, "C1", s1)
        g1 = _area(session, AreaLevel.grid, "G1", c1)
        s2 = _area(session, AreaLevel.street, "S2", district)
        c2 = _area(session, AreaLevel.community, "C2", s2)
        g2 = _area(session, AreaLevel.grid, "G2", c2)
        world.areas = {"D": district.id, "S1": s1.id, "G1": g1.id, "S2": s2.id}
        team = Organisation(
            code="T1", name="家医团队一", kind=OrganisationKind.family_doctor_team, area_id=c1.id
        )
        station = Organisation(
            code="ST1", name="驿站一", kind=OrganisationKind.elderly_care_station, area_id=c1.id
        )
        office = Organisation(code="SO1", name="街道办", kind=OrganisationKind.street_office, area_id=s1.id)
        social = Organisation(
            code="SG1", name="银龄互助社", kind=OrganisationKind.social_organisation, area_id=s1.id
        )
        session.add_all([team, station, office, social])
        session.flush()
        world.teams = {"T1": team.id, "ST1": station.id, "SG1": social.id}
        for index, key in enumerate(RESIDENTS):
            inside = key.startswith("in_")
            resident = Resident(
                name=f"测试{index}", name_pinyin=f"ce shi {index}", sex="F", birth_date=dt.date(1945, 1, 1 + index),
                community_id=(c1 if inside else c2).id, grid_id=(g1 if inside else g2).id,
            )  # fmt: skip
            session.add(resident)
            session.flush()
            world.residents[key] = resident.id

        def user(name: str, role: Role, **grant: int | None) -> service.User:
            account = service.create_user(session, name)
            service.grant_role(session, account, role, **grant)
            world.users[name] = account.id
            return account

        for role in (Role.family_doctor, Role.nurse, Role.health_manager):
            user(role.value, role, organisation_id=team.id)
        user(Role.station_staff.value, Role.station_staff, organisation_id=station.id)
        user(Role.social_worker.value, Role.social_worker, organisation_id=social.id)
        volunteer = user(Role.volunteer.value, Role.volunteer)
        user(Role.grid_worker.value, Role.grid_worker, organisation_id=office.id, area_id=g1.id)
        user(Role.civil_affairs_officer.value, Role.civil_affairs_officer, area_id=s1.id)
        user(Role.health_officer.value, Role.health_officer, area_id=s1.id)
        user(Role.district_admin.value, Role.district_admin, area_id=s1.id)
        family = user(Role.family_member.value, Role.family_member)
        for key in IN_SCOPE:
            resident_id = world.residents[key]
            own = service.create_user(session, f"resident-{key}", resident_id=resident_id)
            service.grant_role(session, own, Role.resident)
            world.users[f"resident:{key}"] = own.id
            service.authorise_family_member(session, resident_id, family, "子女", valid_from=since)
            for kind, who in (
                (RelationshipKind.contract, {"organisation_id": team.id}),
                (RelationshipKind.service, {"organisation_id": station.id}),
                (RelationshipKind.service, {"organisation_id": social.id}),
                (RelationshipKind.pairing, {"user_id": volunteer.id}),
            ):
                session.add(ResidentRelationship(
                    resident_id=resident_id, kind=kind, valid_from=since, source_type="test", source_id=resident_id,
                    **who,
                ))  # fmt: skip
        session.flush()
        system = system_actor("test-consent")
        for key, resident_id in world.residents.items():
            for recipient in (RecipientClass.health, RecipientClass.civil_affairs, RecipientClass.social):
                for category in DataCategory:
                    for purpose in Purpose:
                        values = {"category": category, "recipient_class": recipient, "purpose": purpose}
                        record_consent(session, system, resident_id, decision=ConsentDecision.permit,
                                       now=since, **values)  # fmt: skip
                        if key.endswith("withdrawn"):
                            record_consent(session, system, resident_id, decision=ConsentDecision.deny,
                                           now=since + dt.timedelta(days=1), **values)  # fmt: skip
    for name, user_id in world.users.items():
        world.headers[name] = bearer_for(database, user_id)
    return world
