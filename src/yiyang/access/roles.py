"""The roles people hold in yiyang, with their labels and how their data scope is drawn.

A staff role is held within an organisation and, where the role is jurisdictional, over an area
(a grid worker's grid, an officer's street or district). Residents and family members hold no
organisation: a resident is linked to their own registry row, a family member acts only for the
residents who authorised them (``resident_authorisation``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    family_doctor = "family_doctor"
    nurse = "nurse"
    health_manager = "health_manager"
    grid_worker = "grid_worker"
    station_staff = "station_staff"
    social_worker = "social_worker"
    volunteer = "volunteer"
    civil_affairs_officer = "civil_affairs_officer"
    health_officer = "health_officer"
    district_admin = "district_admin"
    resident = "resident"
    family_member = "family_member"


class Audience(enum.StrEnum):
    staff = "staff"  # works for an organisation
    public = "public"  # a resident or someone acting for one


class AreaScope(enum.StrEnum):
    required = "required"  # jurisdictional: the role means nothing without its area
    optional = "optional"  # a team's or station's service area, when it has one
    none = "none"  # scope comes from relationships (contracts, pairings, authorisations)


@dataclass(frozen=True, slots=True)
class RoleInfo:
    role: Role
    zh: str
    en: str
    audience: Audience
    area_scope: AreaScope

    @property
    def label(self) -> str:
        return f"{self.zh} ({self.en})"


ROLES: dict[Role, RoleInfo] = {
    info.role: info
    for info in (
        RoleInfo(Role.family_doctor, "家庭医生", "family doctor", Audience.staff, AreaScope.optional),
        RoleInfo(Role.nurse, "护士", "nurse", Audience.staff, AreaScope.optional),
        RoleInfo(Role.health_manager, "健康管理师", "health manager", Audience.staff, AreaScope.optional),
        RoleInfo(Role.grid_worker, "网格员", "grid worker", Audience.staff, AreaScope.required),
        RoleInfo(
            Role.station_staff,
            "驿站工作人员",
            "elderly-care station staff",
            Audience.staff,
            AreaScope.optional,
        ),
        RoleInfo(
            Role.social_worker,
            "社会组织工作人员",
            "social-organisation worker",
            Audience.staff,
            AreaScope.optional,
        ),
        RoleInfo(Role.volunteer, "志愿者", "volunteer", Audience.staff, AreaScope.none),
        RoleInfo(
            Role.civil_affairs_officer,
            "民政工作人员",
            "civil-affairs officer",
            Audience.staff,
            AreaScope.required,
        ),
        RoleInfo(Role.health_officer, "卫健工作人员", "health officer", Audience.staff, AreaScope.required),
        # An administrator without an area administers the whole deployment (the first-run account).
        RoleInfo(
            Role.district_admin, "区级管理员", "district administrator", Audience.staff, AreaScope.optional
        ),
        RoleInfo(Role.resident, "居民", "resident", Audience.public, AreaScope.none),
        RoleInfo(Role.family_member, "家属", "family member", Audience.public, AreaScope.none),
    )
}

ADMIN_ROLE = Role.district_admin
# A family-doctor team's clinicians (签约团队): who accepts care plans and sets a resident's thresholds.
CLINICAL_TEAM_ROLES = frozenset({Role.family_doctor, Role.nurse, Role.health_manager})


def role_info(role: Role | str) -> RoleInfo:
    return ROLES[Role(role)]
