"""Migration 0010 builds exactly the tables the care models describe, on both engines."""

from __future__ import annotations

from tests.conftest import schema_drift
from yiyang.db import Database

CARE_TABLES = ("care_team", "care_group_contract", "care_contract", "work_item", "referral", "care_history")


def test_care_tables_match_their_models(db: Database) -> None:
    assert schema_drift(db, CARE_TABLES) == []
