"""Care request and response bodies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from yiyang.care.models import CareContract, CareHistory, CareTeam, Referral, WorkItem
from yiyang.care.schedule import RULES
from yiyang.deps import MAX_ID, RequestDate

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PackageCode = Annotated[str, Field(min_length=1, max_length=32)]


class Specialist(BaseModel):
    name: str = Field(max_length=64)
    specialty: str = Field(max_length=64)
    organisation_id: Id | None = None


class TeamCreate(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    health_centre_id: Id
    panel_limit: int = Field(ge=1, le=100_000)
    lead_user_id: Id | None = None
    specialists: list[Specialist] = Field(default_factory=list, max_length=50)


class TeamRead(BaseModel):
    organisation_id: int
    health_centre_id: int | None
    panel_limit: int
    panel_size: int
    lead_user_id: int | None
    specialists: list[dict[str, Any]]

    @classmethod
    def of(cls, team: CareTeam, panel_size: int) -> TeamRead:
        return cls(
            organisation_id=team.organisation_id, health_centre_id=team.health_centre_id, panel_limit=team.panel_limit,
            panel_size=panel_size, lead_user_id=team.lead_user_id, specialists=list(team.specialists or []),
        )  # fmt: skip


class ContractCreate(BaseModel):
    resident_id: Id
    team_id: Id
    packages: list[PackageCode] = Field(min_length=1, max_length=10)
    valid_from: dt.date | None = None
    months: int = Field(default=12, ge=1, le=60)
    doctor_user_id: Id | None = None


class ContractRenew(BaseModel):
    months: int = Field(default=12, ge=1, le=60)
    packages: list[PackageCode] | None = Field(default=None, min_length=1, max_length=10)


class ContractTerminate(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class GroupContractCreate(BaseModel):
    team_id: Id
    institution_id: Id
    resident_ids: list[Id] = Field(min_length=1, max_length=2000)
    packages: list[PackageCode] = Field(min_length=1, max_length=10)
    valid_from: dt.date | None = None
    months: int = Field(default=12, ge=1, le=60)


class HistoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    action: str
    from_status: str | None
    to_status: str | None
    at: dt.datetime
    by: str
    note: str | None


class ContractRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    team_id: int
    doctor_user_id: int | None
    group_contract_id: int | None
    packages: list[str]
    status: str
    valid_from: dt.date
    valid_until: dt.date
    renewed_from_id: int | None
    signed_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None
    history: list[HistoryRead] = Field(default_factory=list)

    @classmethod
    def of(cls, contract: CareContract, history: list[CareHistory] | None = None) -> ContractRead:
        read = cls.model_validate(contract)
        read.history = [HistoryRead.model_validate(h) for h in history or []]
        return read


class GroupContractRead(BaseModel):
    id: int
    team_id: int
    institution_id: int
    contract_ids: list[int]
    skipped_resident_ids: list[int]


class WorkItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    kind: str
    programme: str
    status: str
    rule: str
    rule_zh: str = ""
    rule_en: str = ""
    owner_user_id: int | None
    owner_organisation_id: int | None
    due_from: dt.date
    due_by: dt.date
    source_type: str | None
    source_id: int | None
    escalation_level: int
    escalated_to_user_id: int | None
    escalated_to_organisation_id: int | None
    outcome: dict[str, Any] | None
    note: str | None
    completed_at: dt.datetime | None
    history: list[HistoryRead] | None = None

    @classmethod
    def of(cls, item: WorkItem, history: list[CareHistory] | None = None) -> WorkItemRead:
        read = cls.model_validate(item)
        rule = RULES.get(item.rule)
        if rule:
            read.rule_zh, read.rule_en = rule.zh, rule.en
        if history is not None:
            read.history = [HistoryRead.model_validate(h) for h in history]
        return read


class OutcomeIn(BaseModel):
    """A visit's structured outcome: what was measured and found."""

    done: bool = True
    visited_on: RequestDate | None = None
    systolic: int | None = Field(default=None, ge=40, le=300)
    diastolic: int | None = Field(default=None, ge=20, le=200)
    fasting_glucose: float | None = Field(default=None, ge=0.5, le=50)
    adverse_reaction: bool = False
    new_complication: bool = False
    danger_symptoms: bool = False
    risk_grade: int | None = Field(default=None, ge=0, le=5)
    findings: str | None = Field(default=None, max_length=500)
    refer_to_organisation_id: Id | None = None


class OutcomeRead(BaseModel):
    item: WorkItemRead
    visit_class: str | None
    next_items: list[WorkItemRead]
    referral_required: bool
    referral_id: int | None


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class ReferralCreate(BaseModel):
    resident_id: Id
    to_organisation_id: Id
    from_organisation_id: Id | None = None
    reason: str = Field(min_length=1, max_length=200)
    urgent: bool = False
    direction: str = Field(default="up", pattern="^(up|down)$")


class ReferralNote(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class ReferralReturn(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class ReferralRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    direction: str
    from_organisation_id: int
    to_organisation_id: int
    urgent: bool
    reason: str
    summary: dict[str, Any]
    status: str
    source_work_item_id: int | None
    receiver_note: str | None
    sent_at: dt.datetime
    status_changed_at: dt.datetime

    @classmethod
    def of(cls, referral: Referral) -> ReferralRead:
        return cls.model_validate(referral)


class OverdueItem(BaseModel):
    item: WorkItemRead
    resident_name: str
    community_id: int | None
    days_overdue: int


class OverduePageRead(BaseModel):
    total: int
    items: list[OverdueItem]


class OverdueCountRead(BaseModel):
    key: int | None
    label: str
    overdue: int
    escalated: int


class DayReportRead(BaseModel):
    expired_contracts: int
    created: int
    became_due: int
    became_overdue: int
    escalated_to_lead: int
    escalated_to_centre: int
    seconds: float
