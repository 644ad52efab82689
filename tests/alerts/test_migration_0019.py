"""Migration 0019 turns override flags stored as text into the booleans they said, on both engines,
so that the rules (which now take only true or false) still compile for those residents and tiers."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select

from yiyang.alerts.models import AlertRuleOverride, OverrideScope
from yiyang.alerts.rules import RulesInvalid, apply_overrides, compile_rules, default_document
from yiyang.db import Database
from yiyang.migrate import upgrade

STORED = {
    "said-false": {"enabled": "false"},
    "said-no": {"enabled": " 否 ", "tier_fact": "0"},
    "said-true": {"living_alone_only": "TRUE", "hours": 12},
    "a-number": {"enabled": 0, "tier_fact": 2},
    "a-null": {"enabled": None},
    "already": {"enabled": False},
}
MEANT = {
    "said-false": {"enabled": False},
    "said-no": {"enabled": False, "tier_fact": False},
    "said-true": {"living_alone_only": True, "hours": 12},
    "a-number": {"enabled": False, "tier_fact": True},
    "a-null": {},
    "already": {"enabled": False},
}


def migrated_overrides(database: Database, before: str, params_by_rule: dict[str, dict]) -> dict[str, dict]:
    """Store tier overrides on the schema at ``before``, bring it up to date, and read them back."""
    upgrade(database.engine, before)
    at = dt.datetime(2026, 12, 1, 8, 0)
    with database.engine.begin() as connection:
        for rule, params in params_by_rule.items():
            connection.execute(
                insert(AlertRuleOverride.__table__).values(
                    scope=OverrideScope.tier.name, tier="red", rule=rule, params=params, changed_at=at
                )
            )
    upgrade(database.engine)
    with database.unit_of_work() as session:
        return {o.rule: o.params for o in session.scalars(select(AlertRuleOverride))}


def test_migration_0019_stores_each_flag_as_the_boolean_it_said(unmigrated_db: Database) -> None:
    # given overrides written before 0019, when the API still took flags as text, when the schema
    # is brought up to date
    stored = migrated_overrides(unmigrated_db, "0018", STORED)
    # then each flag is the boolean its text meant, other parameters untouched, a null dropped
    assert stored == MEANT


def test_the_flags_the_migration_writes_compile_where_the_text_did_not() -> None:
    # given the district's rules and the fall rule switched off, as text and as the migration writes it
    document = default_document()
    as_text = [{"rule": "fall", "params": STORED["said-false"]}]
    as_written = [{"rule": "fall", "params": MEANT["said-false"]}]
    # then the text is refused, and the boolean compiles with the fall rule off
    with pytest.raises(RulesInvalid):
        compile_rules(apply_overrides(document, as_text))
    compiled = compile_rules(apply_overrides(document, as_written))
    assert not compiled.by_code["fall"].enabled
    assert compiled.by_code["sos"].enabled
