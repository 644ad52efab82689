"""resident: an index on (surname, birth date) for linkage's candidate query (PostgreSQL)

Linkage compares a row with the residents born on its birth date whose surname folds alike
(``linkage._blocks``). The candidate query found them by ``birth_date`` alone: at district scale
that read every resident born that day, about twenty times the residents the block holds, and
dropped the rest in Python. This index keys a resident as its first pinyin syllable and its
birth date, the expression ``BORN_SURNAME`` in sources/service.py, so the query reads only the
block. SQLite keeps the broader query; it has no ``split_part``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Written by hand; PostgreSQL only, a no-op on SQLite.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # the same expression as BORN_SURNAME, written out: a migration does not follow the code
        op.execute(
            "CREATE INDEX ix_resident_born_surname ON resident "
            "((split_part(name_pinyin, ' ', 1) || '|' || (birth_date - DATE '2000-01-01')::text))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_resident_born_surname")
