"""Migration 0003 builds exactly the tables the models describe, on both engines."""

from __future__ import annotations

from tests.conftest import schema_drift
from yiyang.db import Database

ACCESS_TABLES = (
    "user_account", "role_membership", "resident_authorisation", "auth_credential", "sign_in_attempt",
    "audit_event", "audit_chain_head",
)  # fmt: skip


def test_access_tables_match_their_models(db: Database) -> None:
    assert schema_drift(db, ACCESS_TABLES) == []
