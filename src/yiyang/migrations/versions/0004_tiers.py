"""assessments and tiers: stored assessments, current tier, tier history, proposed care plans

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Written by hand; runs on SQLite and PostgreSQL alike. ``tier_change`` and ``care_plan`` carry no
foreign keys: sweeps write them in bulk and PostgreSQL's per-row key checks (which lock the
resident row) tripled the cost of a first sweep; see docs/tiers.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIERS = ("red", "yellow", "green")
PLAN_STATUSES = ("proposed", "active", "revoked", "completed")


def _tier(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Enum(*TIERS, name="tier", native_enum=False, length=8), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "assessment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=32), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("total", sa.Float(), nullable=True),
        sa.Column("max_total", sa.Float(), nullable=True),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("level_zh", sa.String(length=64), nullable=False),
        sa.Column("level_en", sa.String(length=100), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("assessed_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("assessor", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("reassess_due_on", sa.Date(), nullable=True),
        sa.Column("source_record_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_assessment_resident_id_resident")
        ),
        sa.ForeignKeyConstraint(
            ["source_record_id"],
            ["source_record.id"],
            name=op.f("fk_assessment_source_record_id_source_record"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment")),
    )
    op.create_index(op.f("ix_assessment_resident_id"), "assessment", ["resident_id"])
    op.create_index(
        "ix_assessment_resident_instrument_time", "assessment", ["resident_id", "instrument", "assessed_at"]
    )
    op.create_index("ix_assessment_instrument_due", "assessment", ["instrument", "reassess_due_on"])

    op.create_table(
        "resident_tier",
        sa.Column("resident_id", sa.Integer(), nullable=False),
        _tier("tier"),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("decided_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("changed_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_resident_tier_resident_id_resident")
        ),
        sa.PrimaryKeyConstraint("resident_id", name=op.f("pk_resident_tier")),
    )
    op.create_index(op.f("ix_resident_tier_tier"), "resident_tier", ["tier"])

    op.create_table(
        "tier_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        _tier("old_tier", nullable=True),
        _tier("new_tier"),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("changed_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_change")),
    )
    op.create_index(op.f("ix_tier_change_resident_id"), "tier_change", ["resident_id"])

    op.create_table(
        "care_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        _tier("tier"),
        sa.Column(
            "status",
            sa.Enum(*PLAN_STATUSES, name="careplanstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("goals", sa.JSON(), nullable=False),
        sa.Column("activities", sa.JSON(), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("tier_change_id", sa.Integer(), nullable=True),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("status_changed_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("status_changed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_plan")),
    )
    op.create_index("ix_care_plan_resident_status", "care_plan", ["resident_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_care_plan_resident_status", table_name="care_plan")
    op.drop_table("care_plan")
    op.drop_index(op.f("ix_tier_change_resident_id"), table_name="tier_change")
    op.drop_table("tier_change")
    op.drop_index(op.f("ix_resident_tier_tier"), table_name="resident_tier")
    op.drop_table("resident_tier")
    op.drop_index("ix_assessment_instrument_due", table_name="assessment")
    op.drop_index("ix_assessment_resident_instrument_time", table_name="assessment")
    op.drop_index(op.f("ix_assessment_resident_id"), table_name="assessment")
    op.drop_table("assessment")
