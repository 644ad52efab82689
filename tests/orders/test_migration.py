"""Migration 0011 builds exactly the tables the order and time-bank models describe, on both engines."""

from __future__ import annotations

from tests.conftest import schema_drift
from yiyang.db import Database

TABLES = (
    "service_provider", "service_provider_area", "service_order", "service_order_transition", "volunteer_profile", "volunteer_pairing",
    "timebank_account", "timebank_transaction", "timebank_entry",
)  # fmt: skip


def test_order_and_timebank_tables_match_their_models(db: Database) -> None:
    assert schema_drift(db, TABLES) == []
