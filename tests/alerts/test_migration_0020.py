"""Migration 0020 bounds stored override thresholds to ±1,000,000 (``alerts.rules.MAX_THRESHOLD``),
so that rules stored to mean "never fire" still compile, and still never fire."""

from __future__ import annotations

from tests.alerts.test_migration_0019 import migrated_overrides
from yiyang.alerts.rules import MAX_THRESHOLD, apply_overrides, compile_rules, default_document
from yiyang.db import Database

STORED = {
    "spo2_low": {"when": [["59408-5", "<=", -1e7]]},
    "bp_urgent": {"when": [["8480-6", ">=", 1e7], ["8462-4", ">=", 110]], "severity": "high"},
    "heart_rate_abnormal": {"when": [["8867-4", ">=", 130]]},
}


def test_migration_0020_bounds_thresholds_and_the_rules_compile(unmigrated_db: Database) -> None:
    # given overrides written before 0020 with thresholds past the bound (and one within it), when
    # the schema is brought up to date
    stored = migrated_overrides(unmigrated_db, "0019", STORED)
    # then each threshold past the bound is the bound with its sign, the rest untouched
    assert stored["spo2_low"] == {"when": [["59408-5", "<=", -MAX_THRESHOLD]]}
    assert stored["bp_urgent"] == {
        "when": [["8480-6", ">=", MAX_THRESHOLD], ["8462-4", ">=", 110]],
        "severity": "high",
    }
    assert stored["heart_rate_abnormal"] == STORED["heart_rate_abnormal"]
    # and the rules compile with them, as they did not before
    overrides = [{"rule": rule, "params": params} for rule, params in stored.items()]
    compiled = compile_rules(apply_overrides(default_document(), overrides))
    assert compiled.by_code["bp_urgent"].when[0].value == MAX_THRESHOLD
