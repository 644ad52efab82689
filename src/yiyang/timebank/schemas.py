"""Time-bank payloads in and out. Amounts travel as minutes (integers); pages show hours."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from yiyang.deps import MAX_ID
from yiyang.timebank.models import TransactionKind, VolunteerPairing, VolunteerProfile
from yiyang.timebank.service import HoursSummary, StatementLine

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Minutes = Annotated[int, Field(ge=1, le=100_000 * 60)]
Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Skill = Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
Slot = Annotated[str, Field(pattern=r"^(mon|tue|wed|thu|fri|sat|sun)\.(am|pm|eve)$")]


class ProfileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    area_id: Id
    skills: list[Skill] = Field(default_factory=list, max_length=20)
    availability: list[Slot] = Field(default_factory=list, max_length=21)
    active: bool = True


class ProfileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: int
    area_id: int
    skills: list[str]
    availability: list[str]
    active: bool
    updated_at: dt.datetime

    @classmethod
    def of(cls, profile: VolunteerProfile) -> ProfileRead:
        return cls.model_validate(profile)


class PairingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volunteer_user_id: Id
    resident_id: Id


class PairingEnd(BaseModel):
    reason: Annotated[str, Field(max_length=200)] | None = None


class PairingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    volunteer_user_id: int
    resident_id: int
    started_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None

    @classmethod
    def of(cls, pairing: VolunteerPairing) -> PairingRead:
        return cls.model_validate(pairing)


class SpendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: Minutes
    key: Key  # the client's idempotency key: a retried request posts once
    memo: Annotated[str, Field(max_length=200)] | None = None


class DonateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: Minutes
    key: Key
    to_user_id: Id | None = None  # None: the community pool (公益池)


class PostedRead(BaseModel):
    transaction_id: int
    kind: TransactionKind
    replayed: bool
    balance_minutes: int


class LineRead(BaseModel):
    transaction_id: int
    kind: TransactionKind
    minutes: int
    posted_at: dt.datetime
    source_type: str
    source_id: int | None
    memo: str | None

    @classmethod
    def of(cls, line: StatementLine) -> LineRead:
        return cls(
            transaction_id=line.transaction_id, kind=line.kind, minutes=line.minutes, posted_at=line.posted_at,
            source_type=line.source_type, source_id=line.source_id, memo=line.memo,
        )  # fmt: skip


class HoursRead(BaseModel):
    balance_minutes: int
    earned_minutes: int
    spent_minutes: int
    donated_minutes: int
    received_minutes: int
    expired_minutes: int
    lines: list[LineRead]
    pairings: list[PairingRead]

    @classmethod
    def of(
        cls, summary: HoursSummary, lines: list[StatementLine], pairings: list[VolunteerPairing]
    ) -> HoursRead:
        return cls(
            balance_minutes=summary.balance, earned_minutes=summary.earned, spent_minutes=summary.spent,
            donated_minutes=summary.donated, received_minutes=summary.received, expired_minutes=summary.expired,
            lines=[LineRead.of(line) for line in lines], pairings=[PairingRead.of(p) for p in pairings],
        )  # fmt: skip


class ExpireBody(BaseModel):
    # None: the district's validity (YIYANG_TIMEBANK_VALIDITY_DAYS), as the daily job uses
    validity_days: int | None = Field(default=None, ge=1, le=36_500)


class ExpireResult(BaseModel):
    expired_minutes: int
