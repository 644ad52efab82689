"""What the tier API returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from pydantic import BaseModel, Field

from yiyang.tiers.care_plans import ACTIVITIES, GOALS, without_rules
from yiyang.tiers.models import CarePlan
from yiyang.tiers.rules import TIER_NAMES, Tier, TierReason


class TierReasonRead(BaseModel):
    rule: str
    tier: Tier
    zh: str
    en: str
    kind: str
    value: str
    observed_at: str = Field(description="date or datetime the fact was observed")
    feed: str | None = None
    source_key: str | None = None
    source_record_id: int | None = None
    assessment_id: int | None = None
    instrument: str | None = None

    @staticmethod
    def of(reason: TierReason) -> TierReasonRead:
        fact = reason.fact
        return TierReasonRead(
            rule=reason.rule.code, tier=reason.tier, zh=reason.zh, en=reason.en, kind=fact.kind.value,
            value=fact.value, observed_at=fact.observed_at.isoformat(), feed=fact.feed, source_key=fact.source_key,
            source_record_id=fact.source_record_id, assessment_id=fact.assessment_id, instrument=fact.instrument,
        )  # fmt: skip


class TierRead(BaseModel):
    resident_id: int
    tier: Tier
    tier_zh: str
    tier_en: str
    reasons: list[TierReasonRead] = Field(description="every matching rule, most severe first")
    decided_at: dt.datetime
    changed_at: dt.datetime


def tier_read(
    resident_id: int, tier: Tier, reasons: list[TierReason], decided_at: dt.datetime, changed_at: dt.datetime
) -> TierRead:
    zh, en = TIER_NAMES[tier]
    return TierRead(
        resident_id=resident_id, tier=tier, tier_zh=zh, tier_en=en, reasons=[TierReasonRead.of(r) for r in reasons],
        decided_at=decided_at, changed_at=changed_at,
    )  # fmt: skip


class TierChangeRead(BaseModel):
    id: int
    old_tier: Tier | None
    new_tier: Tier
    trigger: str
    changed_at: dt.datetime
    reasons: list[TierReasonRead]


class TierListItem(BaseModel):
    resident_id: int
    name: str
    community_id: int | None
    tier: Tier
    changed_at: dt.datetime
    reasons: list[TierReasonRead]


class TierPage(BaseModel):
    total: int
    items: list[TierListItem]


class TierMixRead(BaseModel):
    area_id: int | None
    code: str | None
    name: str | None
    red: int
    yellow: int
    green: int
    total: int


class RetierRead(BaseModel):
    residents: int
    changed: int
    updated: int
    unchanged: int
    proposed_plans: int
    by_tier: dict[str, int]
    elapsed_s: float


class GoalRead(BaseModel):
    code: str
    zh: str
    en: str


class ActivityRead(BaseModel):
    code: str
    zh: str
    en: str
    performer_zh: str
    performer_en: str
    schedule_zh: str
    schedule_en: str
    kind: str


class CarePlanRead(BaseModel):
    id: int
    resident_id: int
    tier: Tier
    status: str
    goals: list[GoalRead]
    activities: list[ActivityRead]
    addresses: list[str]
    tier_change_id: int | None
    created_at: dt.datetime
    status_changed_at: dt.datetime
    status_changed_by: str


def care_plan_read(plan: CarePlan, *, dropped_rules: Collection[str] = ()) -> CarePlanRead:
    """The plan as the reader sees it: without what ``dropped_rules`` put there (the alert rules'
    part for a reader refused sensor data, ``service.sensor_hidden_rules``)."""
    goal_codes, activity_codes, addresses = without_rules(
        Tier(plan.tier), plan.goals, plan.activities, [str(a) for a in plan.addresses], dropped_rules
    )
    goals = [GOALS[c] for c in goal_codes if c in GOALS]
    activities = [ACTIVITIES[c] for c in activity_codes if c in ACTIVITIES]
    return CarePlanRead(
        id=plan.id, resident_id=plan.resident_id, tier=Tier(plan.tier), status=str(getattr(plan.status, "value", plan.status)),
        goals=[GoalRead(code=g.code, zh=g.zh, en=g.en) for g in goals],
        activities=[
            ActivityRead(code=a.code, zh=a.zh, en=a.en, performer_zh=a.performer_zh, performer_en=a.performer_en,
                         schedule_zh=a.schedule_zh, schedule_en=a.schedule_en, kind=a.kind)
            for a in activities
        ],
        addresses=addresses, tier_change_id=plan.tier_change_id, created_at=plan.created_at,
        status_changed_at=plan.status_changed_at, status_changed_by=plan.status_changed_by,
    )  # fmt: skip


class CarePlanActivate(BaseModel):
    # Older clients name the acceptor here; the plan records the signed-in clinician instead
    # (``care.contracts.by_of``), so the name is accepted and not stored (a plan has no note).
    by: str | None = Field(
        default=None, max_length=64, description="ignored: the acceptor is the signed-in clinician"
    )
