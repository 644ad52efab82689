"""Care tables: family-doctor teams, contracts, work items, referrals and their history.

A team is an ``organisation`` of kind ``family_doctor_team``; ``care_team`` adds what only care
needs (panel limit, lead, linked specialists). A contract in force is mirrored by a
``resident_relationship`` row (kind contract), which is what gives the team its scope.

``work_item`` is the one model for all closed-loop work (FHIR Task). It and ``care_history``
are written in bulk by the day job, so like ``tier_change`` they carry no foreign keys (a
key check locks the referenced row on PostgreSQL); residents are never deleted.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Enum, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow


class CareTeam(Base):
    """家庭医生团队: the care side of a ``family_doctor_team`` organisation."""

    __tablename__ = "care_team"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), primary_key=True)
    health_centre_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    panel_limit: Mapped[int] = mapped_column(Integer)  # residents under contract at once
    lead_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    specialists: Mapped[list[Any]] = mapped_column(
        JSON, default=list
    )  # [{"name", "specialty", "organisation_id"}]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ContractStatus(enum.StrEnum):
    in_force = "in_force"  # 履约中
    terminated = "terminated"  # 解约
    expired = "expired"  # 到期未续
    renewed = "renewed"  # 已续约 (replaced by a newer contract)


class GroupContract(Base):
    """功能社区签约: one institution (care home, school) signs many residents at once."""

    __tablename__ = "care_group_contract"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    packages: Mapped[list[Any]] = mapped_column(JSON, default=list)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    signed_by: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CareContract(Base):
    """家庭医生签约: one resident, one team, the packages signed, for a period."""

    __tablename__ = "care_contract"
    __table_args__ = (
        Index("ix_care_contract_team_status", "team_id", "status"),
        Index("ix_care_contract_resident_status", "resident_id", "status"),
        # One contract in force per resident, held by the database: two signings that both pass
        # the check in Python (two teams at once on PostgreSQL) cannot both commit (migration 0018).
        Index(
            "uq_care_contract_resident_in_force",
            "resident_id",
            unique=True,
            sqlite_where=text("status = 'in_force'"),
            postgresql_where=text("status = 'in_force'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    team_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    doctor_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    group_contract_id: Mapped[int | None] = mapped_column(ForeignKey("care_group_contract.id"))
    packages: Mapped[list[Any]] = mapped_column(JSON, default=list)  # package codes (packages.PACKAGES)
    status: Mapped[ContractStatus] = mapped_column(Enum(ContractStatus, native_enum=False, length=16))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    renewed_from_id: Mapped[int | None] = mapped_column(Integer)
    signed_by: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(String(200))


class WorkKind(enum.StrEnum):
    follow_up = "follow_up"  # 随访
    home_visit = "home_visit"  # 上门访视
    service_delivery = "service_delivery"  # 服务履约
    reminder = "reminder"  # 提醒 (vaccination, re-examination)
    health_check = "health_check"  # 健康体检
    reassessment = "reassessment"  # 能力复评
    referral_follow_up = "referral_follow_up"  # 转诊后随访


class WorkStatus(enum.StrEnum):
    scheduled = "scheduled"  # its window has not opened
    due = "due"
    overdue = "overdue"
    done = "done"
    cancelled = "cancelled"
    failed = "failed"  # attempted, could not be done (not at home, refused)


OPEN_STATUSES = (WorkStatus.scheduled, WorkStatus.due, WorkStatus.overdue)


class WorkItem(Base):
    """One piece of closed-loop work for one resident, with an owner and a due window (FHIR Task)."""

    __tablename__ = "work_item"
    __table_args__ = (
        Index("ix_work_item_status_due", "status", "due_by"),
        Index("ix_work_item_resident_programme", "resident_id", "programme", "status"),
        Index("ix_work_item_owner_org_status", "owner_organisation_id", "status"),
        Index("ix_work_item_owner_user_status", "owner_user_id", "status"),
        Index("ix_work_item_source", "source_type", "source_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer)  # no foreign key: see the module docstring
    kind: Mapped[WorkKind] = mapped_column(Enum(WorkKind, native_enum=False, length=24))
    programme: Mapped[str] = mapped_column(String(32))  # hypertension, diabetes, elderly_check ...
    status: Mapped[WorkStatus] = mapped_column(Enum(WorkStatus, native_enum=False, length=16))
    rule: Mapped[str] = mapped_column(String(48))  # the schedule rule (and its clause) that raised it
    owner_user_id: Mapped[int | None] = mapped_column(Integer)
    owner_organisation_id: Mapped[int | None] = mapped_column(Integer)
    due_from: Mapped[dt.date] = mapped_column(Date)
    due_by: Mapped[dt.date] = mapped_column(Date)
    source_type: Mapped[str | None] = mapped_column(
        String(32)
    )  # alert, contract, care_plan, referral, work_item
    source_id: Mapped[int | None] = mapped_column(Integer)
    escalation_level: Mapped[int] = mapped_column(SmallInteger, default=0)  # 0 none, 1 team lead, 2 centre
    escalated_to_user_id: Mapped[int | None] = mapped_column(Integer)
    escalated_to_organisation_id: Mapped[int | None] = mapped_column(Integer)
    escalated_at: Mapped[dt.datetime | None] = mapped_column()
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    completed_by: Mapped[str | None] = mapped_column(String(64))


class ReferralDirection(enum.StrEnum):
    up = "up"  # 上转: community -> hospital
    down = "down"  # 下转: hospital -> community


class ReferralStatus(enum.StrEnum):
    sent = "sent"
    accepted = "accepted"
    completed = "completed"  # treated by the receiver; nothing comes back
    returned = "returned"  # sent back with the receiver's notes; the community follows up


class Referral(Base):
    """双向转诊: a resident sent between the community and a hospital, with a profile summary."""

    __tablename__ = "referral"
    __table_args__ = (Index("ix_referral_to_status", "to_organisation_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    direction: Mapped[ReferralDirection] = mapped_column(Enum(ReferralDirection, native_enum=False, length=8))
    from_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    to_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(200))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[ReferralStatus] = mapped_column(Enum(ReferralStatus, native_enum=False, length=16))
    source_work_item_id: Mapped[int | None] = mapped_column(Integer)
    receiver_note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CareHistory(Base):
    """History of contracts, work items and referrals: each change of status, who, when."""

    __tablename__ = "care_history"
    __table_args__ = (Index("ix_care_history_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(16))  # contract, work_item, referral
    subject_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24))  # signed, renewed, due, overdue, escalated, done ...
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column()
    by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(200))
