"""``yiyang tiers sweep`` and ``yiyang tiers rules`` from the command line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.tiers.builders import civil_row, health_row, run, seed_areas
from yiyang.cli import app
from yiyang.config import get_settings
from yiyang.db import Database
from yiyang.sources.models import Feed
from yiyang.sources.records import ConditionFact
from yiyang.tiers.models import ResidentTier


@pytest.fixture
def database_file(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "yiyang.db"
    shutil.copy(sqlite_template, path)
    monkeypatch.setenv("YIYANG_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_sweep_decides_every_resident(database_file: Path) -> None:
    # given three residents imported and never tiered
    database = Database(f"sqlite:///{database_file}")
    seed_areas(database)
    run(
        database,
        Feed.health,
        [
            health_row("HR-1", conditions=[ConditionFact("I10", "高血压")]),
            health_row("HR-2", "014", name="李建国"),
        ],
    )
    run(database, Feed.civil, [civil_row("MZ-1", "022", "severe", name="赵玉梅")])
    # when the nightly sweep runs
    result = CliRunner().invoke(app, ["tiers", "sweep", "--as-of", "2025-06-30"])
    # then everyone has a tier and the counts are printed
    assert result.exit_code == 0, result.output
    assert "3" in result.output and "'red': 1" in result.output
    with database.unit_of_work() as session:
        assert sorted(t.value for t in session.execute(select(ResidentTier.tier)).scalars()) == [
            "green",
            "red",
            "yellow",
        ]
    database.dispose()


def test_sweep_refuses_a_bad_date(database_file: Path) -> None:
    result = CliRunner().invoke(app, ["tiers", "sweep", "--as-of", "30/06/2025"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_rules_prints_the_rules_in_force(
    database_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules_file = tmp_path / "tiers.toml"
    rules_file.write_text('[[rules]]\ncode = "condition.hypertension"\nenabled = false\n', encoding="utf-8")
    monkeypatch.setenv("YIYANG_TIER_RULES_FILE", str(rules_file))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["tiers", "rules"])
    assert result.exit_code == 0, result.output
    codes = [rule["code"] for rule in json.loads(result.output)]
    assert "condition.diabetes" in codes and "condition.hypertension" not in codes
