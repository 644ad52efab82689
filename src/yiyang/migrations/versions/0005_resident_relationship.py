"""access: resident_relationship, the care relationships that draw care roles' scope

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("contract", "service", "pairing")


def upgrade() -> None:
    op.create_table(
        "resident_relationship",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind", sa.Enum(*KINDS, name="relationshipkind", native_enum=False, length=16), nullable=False
        ),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("valid_from", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("valid_until", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("ended_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_resident_relationship_resident_id_resident")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_resident_relationship_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_resident_relationship_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_relationship")),
    )
    op.create_index(op.f("ix_resident_relationship_resident_id"), "resident_relationship", ["resident_id"])
    op.create_index(
        "ix_resident_relationship_org_resident", "resident_relationship", ["organisation_id", "resident_id"]
    )
    op.create_index(
        "ix_resident_relationship_user_resident", "resident_relationship", ["user_id", "resident_id"]
    )
    op.create_index("ix_resident_relationship_source", "resident_relationship", ["source_type", "source_id"])


def downgrade() -> None:
    op.drop_table("resident_relationship")
