"""Migration 0011 builds exactly the tables the order and time-bank models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from yiyang.db import Database
from yiyang.models import metadata

TABLES = (
    "service_provider", "service_provider_area", "service_order", "service_order_transition", "volunteer_profile", "volunteer_pairing",
    "timebank_account", "timebank_transaction", "timebank_entry",
)  # fmt: skip


def test_order_and_timebank_tables_match_their_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    ours = [diff for diff in differences if any(table in repr(diff) for table in TABLES)]
    assert ours == []
