"""Migration 0008 builds exactly the tables the alert models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from yiyang.db import Database
from yiyang.models import metadata

ALERT_TABLES = (
    "alert_rule_override", "alert", "alert_transition", "alert_deadline", "alert_delivery", "inbox_item",
)  # fmt: skip


def test_alert_tables_match_their_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    ours = [diff for diff in differences if any(f"'{table}'" in repr(diff) for table in ALERT_TABLES)]
    assert ours == []
