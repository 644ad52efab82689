"""devices: broker_admission_pending, device changes the MQTT broker has yet to hear about

Revision ID: 0009
Revises: 0005
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broker_admission_pending",
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("queued_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("last_attempt_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_broker_admission_pending")),
    )


def downgrade() -> None:
    op.drop_table("broker_admission_pending")
