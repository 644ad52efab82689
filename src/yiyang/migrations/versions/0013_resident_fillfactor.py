"""resident pages keep room for updates in place (PostgreSQL fillfactor 70)

Every feed after the first updates most residents it links to (insurance type, living
arrangement, the provenance of each fact) without touching an indexed column. With full pages
PostgreSQL writes each new row version elsewhere and adds it to all nine of the table's indexes;
with room left on the page the update stays on the page and the indexes are left alone (a
heap-only tuple). Applies to pages written from now on; ``VACUUM FULL resident`` rewrites the rest.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29

Written by hand; PostgreSQL only (SQLite has no such setting), a no-op on SQLite.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESIDENT_FILLFACTOR = 70


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE resident SET (fillfactor = {RESIDENT_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE resident RESET (fillfactor)")
