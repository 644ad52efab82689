"""resident.status without an index

Nearly every resident is active, and every query asks for the active ones, so the index on
``status`` helps none of them; it costs an entry per new resident, and with no statistics yet
(a district's first import) the planner took ``status = 'active'`` for selective and read the
whole index before each lookup.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_resident_status", table_name="resident")


def downgrade() -> None:
    op.create_index("ix_resident_status", "resident", ["status"])
