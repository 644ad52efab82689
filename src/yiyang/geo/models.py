"""Areas, households and organisations.

One ``area`` table holds the whole tree (district > street > community > grid) with a
materialised ``path`` of codes, so "everything under this street" is one prefix match.
Codes follow the 12-digit 统计用区划代码 for communities; grids are local codes.
"""

from __future__ import annotations

import enum

from sqlalchemy import ColumnElement, Enum, ForeignKey, Index, String, or_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from yiyang.db import Base


class AreaLevel(enum.StrEnum):
    district = "district"  # 区
    street = "street"  # 街道 / 镇
    community = "community"  # 社区 / 村
    grid = "grid"  # 网格


LEVEL_ORDER = [AreaLevel.district, AreaLevel.street, AreaLevel.community, AreaLevel.grid]


class LivingArrangement(enum.StrEnum):
    alone = "alone"  # 独居
    spouse_only = "spouse_only"  # 仅与配偶同住 (空巢)
    with_family = "with_family"  # 与家人同住


class OrganisationKind(enum.StrEnum):
    health_centre = "health_centre"  # 社区卫生服务中心
    health_station = "health_station"  # 社区卫生服务站
    family_doctor_team = "family_doctor_team"  # 家庭医生团队, placed under its health centre's area
    elderly_care_station = "elderly_care_station"  # 养老驿站
    elderly_care_institution = "elderly_care_institution"  # 养老机构
    hospital = "hospital"  # 医院
    social_organisation = "social_organisation"  # 社会组织
    street_office = "street_office"  # 街道办事处
    civil_affairs = "civil_affairs"  # 民政局
    health_commission = "health_commission"  # 卫健委
    medical_insurance = "medical_insurance"  # 医保局


class Area(Base):
    __tablename__ = "area"

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[AreaLevel] = mapped_column(Enum(AreaLevel, native_enum=False, length=16))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"))
    path: Mapped[str] = mapped_column(String(200), index=True)

    parent: Mapped[Area | None] = relationship(remote_side="Area.id")

    __table_args__ = (Index("ix_area_level_name", "level", "name"),)

    def subtree(self) -> ColumnElement[bool]:
        """A clause over ``area``: this area and every area under it (a path is the codes of its
        ancestors and itself, joined by '/'). Escaped: a ``_`` or ``%`` in a code is itself, not a
        LIKE wildcard that would reach a sibling's residents."""
        return or_(Area.id == self.id, Area.path.startswith(self.path + "/", autoescape=True))


class Household(Base):
    __tablename__ = "household"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(200))
    address_key: Mapped[str] = mapped_column(String(200), index=True)  # normalised for matching
    community_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"), index=True)
    living_arrangement: Mapped[LivingArrangement | None] = mapped_column(
        Enum(LivingArrangement, native_enum=False, length=16)
    )


class Organisation(Base):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrganisationKind] = mapped_column(Enum(OrganisationKind, native_enum=False, length=32))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
