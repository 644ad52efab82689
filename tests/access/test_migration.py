"""Migration 0003 builds exactly the tables the models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from yiyang.db import Database
from yiyang.models import metadata

ACCESS_TABLES = (
    "user_account", "role_membership", "resident_authorisation", "auth_credential", "sign_in_attempt",
    "audit_event", "audit_chain_head",
)  # fmt: skip


def test_access_tables_match_their_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    ours = [diff for diff in differences if any(table in repr(diff) for table in ACCESS_TABLES)]
    assert ours == []
