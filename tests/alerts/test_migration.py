"""Migration 0008 builds exactly the tables the alert models describe, on both engines."""

from __future__ import annotations

from tests.conftest import schema_drift
from yiyang.db import Database

ALERT_TABLES = (
    "alert_rule_override", "alert", "alert_transition", "alert_deadline", "alert_delivery", "inbox_item",
)  # fmt: skip


def test_alert_tables_match_their_models(db: Database) -> None:
    assert schema_drift(db, ALERT_TABLES) == []
