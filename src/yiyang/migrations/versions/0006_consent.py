"""access: consent (per category, recipient class and purpose, with history) and break-the-glass

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("recipient_class", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column(
            "decision",
            sa.Enum("permit", "deny", name="consentdecision", native_enum=False, length=8),
            nullable=False,
        ),
        sa.Column("valid_from", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("valid_until", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("ended_reason", sa.String(length=16), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                "paper_form",
                "resident",
                "family_member",
                "fhir",
                name="consentsource",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),  # fmt: skip
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_consent_resident_id_resident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index(
        "ix_consent_resident_key", "consent", ["resident_id", "category", "recipient_class", "purpose"]
    )
    op.create_table(
        "break_glass_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("actor_name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("opened_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column(
            "verdict",
            sa.Enum("justified", "unjustified", name="breakglassverdict", native_enum=False, length=16),
            nullable=True,
        ),
        sa.Column("review_note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_break_glass_access_user_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_break_glass_access_resident_id_resident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass_access")),
    )
    op.create_index(
        "ix_break_glass_user_resident", "break_glass_access", ["user_id", "resident_id", "expires_at"]
    )
    op.create_index(op.f("ix_break_glass_access_resident_id"), "break_glass_access", ["resident_id"])
    op.create_index(op.f("ix_break_glass_access_opened_at"), "break_glass_access", ["opened_at"])


def downgrade() -> None:
    op.drop_table("break_glass_access")
    op.drop_table("consent")
