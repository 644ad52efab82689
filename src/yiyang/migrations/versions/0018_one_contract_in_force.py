"""one contract in force per resident, held by a partial unique index

The rule was checked in Python only, so on PostgreSQL two teams signing one resident at once both
passed the check and both committed. A partial unique index on ``care_contract (resident_id)``
where ``status = 'in_force'`` makes the second write fail; the service answers it with the same
409 as the check.

Duplicates a race already left are resolved, not refused: the earliest contract in force (lowest
id) stays, because it is the one the check let through first and the one ``teams_in_force``
already names as the resident's team (work routing, escalation); each later one, which the check
would have refused, is terminated as ``terminate_contract`` would end it: ``ended_at`` now, its
reason, its relationship row ended (its team loses the scope it should never have had), and a
``care_history`` row by ``system:migration-0018``. Failing instead would stop every app start
(``open_database`` migrates) until someone edited care data by hand. The downgrade drops the
index and leaves the ended duplicates ended.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08

Written by hand; runs on SQLite and PostgreSQL alike.
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_care_contract_resident_in_force"
IN_FORCE = sa.text("status = 'in_force'")
BY = "system:migration-0018"
REASON = "duplicate contract in force: an earlier one holds (migration 0018)"

_LATER_DUPLICATES = sa.text(
    "SELECT c.id FROM care_contract c WHERE c.status = 'in_force' AND EXISTS ("
    "SELECT 1 FROM care_contract e WHERE e.resident_id = c.resident_id AND e.status = 'in_force' AND e.id < c.id)"
)


def _end_later_duplicates() -> None:
    bind = op.get_bind()
    ids = list(bind.execute(_LATER_DUPLICATES).scalars())
    if not ids:
        return
    now = sa.bindparam("now", dt.datetime.now(dt.UTC), type_=yiyang.db.UTCDateTime())
    ids_param = sa.bindparam("ids", ids, expanding=True)
    bind.execute(
        sa.text(
            'INSERT INTO care_history (subject_type, subject_id, action, from_status, to_status, at, "by", note) '
            "SELECT 'contract', id, 'terminated', 'in_force', 'terminated', :now, :by, :reason "
            "FROM care_contract WHERE id IN :ids"
        ).bindparams(now, ids_param, by=BY, reason=REASON)
    )
    bind.execute(
        sa.text(
            "UPDATE resident_relationship SET ended_at = :now "
            "WHERE source_type = 'care_contract' AND source_id IN :ids AND ended_at IS NULL"
        ).bindparams(now, ids_param)
    )
    bind.execute(
        sa.text(
            "UPDATE care_contract SET status = 'terminated', ended_at = :now, end_reason = :reason WHERE id IN :ids"
        ).bindparams(now, ids_param, reason=REASON)
    )


def upgrade() -> None:
    _end_later_duplicates()
    op.create_index(
        INDEX, "care_contract", ["resident_id"], unique=True, sqlite_where=IN_FORCE, postgresql_where=IN_FORCE
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="care_contract")
