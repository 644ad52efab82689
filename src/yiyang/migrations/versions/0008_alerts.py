"""alerts: rule overrides, alerts and transitions, deadlines, deliveries, inbox

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike. No foreign keys to residents or users
(see 0004's note): the ingest hot path writes alerts and deadlines.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

T = yiyang.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "alert_rule_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "scope",
            sa.Enum("tier", "resident", name="overridescope", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("tier", sa.String(length=8), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("changed_by", sa.Integer(), nullable=True),
        sa.Column("changed_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rule_override")),
    )
    op.create_index(op.f("ix_alert_rule_override_resident_id"), "alert_rule_override", ["resident_id"])
    states = ("open", "escalated", "acknowledged", "resolved")
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("rule_kind", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.Enum(*states, name="alertstate", native_enum=False, length=16), nullable=False),
        sa.Column("open_key", sa.String(length=48), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("tier_fact", sa.Boolean(), nullable=False),
        sa.Column("raised_at", T(), nullable=False),
        sa.Column("recorded_at", T(), nullable=False),
        sa.Column("last_seen_at", T(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("next_escalation_at", T(), nullable=True),
        sa.Column("acknowledged_at", T(), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", T(), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alert_open_key")),
    )
    op.create_index(op.f("ix_alert_resident_id"), "alert", ["resident_id"])
    op.create_index(op.f("ix_alert_state"), "alert", ["state"])
    op.create_index(op.f("ix_alert_next_escalation_at"), "alert", ["next_escalation_at"])
    op.create_index("ix_alert_resident_raised", "alert", ["resident_id", "raised_at"])
    op.create_table(
        "alert_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("at", T(), nullable=False),
        sa.Column("by_user_id", sa.Integer(), nullable=True),
        sa.Column("by_name", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_transition")),
    )
    op.create_index(op.f("ix_alert_transition_alert_id"), "alert_transition", ["alert_id"])
    op.create_table(
        "alert_deadline",
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("started_at", T(), nullable=False),
        sa.Column("due_at", T(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "subject_id", name=op.f("pk_alert_deadline")),
    )
    op.create_index(op.f("ix_alert_deadline_due_at"), "alert_deadline", ["due_at"])
    statuses = ("pending", "sent", "failed", "gave_up")
    op.create_table(
        "alert_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=32), nullable=True),
        sa.Column(
            "status", sa.Enum(*statuses, name="deliverystatus", native_enum=False, length=16), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", T(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("sent_at", T(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_delivery")),
    )
    op.create_index(op.f("ix_alert_delivery_alert_id"), "alert_delivery", ["alert_id"])
    op.create_index(op.f("ix_alert_delivery_next_attempt_at"), "alert_delivery", ["next_attempt_at"])
    op.create_table(
        "inbox_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("read_at", T(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_item")),
    )
    op.create_index("ix_inbox_item_user_id", "inbox_item", ["user_id", "id"])


def downgrade() -> None:
    for table in (
        "inbox_item",
        "alert_delivery",
        "alert_deadline",
        "alert_transition",
        "alert",
        "alert_rule_override",
    ):
        op.drop_table(table)
