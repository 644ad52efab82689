"""Consent (知情同意 / 数据授权) and break-the-glass (紧急访问) tables.

A ``consent`` row is one decision of a resident about one data category, one class of
recipient and one purpose, for a period. Rows are never deleted or edited in substance: a new
decision ends the one in force (``revoked_at``, ``ended_reason = "superseded"``), a revocation
sets ``revoked_at``, so the history of every decision stays readable.

A ``break_glass_access`` row is one emergency opening of a resident's record outside the actor's
scope: who, whom, why, until when, and the review an officer gives it afterwards.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow


class ConsentDecision(enum.StrEnum):
    permit = "permit"  # 同意
    deny = "deny"  # 拒绝


class ConsentSource(enum.StrEnum):
    """How the decision reached the system."""

    paper_form = "paper_form"  # 纸质知情同意书, entered by staff
    resident = "resident"  # the resident, signed in
    family_member = "family_member"  # an authorised family member, signed in
    fhir = "fhir"  # a FHIR Consent from another system


class Consent(Base):
    __tablename__ = "consent"
    __table_args__ = (
        Index("ix_consent_resident_key", "resident_id", "category", "recipient_class", "purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    category: Mapped[str] = mapped_column(String(16))  # policy.DataCategory
    recipient_class: Mapped[str] = mapped_column(String(16))  # policy.RecipientClass
    purpose: Mapped[str] = mapped_column(String(16))  # policy.Purpose
    decision: Mapped[ConsentDecision] = mapped_column(Enum(ConsentDecision, native_enum=False, length=8))
    valid_from: Mapped[dt.datetime] = mapped_column()
    valid_until: Mapped[dt.datetime | None] = mapped_column()  # None: until revoked
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    ended_reason: Mapped[str | None] = mapped_column(String(16))  # "revoked" or "superseded"
    source: Mapped[ConsentSource] = mapped_column(Enum(ConsentSource, native_enum=False, length=16))
    recorded_by: Mapped[int | None] = mapped_column(Integer)  # user id; None for an import
    revoked_by: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(200))  # e.g. the paper form's number; no PII
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BreakGlassVerdict(enum.StrEnum):
    justified = "justified"  # 合理
    unjustified = "unjustified"  # 不合理


class BreakGlassAccess(Base):
    __tablename__ = "break_glass_access"
    __table_args__ = (Index("ix_break_glass_user_resident", "user_id", "resident_id", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    actor_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    organisation_id: Mapped[int | None] = mapped_column(Integer)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[dt.datetime] = mapped_column(index=True)
    expires_at: Mapped[dt.datetime] = mapped_column()
    reviewed_by: Mapped[int | None] = mapped_column(Integer)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column()
    verdict: Mapped[BreakGlassVerdict | None] = mapped_column(
        Enum(BreakGlassVerdict, native_enum=False, length=16)
    )
    review_note: Mapped[str | None] = mapped_column(String(200))
