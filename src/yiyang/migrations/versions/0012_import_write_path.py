"""import write path: no foreign keys on the tables only the import runner writes, and no indexes
that nothing reads

``source_record``, ``condition``, ``observation`` and ``fact_change`` are written in bulk by the
import runner, which allocates every id they refer to in the same transaction. On PostgreSQL each
foreign key is a trigger and an index probe per row: measured, they cost about as much as the
inserts themselves. Like ``tier_change`` and ``care_plan`` (0004, 0010) these tables now carry
none. Three indexes go too: ``ix_condition_resident_id`` (the unique (resident_id, code) index
serves the same lookups), ``ix_source_record_import_run_id`` and ``ix_observation_source_record_id``
(no query reads by them).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29

Written by hand; runs on SQLite (table rebuilt by batch mode) and PostgreSQL alike.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> [(column, target table)]
FOREIGN_KEYS = {
    "source_record": [("resident_id", "resident"), ("import_run_id", "import_run")],
    "condition": [
        ("resident_id", "resident"),
        ("first_source_record_id", "source_record"),
        ("last_source_record_id", "source_record"),
    ],
    "observation": [("resident_id", "resident"), ("source_record_id", "source_record")],
    "fact_change": [("resident_id", "resident")],
}
INDEXES = {
    "condition": [("ix_condition_resident_id", ["resident_id"])],
    "source_record": [("ix_source_record_import_run_id", ["import_run_id"])],
    "observation": [("ix_observation_source_record_id", ["source_record_id"])],
}


def upgrade() -> None:
    for table, keys in FOREIGN_KEYS.items():
        with op.batch_alter_table(table) as batch:
            for name, _ in INDEXES.get(table, ()):
                batch.drop_index(name)
            for column, target in keys:
                batch.drop_constraint(f"fk_{table}_{column}_{target}", type_="foreignkey")


def downgrade() -> None:
    for table, keys in FOREIGN_KEYS.items():
        with op.batch_alter_table(table) as batch:
            for column, target in keys:
                batch.create_foreign_key(f"fk_{table}_{column}_{target}", target, [column], ["id"])
            for name, columns in INDEXES.get(table, ()):
                batch.create_index(name, columns)
