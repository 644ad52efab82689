"""Alert tables: rule overrides, alerts and their transitions, deadlines, deliveries, the inbox.

``alert.open_key`` is ``"{resident}:{kind}"`` while the alert is not resolved and NULL after, so
a unique index keeps one open alert per resident and kind on both engines (a repeat is counted
on the open alert instead of raising a second one). ``alert_deadline`` holds the clocks that
durations and absence rules run: the sweep reads only the rows whose ``due_at`` has passed.
Alerts and their side tables have no foreign keys to residents (see the 0004 note): residents
are never deleted, and the hot path should not lock the resident row.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow


class AlertState(enum.StrEnum):
    open = "open"  # 待处理: raised, nobody has acknowledged it yet
    escalated = "escalated"  # 已升级: still unacknowledged, the next level was told
    acknowledged = "acknowledged"  # 已响应: someone took it on; escalation stops
    resolved = "resolved"  # 已处置: closed with an outcome


class AlertOutcome(enum.StrEnum):
    handled = "handled"  # 已处置: help given
    false_alarm = "false_alarm"  # 误报
    hospital = "hospital"  # 送医
    visit_done = "visit_done"  # 已上门 (the care domain's home visit)
    no_action = "no_action"  # 无需处理
    device_fixed = "device_fixed"  # 设备已恢复


class OverrideScope(enum.StrEnum):
    tier = "tier"
    resident = "resident"


class AlertRuleOverride(Base):
    """An administrator's change to one rule for a tier or for one resident."""

    __tablename__ = "alert_rule_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[OverrideScope] = mapped_column(Enum(OverrideScope, native_enum=False, length=16))
    tier: Mapped[str | None] = mapped_column(String(8))
    resident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    rule: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    changed_by: Mapped[int | None] = mapped_column(Integer)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """告警: one rule firing for one resident, from raised to resolved."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # the rule's code
    rule_kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[AlertState] = mapped_column(Enum(AlertState, native_enum=False, length=16), index=True)
    open_key: Mapped[str | None] = mapped_column(String(48), unique=True)
    device_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tier_fact: Mapped[bool] = mapped_column(Boolean, default=False)
    raised_at: Mapped[dt.datetime] = mapped_column()  # when the condition was observed
    recorded_at: Mapped[dt.datetime] = mapped_column()
    last_seen_at: Mapped[dt.datetime] = mapped_column()
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    chain: Mapped[str] = mapped_column(String(32))
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column()
    acknowledged_by: Mapped[int | None] = mapped_column(Integer)
    resolved_at: Mapped[dt.datetime | None] = mapped_column()
    resolved_by: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (Index("ix_alert_resident_raised", "resident_id", "raised_at"),)


class AlertTransition(Base):
    """Every change of an alert's state (and every escalation step), with who and when."""

    __tablename__ = "alert_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(Integer, index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    step: Mapped[int | None] = mapped_column(Integer)  # the escalation step run, if any
    at: Mapped[dt.datetime] = mapped_column()
    by_user_id: Mapped[int | None] = mapped_column(Integer)
    by_name: Mapped[str] = mapped_column(String(64))  # username, or system:<job>
    note: Mapped[str | None] = mapped_column(String(200))


class AlertDeadline(Base):
    """A running clock: a duration (out of bed at night) or an absence (no activity, silence).

    ``subject_id`` is the resident (``rule`` per resident) or, for device rules, the device."""

    __tablename__ = "alert_deadline"

    rule: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(Integer)
    resident_id: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column()
    due_at: Mapped[dt.datetime] = mapped_column(index=True)

    __table_args__ = (PrimaryKeyConstraint("rule", "subject_id"),)


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # will be retried at next_attempt_at
    gave_up = "gave_up"


class AlertDelivery(Base):
    """One notification on one channel to one recipient (a user, or the webhook)."""

    __tablename__ = "alert_delivery"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(Integer, index=True)
    step: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str | None] = mapped_column(String(32))  # who in the chain: grid_worker, family ...
    status: Mapped[DeliveryStatus] = mapped_column(Enum(DeliveryStatus, native_enum=False, length=16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column()
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class InboxItem(Base):
    """站内消息: one notification in one user's in-app inbox."""

    __tablename__ = "inbox_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    alert_id: Mapped[int | None] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(16))
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column()
    read_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (Index("ix_inbox_item_user_id", "user_id", "id"),)
