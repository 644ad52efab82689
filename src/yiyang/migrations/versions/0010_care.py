"""care: family-doctor teams, contracts, group contracts, work items, referrals, care history

Revision ID: 0010
Revises: 0005
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike. ``work_item`` and ``care_history`` carry no
foreign keys: the day job writes them in bulk (see 0004's note on key checks under bulk writes).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTRACT_STATUSES = ("in_force", "terminated", "expired", "renewed")
WORK_KINDS = (
    "follow_up", "home_visit", "service_delivery", "reminder", "health_check", "reassessment", "referral_follow_up",
)  # fmt: skip
WORK_STATUSES = ("scheduled", "due", "overdue", "done", "cancelled", "failed")
DIRECTIONS = ("up", "down")
REFERRAL_STATUSES = ("sent", "accepted", "completed", "returned")


def _enum(name: str, values: tuple[str, ...], length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "care_team",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("health_centre_id", sa.Integer(), nullable=True),
        sa.Column("panel_limit", sa.Integer(), nullable=False),
        sa.Column("lead_user_id", sa.Integer(), nullable=True),
        sa.Column("specialists", sa.JSON(), nullable=False),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        _fk("care_team", "organisation_id", "organisation"),
        _fk("care_team", "health_centre_id", "organisation"),
        _fk("care_team", "lead_user_id", "user_account"),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_care_team")),
    )
    op.create_table(
        "care_group_contract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("packages", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("signed_by", sa.String(length=64), nullable=False),
        sa.Column("signed_at", yiyang.db.UTCDateTime(), nullable=False),
        _fk("care_group_contract", "team_id", "organisation"),
        _fk("care_group_contract", "institution_id", "organisation"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_group_contract")),
    )
    op.create_index(op.f("ix_care_group_contract_team_id"), "care_group_contract", ["team_id"])
    op.create_index(op.f("ix_care_group_contract_institution_id"), "care_group_contract", ["institution_id"])
    op.create_table(
        "care_contract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("doctor_user_id", sa.Integer(), nullable=True),
        sa.Column("group_contract_id", sa.Integer(), nullable=True),
        sa.Column("packages", sa.JSON(), nullable=False),
        sa.Column("status", _enum("contractstatus", CONTRACT_STATUSES, 16), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("renewed_from_id", sa.Integer(), nullable=True),
        sa.Column("signed_by", sa.String(length=64), nullable=False),
        sa.Column("signed_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("ended_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        _fk("care_contract", "resident_id", "resident"),
        _fk("care_contract", "team_id", "organisation"),
        _fk("care_contract", "doctor_user_id", "user_account"),
        _fk("care_contract", "group_contract_id", "care_group_contract"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_contract")),
    )
    op.create_index("ix_care_contract_team_status", "care_contract", ["team_id", "status"])
    op.create_index("ix_care_contract_resident_status", "care_contract", ["resident_id", "status"])
    op.create_table(
        "work_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("workkind", WORK_KINDS, 24), nullable=False),
        sa.Column("programme", sa.String(length=32), nullable=False),
        sa.Column("status", _enum("workstatus", WORK_STATUSES, 16), nullable=False),
        sa.Column("rule", sa.String(length=48), nullable=False),
        sa.Column("owner_user_id", sa.Integer(), nullable=True),
        sa.Column("owner_organisation_id", sa.Integer(), nullable=True),
        sa.Column("due_from", sa.Date(), nullable=False),
        sa.Column("due_by", sa.Date(), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("escalation_level", sa.SmallInteger(), nullable=False),
        sa.Column("escalated_to_user_id", sa.Integer(), nullable=True),
        sa.Column("escalated_to_organisation_id", sa.Integer(), nullable=True),
        sa.Column("escalated_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("status_changed_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("completed_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("completed_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_item")),
    )
    op.create_index("ix_work_item_status_due", "work_item", ["status", "due_by"])
    op.create_index("ix_work_item_resident_programme", "work_item", ["resident_id", "programme", "status"])
    op.create_index("ix_work_item_owner_org_status", "work_item", ["owner_organisation_id", "status"])
    op.create_index("ix_work_item_owner_user_status", "work_item", ["owner_user_id", "status"])
    op.create_index("ix_work_item_source", "work_item", ["source_type", "source_id"])
    op.create_table(
        "referral",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("direction", _enum("referraldirection", DIRECTIONS, 8), nullable=False),
        sa.Column("from_organisation_id", sa.Integer(), nullable=False),
        sa.Column("to_organisation_id", sa.Integer(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("status", _enum("referralstatus", REFERRAL_STATUSES, 16), nullable=False),
        sa.Column("source_work_item_id", sa.Integer(), nullable=True),
        sa.Column("receiver_note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("sent_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("status_changed_at", yiyang.db.UTCDateTime(), nullable=False),
        _fk("referral", "resident_id", "resident"),
        _fk("referral", "from_organisation_id", "organisation"),
        _fk("referral", "to_organisation_id", "organisation"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
    )
    op.create_index(op.f("ix_referral_resident_id"), "referral", ["resident_id"])
    op.create_index("ix_referral_to_status", "referral", ["to_organisation_id", "status"])
    op.create_table(
        "care_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_history")),
    )
    op.create_index("ix_care_history_subject", "care_history", ["subject_type", "subject_id"])


def downgrade() -> None:
    for table in (
        "care_history",
        "referral",
        "work_item",
        "care_contract",
        "care_group_contract",
        "care_team",
    ):
        op.drop_table(table)
