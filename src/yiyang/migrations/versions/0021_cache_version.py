"""cache_version: one counter per cached topic, bumped with each change other processes cache

The ingest's device directory and the alert engine's rule book read these counters (one small
statement every few seconds) instead of scanning ``device`` and ``device_binding``. Rows are
made by the first bump of each topic, so the table starts empty.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08

Written by hand; runs on SQLite and PostgreSQL alike.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cache_version",
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", name=op.f("pk_cache_version")),
    )


def downgrade() -> None:
    op.drop_table("cache_version")
