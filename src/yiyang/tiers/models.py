"""Tier tables: each resident's current tier with its reasons, the history of changes, care plans.

``resident_tier`` holds one row per resident (the latest decision, its reasons and a digest that
lets a sweep skip residents whose decision did not change). ``tier_change`` is the history: a
row each time a resident's tier changed, first assignment included. ``care_plan`` holds the
service bundle each tier proposes; the care loop turns an active plan into work.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow
from yiyang.tiers.rules import Tier


class CarePlanStatus(enum.StrEnum):
    proposed = "proposed"  # drafted by the tier engine, waiting for a clinician
    active = "active"  # accepted by a clinician; the care loop works from it
    revoked = "revoked"  # replaced by a newer proposal before anyone accepted it, or withdrawn
    completed = "completed"


class ResidentTier(Base):
    __tablename__ = "resident_tier"

    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), primary_key=True)
    tier: Mapped[Tier] = mapped_column(Enum(Tier, native_enum=False, length=8), index=True)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    digest: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # the decision last changed
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # the tier last changed


class TierChange(Base):
    """History, written in bulk by sweeps. Like ``care_plan`` it has no foreign keys: on PostgreSQL a
    foreign-key check locks the referenced row, which tripled the cost of a first sweep's writes
    (docs/tiers.md); residents are never deleted (a merge only marks them), so nothing dangles."""

    __tablename__ = "tier_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer, index=True)
    old_tier: Mapped[Tier | None] = mapped_column(Enum(Tier, native_enum=False, length=8))
    new_tier: Mapped[Tier] = mapped_column(Enum(Tier, native_enum=False, length=8))
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    trigger: Mapped[str] = mapped_column(String(32))  # assessment, import, sweep, manual
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CarePlan(Base):
    __tablename__ = "care_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer)  # no foreign key: see TierChange
    tier: Mapped[Tier] = mapped_column(Enum(Tier, native_enum=False, length=8))
    status: Mapped[CarePlanStatus] = mapped_column(Enum(CarePlanStatus, native_enum=False, length=16))
    goals: Mapped[list[Any]] = mapped_column(JSON, default=list)  # goal codes (care_plans.GOALS)
    activities: Mapped[list[Any]] = mapped_column(
        JSON, default=list
    )  # activity codes (care_plans.ACTIVITIES)
    addresses: Mapped[list[Any]] = mapped_column(JSON, default=list)  # rule codes the plan answers
    tier_change_id: Mapped[int | None] = mapped_column(Integer)  # the change that proposed it
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status_changed_by: Mapped[str] = mapped_column(String(64), default="tier-engine")

    __table_args__ = (Index("ix_care_plan_resident_status", "resident_id", "status"),)
