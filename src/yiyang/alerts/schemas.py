"""Alert API shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from yiyang.alerts.models import AlertOutcome, AlertState, OverrideScope


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    kind: str
    severity: str
    state: AlertState
    raised_at: dt.datetime
    last_seen_at: dt.datetime
    repeats: int
    device_id: int | None
    detail: dict[str, Any] | None
    steps_done: int
    next_escalation_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    outcome: str | None


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_state: str | None
    to_state: str
    step: int | None
    at: dt.datetime
    by_name: str
    note: str | None


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: int
    channel: str
    target: str | None
    user_id: int | None
    status: str
    attempts: int
    last_error: str | None
    sent_at: dt.datetime | None


class AlertDetail(AlertRead):
    transitions: list[TransitionRead]
    deliveries: list[DeliveryRead]


class AlertPage(BaseModel):
    total: int
    items: list[AlertRead]


class Acknowledge(BaseModel):
    note: str | None = Field(default=None, max_length=200)


class Resolve(BaseModel):
    outcome: AlertOutcome
    note: str | None = Field(default=None, max_length=200)


class InboxItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    alert_id: int | None
    severity: str
    title_zh: str
    title_en: str
    created_at: dt.datetime
    read_at: dt.datetime | None


class OverrideCreate(BaseModel):
    scope: OverrideScope
    tier: str | None = Field(default=None, pattern="^(red|yellow|green)$")
    resident_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    rule: str = Field(min_length=1, max_length=32)
    params: dict[str, Any] = Field(default_factory=dict, max_length=20)


class OverrideRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    scope: OverrideScope
    tier: str | None
    resident_id: int | None
    rule: str
    params: dict[str, Any]
    changed_at: dt.datetime
