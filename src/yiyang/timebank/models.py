"""Time-bank tables: volunteer profiles, pairings with elders, and the double-entry hours ledger.

The ledger is append-only. A ``timebank_transaction`` is one business event (hours earned for an
order, spent, donated, expired) named by a unique ``idempotency_key``, so posting the same source
twice finds the first posting instead of writing a second. Its ``timebank_entry`` rows move
minutes between accounts and sum to zero. A balance is the sum of an account's entries: nothing
stores it, so nothing can drift from the history.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow


class VolunteerProfile(Base):
    """志愿者档案: what a volunteer can do, where, and when."""

    __tablename__ = "volunteer_profile"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    skills: Mapped[list[Any]] = mapped_column(JSON, default=list)
    availability: Mapped[list[Any]] = mapped_column(JSON, default=list)  # slots "tue.pm"; empty: any time
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class VolunteerPairing(Base):
    """小老助老结对: one volunteer looks in on one elder until the pairing ends."""

    __tablename__ = "volunteer_pairing"

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(String(200))
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)


class AccountKind(enum.StrEnum):
    volunteer = "volunteer"  # a volunteer's hours; never below zero
    issuance = "issuance"  # where earned hours come from; its balance is minus all hours ever earned
    redeemed = "redeemed"  # where spent hours go
    pool = "pool"  # 公益池: donated hours, for the community to give to elders in need
    expired = "expired"  # where expired hours go


class TransactionKind(enum.StrEnum):
    earn = "earn"
    spend = "spend"
    donate = "donate"
    expire = "expire"


class TimebankAccount(Base):
    __tablename__ = "timebank_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AccountKind] = mapped_column(Enum(AccountKind, native_enum=False, length=16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), unique=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # "volunteer:12", "issuance" ...
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TimebankTransaction(Base):
    __tablename__ = "timebank_transaction"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(Enum(TransactionKind, native_enum=False, length=16))
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    source_type: Mapped[str] = mapped_column(String(32))  # "service_order", "request", "expiry" ...
    source_id: Mapped[int | None] = mapped_column(Integer)
    memo: Mapped[str | None] = mapped_column(String(200))
    posted_at: Mapped[dt.datetime] = mapped_column(index=True)
    posted_by: Mapped[str] = mapped_column(String(64))


class TimebankEntry(Base):
    """One leg of a transaction: minutes into (positive) or out of (negative) an account."""

    __tablename__ = "timebank_entry"
    __table_args__ = (Index("ix_timebank_entry_account_posted", "account_id", "posted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("timebank_transaction.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("timebank_account.id"))
    minutes: Mapped[int] = mapped_column(Integer)
    posted_at: Mapped[dt.datetime] = mapped_column()
