"""Migration 0010 builds exactly the tables the care models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from yiyang.db import Database
from yiyang.models import metadata

CARE_TABLES = ("care_team", "care_group_contract", "care_contract", "work_item", "referral", "care_history")


def test_care_tables_match_their_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    ours = [
        diff
        for diff in differences
        if any(f"'{table}'" in repr(diff) or f"{table}." in repr(diff) for table in CARE_TABLES)
    ]
    assert ours == []
