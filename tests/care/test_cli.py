"""``yiyang care day`` from the command line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.care.builders import NOW, add_resident, load, make_world
from yiyang.care import contracts
from yiyang.cli import app
from yiyang.config import get_settings
from yiyang.db import Database


@pytest.fixture
def database_file(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "yiyang.db"
    shutil.copy(sqlite_template, path)
    monkeypatch.setenv("YIYANG_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_the_day_job_runs_from_the_command_line(database_file: Path) -> None:
    database = Database(f"sqlite:///{database_file}")
    world = make_world(database)
    with database.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic", "chronic"], now=NOW)  # fmt: skip
    database.dispose()
    result = CliRunner().invoke(app, ["care", "day", "--at", "2026-03-02T09:00+08:00"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["created"] == 2 and report["became_overdue"] == 0
    again = CliRunner().invoke(app, ["care", "day", "--at", "2026-05-02T09:00"])
    assert json.loads(again.output.strip().splitlines()[-1])["became_overdue"] == 1


def test_a_time_that_is_not_iso_is_a_usage_error(database_file: Path) -> None:
    result = CliRunner().invoke(app, ["care", "day", "--at", "next tuesday"])
    assert result.exit_code == 2
    assert "--at" in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, ValueError)
